//! Shared helpers for synprobe's integration tests.
//!
//! - [`lab`]: builds a throwaway chain of network namespaces
//!   (`client -- r1 -- … -- server`) to run synprobe against real Linux
//!   stacks, firewalls and routes. Needs root; guard tests with
//!   [`lab::root_or_skip`].
//! - [`pcaps`]: where the public captures are; guard the tests that read them
//!   with it.

pub mod lab;

pub use synprobe_core::testing::pcaps;

/// The `synprobe` binary of this build (`target/<profile>/synprobe` beside the test executable). It is built
/// once per test process first: `cargo test -p synprobe-tests` alone would otherwise run a stale binary.
pub fn synprobe_bin() -> std::path::PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("synprobe");
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build.args([
            "build",
            "--quiet",
            "-p",
            "synprobe-cli",
            "--bin",
            "synprobe",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building synprobe failed");
    });
    assert!(bin.exists(), "no synprobe binary at {}", bin.display());
    bin
}

/// A temporary directory removed when dropped, so a failing test leaves nothing behind.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Create `<tmp>/synprobe-<name>-<pid>`.
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("synprobe-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Running `synprobe` inside a lab and reading its JSON Lines, for the live tests.
pub mod live {
    use std::collections::HashMap;
    use std::net::IpAddr;
    use std::process::Output;
    use std::time::Duration;

    use serde_json::Value;

    use crate::lab::Lab;
    use crate::synprobe_bin;

    /// Runs `synprobe args…` in the lab's client namespace (60 s at most).
    pub fn probe(lab: &Lab, args: &[&str]) -> Output {
        let bin = synprobe_bin();
        lab.run_in(
            lab.client_ns(),
            bin.to_str().expect("path"),
            args,
            Duration::from_secs(60),
        )
    }

    /// The JSON Lines of a live run, by (target, port).
    pub fn reports(out: &Output) -> HashMap<(String, u16), Value> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
            })
            .map(|v| {
                let key = (
                    v["target"].as_str().expect("target").to_string(),
                    v["port"].as_u64().expect("port") as u16,
                );
                (key, v)
            })
            .collect()
    }

    /// Asserts a report's verdict and rejecter (address, hops, is_target), and that it carries every field.
    pub fn check(r: &Value, verdict: &str, rejecter: Option<(IpAddr, u64, bool)>) {
        let ctx = serde_json::to_string_pretty(r).expect("json");
        assert_eq!(r["verdict"], verdict, "{ctx}");
        match rejecter {
            None => assert!(r["rejecter"].is_null(), "no rejecter expected: {ctx}"),
            Some((addr, hops, is_target)) => {
                assert_eq!(
                    r["rejecter"]["addr"],
                    addr.to_string(),
                    "rejecter address: {ctx}"
                );
                assert_eq!(r["rejecter"]["hops"], hops, "rejecter hops: {ctx}");
                assert_eq!(r["rejecter"]["is_target"], is_target, "is_target: {ctx}");
            }
        }
        for key in [
            "target",
            "port",
            "verdict",
            "rejecter",
            "target_hops",
            "rtt_ms",
            "evidence",
            "next_steps",
            "packets",
        ] {
            assert!(r.get(key).is_some(), "missing {key}: {ctx}");
        }
        assert!(!r["evidence"].as_array().expect("evidence").is_empty());
        assert!(!r["packets"].as_array().expect("packets").is_empty());
    }

    /// [`check`], plus the rejecter's kind (`target`, `router`, `backend`, `sender`).
    pub fn check_kind(r: &Value, verdict: &str, rejecter: (IpAddr, u64, bool), kind: &str) {
        check(r, verdict, Some(rejecter));
        assert_eq!(r["rejecter"]["kind"], kind, "{r:#}");
    }
}
