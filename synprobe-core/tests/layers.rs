//! The crate's modules form layers (lib.rs, "Layers"): a module may use only modules below it. This test reads
//! the sources and fails when a module's non-test code names a module above it, or one missing from the order.
//!
//! It is a plain reading of the text, not a compiler: comments and `#[cfg(test)]` items are left out, then every
//! `crate::module` path and every name inside a `use crate::{..}` group counts (a name re-exported at the
//! crate's root, `crate::Engine`, counts as the module lib.rs takes it from).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Lowest first; keep in step with the list in lib.rs's documentation.
const LAYERS: &[&str] = &[
    "time", "ports", "capture", "wire", "error", "model", "findings", "verdict", "host", "trace",
    "pool", "matcher", "analysis", "engine", "build", "summary", "replay", "session", "sweep",
    "live", "explain", "record",
];

/// Modules compiled only for tests.
const TEST_ONLY: &[&str] = &["lab_frames", "testing"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the source directory reads") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            // `tests` directories hold `#[cfg(test)] mod tests;` and nothing else.
            if path.file_name().is_some_and(|n| n != "tests") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (to the end of the line) and without `#[cfg(test)]` items.
fn code_of(text: &str) -> String {
    let mut code: String = text
        .lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n");
    while let Some(at) = code.find("#[cfg(test)]") {
        let rest = &code[at..];
        let semi = rest.find(';').unwrap_or(rest.len());
        let end = match rest.find('{') {
            Some(open) if open < semi => {
                let mut depth = 0usize;
                let mut end = rest.len();
                for (i, c) in rest[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            _ => (semi + 1).min(rest.len()),
        };
        code.replace_range(at..at + end, "");
    }
    code
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// What lib.rs re-exports at the root: name -> module.
fn root_names() -> BTreeMap<String, String> {
    let lib = code_of(&std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs reads"));
    let mut names = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(at) = stmt.find("pub use ") else {
            continue;
        };
        let path = stmt[at + "pub use ".len()..].trim();
        let module = ident_at(path).to_string();
        let rest = &path[module.len()..];
        let list = rest
            .trim_start_matches("::")
            .trim_matches(|c| c == '{' || c == '}');
        for name in list.split(',') {
            let name = name.trim().rsplit("::").next().unwrap_or("").trim();
            if !name.is_empty() {
                names.insert(name.to_string(), module.clone());
            }
        }
    }
    names
}

/// The modules a piece of code names through `crate::`.
fn uses(code: &str, root: &BTreeMap<String, String>) -> Vec<String> {
    let mut found = Vec::new();
    let module_of = |name: &str| -> Option<String> {
        if LAYERS.contains(&name) || TEST_ONLY.contains(&name) {
            Some(name.to_string())
        } else {
            root.get(name).cloned()
        }
    };
    for (at, _) in code.match_indices("crate::") {
        let after = &code[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // A `use crate::{a::b, C, d::{e, f}}` group: the first name of each top-level item.
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 0 => {
                        item_start = false;
                        if let Some(m) = module_of(ident_at(&group[i..])) {
                            found.push(m);
                        }
                    }
                    _ => {}
                }
            }
        } else if let Some(m) = module_of(ident_at(after)) {
            found.push(m);
        }
    }
    found
}

#[test]
fn no_module_uses_a_module_above_it() {
    let root = root_names();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src()).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a path")
            .trim_end_matches(".rs");
        if top == "lib" || TEST_ONLY.contains(&top) {
            continue;
        }
        let Some(rank) = LAYERS.iter().position(|m| *m == top) else {
            wrong.push(format!(
                "{}: module `{top}` is not in LAYERS",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("a source file reads");
        for used in uses(&code_of(&text), &root) {
            match LAYERS.iter().position(|m| *m == used) {
                Some(r) if r <= rank => {}
                Some(_) => wrong.push(format!(
                    "{}: `{top}` uses `{used}`, a higher layer",
                    rel.display()
                )),
                None => wrong.push(format!(
                    "{}: `{top}` uses `{used}`, which tests only may use",
                    rel.display()
                )),
            }
        }
    }
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports against the layer order:\n{}",
        wrong.join("\n")
    );
}

/// The reader itself: a use of a higher module is found, in a group and by a root name; comments and test
/// items are not read.
#[test]
fn the_reader_finds_uses_and_skips_tests_and_comments() {
    let root = root_names();
    let code = code_of(
        "use crate::{time::Duration, Engine};\n// crate::live\nfn f() { crate::wire::parse(); }\n\
         #[cfg(test)]\nmod tests { use crate::record::X; }\n#[cfg(test)]\nuse crate::session::Y;\n",
    );
    assert_eq!(uses(&code, &root), ["time", "engine", "wire"]);
}

/// lib.rs's "Layers" section names the modules in the same order as this test.
#[test]
fn the_documented_order_is_this_one() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs reads");
    // The section's first paragraph.
    let section = lib
        .split("//! ## Layers\n//!\n")
        .nth(1)
        .and_then(|s| s.split("\n//!\n").next())
        .expect("lib.rs has a Layers section");
    let documented: Vec<&str> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| LAYERS.contains(name))
        .collect();
    assert_eq!(
        documented, LAYERS,
        "lib.rs's Layers section and LAYERS differ"
    );
}
