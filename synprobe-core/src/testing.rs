//! Helpers for the project's own tests (the `testing` feature, which the CLI's and the integration tests'
//! crates turn on): not part of the library's interface.

/// The public captures (`../shared/pcaps/README.md` lists them): the directory in `SYNPROBE_TEST_PCAPS` if set
/// (relative to the repository root), else `../shared/pcaps` beside the repository. When it is absent, prints
/// `SKIP <test>: …` to stderr and returns `None`, so the test can return early; with `CI=true` (CI always has
/// them), or with `SYNPROBE_TEST_PCAPS` naming no directory, it panics instead.
pub fn pcaps(test: &str) -> Option<std::path::PathBuf> {
    let set = std::env::var_os("SYNPROBE_TEST_PCAPS").filter(|v| !v.is_empty());
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join(set.as_deref().unwrap_or("../shared/pcaps".as_ref()));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        set.is_none(),
        "{test}: SYNPROBE_TEST_PCAPS names {}, which is not a directory",
        dir.display()
    );
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{test}: the public captures must be present in CI (CI=true), but {} is not a directory: set \
         SYNPROBE_TEST_PCAPS or put them in ../shared/pcaps",
        dir.display()
    );
    // Straight to stderr, not through eprintln!, which the test harness captures: the SKIP shows in a plain
    // `cargo test`.
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!(
            "SKIP {test}: public captures not found (set SYNPROBE_TEST_PCAPS or put them in ../shared/pcaps)\n"
        ),
    );
    None
}
