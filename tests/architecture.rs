//! The "never does" column of docs/ARCHITECTURE.md, where a look at the source can check
//! it, and the shape of the tree: few loose files, no file over ~400 lines, no import cycle
//! between the top-level modules. Reads `src/` as text; no database needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, as (path relative to `src/`, text).
fn files() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&src(), &mut paths);
    let mut files: Vec<_> = paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(files.len() > 40, "src/ not found: {files:?}");
    files
}

/// The code of a file without its comments and its unit tests.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn in_dir<'a>(files: &'a [(String, String)], dir: &str) -> Vec<&'a (String, String)> {
    files.iter().filter(|(p, _)| p.starts_with(dir)).collect()
}

#[test]
fn src_has_at_most_five_loose_files_and_none_over_420_lines() {
    let files = files();
    let loose: Vec<_> = files
        .iter()
        .filter(|(p, _)| !p.contains('/'))
        .map(|(p, _)| p)
        .collect();
    assert!(loose.len() <= 5, "loose files in src/: {loose:?}");
    for (path, text) in &files {
        let lines = text.lines().count();
        assert!(lines <= 420, "src/{path} has {lines} lines");
    }
}

#[test]
fn only_the_state_store_touches_sled_and_bincode() {
    for (path, text) in files() {
        if path.starts_with("state/") {
            continue;
        }
        let code = code(&text);
        assert!(
            !code.contains("sled::") && !code.contains("bincode::"),
            "src/{path} uses sled or bincode"
        );
    }
}

#[test]
fn pure_modules_do_not_query_a_database() {
    let files = files();
    let pure = [
        "keyspace/mod.rs",
        "keyspace/predicates.rs",
        "protocol/reconcile.rs",
        "protocol/checkpoint.rs",
        "pass/shared.rs",
        "pass/throttle.rs",
        "cli/config.rs",
        "cli/duration.rs",
        "commands/retry.rs",
        "db/conninfo/params.rs",
        "db/conninfo/pgpass.rs",
        "db/conninfo/service.rs",
    ];
    for name in pure {
        let (_, text) = files
            .iter()
            .find(|(p, _)| p == name)
            .unwrap_or_else(|| panic!("{name}"));
        let code = code(text);
        for call in [
            "postgres::",
            ".query",
            ".execute(",
            ".batch_execute(",
            ".copy_in(",
            ".copy_out(",
        ] {
            assert!(!code.contains(call), "src/{name} uses {call}");
        }
    }
}

#[test]
fn windows_are_cut_by_keyset_never_offset_or_row_number() {
    for (path, text) in in_dir(&files(), "keyspace/")
        .into_iter()
        .chain(in_dir(&files(), "copy/"))
    {
        let code = code(text).to_ascii_uppercase();
        assert!(
            !code.contains("OFFSET ") && !code.contains("ROW_NUMBER"),
            "src/{path} cuts windows by position"
        );
    }
}

#[test]
fn the_copy_layer_never_touches_the_state_store_or_checkpoints() {
    for (path, text) in in_dir(&files(), "copy/") {
        let code = code(text);
        for forbidden in ["JobState", "StateStore", "checkpoint::", "record_window"] {
            assert!(!code.contains(forbidden), "src/{path} uses {forbidden}");
        }
    }
}

#[test]
fn only_the_checkpoint_step_marks_windows_committed() {
    for (path, text) in files() {
        if path == "protocol/checkpoint.rs" || path.starts_with("state/") {
            continue;
        }
        assert!(
            !code(&text).contains("WindowStatus::Committed"),
            "src/{path} marks a window committed"
        );
    }
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let files = files();
    let module = |path: &str| path.split(['/', '.']).next().unwrap().to_string();
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in &files {
        let from = module(path);
        for part in code(text).split("crate::").skip(1) {
            let to: String = part
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !to.is_empty() && to != from {
                uses.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Depth-first search for a cycle.
    fn visit(
        node: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            panic!("import cycle: {} -> {node}", stack[at..].join(" -> "));
        }
        if !done.insert(node.to_string()) {
            return;
        }
        stack.push(node.to_string());
        for next in uses.get(node).into_iter().flatten() {
            visit(next, uses, stack, done);
        }
        stack.pop();
    }
    let mut done = BTreeSet::new();
    for node in uses.keys() {
        visit(node, &uses, &mut Vec::new(), &mut done);
    }
}
