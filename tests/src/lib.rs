//! Shared helpers for synprobe's integration tests.
//!
//! - [`lab`]: builds a throwaway chain of network namespaces
//!   (`client -- r1 -- … -- server`) to run synprobe against real Linux
//!   stacks, firewalls and routes. Needs root; guard tests with
//!   [`lab::root_or_skip`].

pub mod lab;

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
