//! Least privilege: once the raw sockets and the capture are open, become the invoking user (or nobody).

use nix::unistd::{getuid, setgid, setgroups, setuid, Gid, Uid, User};

use crate::error::{Error, Result};

/// Who the process runs as after [`drop_privileges`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// If running as root, switch to SUDO_UID/SUDO_GID (the user who ran sudo), else to `nobody`: supplementary
/// groups cleared, gid then uid set, so no capability survives. A process that is not root is left as it is
/// (file capabilities of a non-root process are not inherited across exec and end with the process).
pub fn drop_privileges() -> Result<Identity> {
    if !getuid().is_root() {
        return Ok(Identity {
            uid: getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        });
    }
    let from_env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    let (uid, gid) = match (from_env("SUDO_UID"), from_env("SUDO_GID")) {
        (Some(u), Some(g)) if u != 0 => (u, g),
        _ => match User::from_name("nobody") {
            Ok(Some(u)) => (u.uid.as_raw(), u.gid.as_raw()),
            _ => (65534, 65534),
        },
    };
    let fail = |what: &'static str| {
        move |e: nix::Error| Error::Io {
            what,
            source: std::io::Error::from(e),
        }
    };
    setgroups(&[Gid::from_raw(gid)]).map_err(fail("drop supplementary groups"))?;
    setgid(Gid::from_raw(gid)).map_err(fail("switch to the invoking user's group"))?;
    setuid(Uid::from_raw(uid)).map_err(fail("switch to the invoking user"))?;
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err(Error::Io {
            what: "drop privileges",
            source: std::io::Error::other("root could be regained after setuid"),
        });
    }
    Ok(Identity { uid, gid })
}
