//! The layer rule, checked: a module never imports from a layer above its own.
//!
//! Layers, bottom up: `error.rs` → `format/` → `storage/` → `repository/` (and `parity/`)
//! → `ops/`. The test reads every source file of a layer folder and looks at each
//! `crate::…` path outside comments (tests included: a test that needs a higher layer
//! belongs to that layer). A new top-level module must be given its layer in [`LAYERS`]
//! before anything may import it.

use std::path::{Path, PathBuf};

/// Each name that may follow `crate::`, with the layer it belongs to (0 is lowest). The
/// root re-exports of lib.rs count as the layer they come from.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("RepoError", 0),
    ("Result", 0),
    ("format", 1),
    ("Id", 1),
    ("BlobId", 1),
    ("PackId", 1),
    ("SnapshotId", 1),
    ("storage", 2),
    ("repository", 3),
    ("Repository", 3),
    ("parity", 3),
    ("ops", 4),
    // The public module paths of lib.rs, which code inside the crate may use as well.
    ("blob", 1),
    ("config", 1),
    ("crypto", 1),
    ("id", 1),
    ("keyfile", 1),
    ("pack", 1),
    ("snapshot", 1),
    ("text", 1),
    ("time", 1),
    ("tree", 1),
    ("backend", 2),
    ("faulty", 2),
    ("testhooks", 2),
    ("SnapshotEntry", 3),
    ("parallel_map", 3),
    ("chunker", 3),
    ("expansion", 3),
    ("index", 3),
    ("lock", 3),
    ("open", 3),
    ("config_copy", 3),
    ("packer", 3),
    ("walk", 3),
    ("archiver", 4),
    ("checker", 4),
    ("copy", 4),
    ("forget", 4),
    ("fs_source", 4),
    ("heal", 4),
    ("prune", 4),
    ("readback", 4),
    ("repair", 4),
    ("restorer", 4),
    ("stop", 4),
    ("survey", 4),
    // Reed-Solomon parity (src/parity/) reads and writes through storage, beside the
    // repository layer; the shared test support builds repositories with the operations.
    ("parity", 3),
    ("testing", 4),
];

/// The layer of a source file, from its folder under `src/` (`None`: not in a layer, such
/// as lib.rs and the crate-wide tests).
fn layer_of_file(rel: &Path) -> Option<u8> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "error.rs" => Some(0),
        "format" => Some(1),
        "storage" => Some(2),
        "repository" | "parity" => Some(3),
        "ops" => Some(4),
        _ => None,
    }
}

/// The first segment of every `crate::` path in `line`, including each item of a
/// `crate::{a, b::c}` group.
fn crate_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        // `snapvault_repo::crate::` cannot occur; `$crate::` in macros is the same crate.
        if let Some(group) = after.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or("");
            for item in inner.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "self" {
                    out.push(name);
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
        rest = after;
    }
    out
}

/// Every layer violation in the files under `src`: "file:line: names crate::x (layer n)".
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    collect(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap_or(&file);
        let Some(own) = layer_of_file(rel) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (no, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for name in crate_paths(code) {
                match LAYERS.iter().find(|(n, _)| *n == name) {
                    Some((_, layer)) if *layer <= own => {}
                    Some((_, layer)) => found.push(format!(
                        "{}:{}: crate::{name} is layer {layer}, above this file's layer {own}",
                        rel.display(),
                        no + 1
                    )),
                    None => found.push(format!(
                        "{}:{}: crate::{name} has no layer: add it to LAYERS in src/layers.rs",
                        rel.display(),
                        no + 1
                    )),
                }
            }
        }
    }
    found
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_layer_imports_a_higher_one() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "lower layers import higher ones:\n{}",
        found.join("\n")
    );
}

/// The check can fail: an import of `ops` from `format/` is found, a group import too, and
/// a name without a layer.
#[test]
fn the_check_finds_an_upward_import() {
    let dir = tempfile::tempdir().unwrap();
    let format = dir.path().join("format");
    std::fs::create_dir(&format).unwrap();
    std::fs::write(
        format.join("x.rs"),
        "// crate::ops in a comment is fine\nuse crate::ops::prune;\n\
         use crate::{error::Result, storage::Backend};\nuse crate::nowhere;\n\
         use crate::format::id::Id;\n",
    )
    .unwrap();
    let found = violations(dir.path());
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].contains("x.rs:2: crate::ops is layer 4"),
        "{found:?}"
    );
    assert!(
        found[1].contains("x.rs:3: crate::storage is layer 2"),
        "{found:?}"
    );
    assert!(
        found[2].contains("crate::nowhere has no layer"),
        "{found:?}"
    );
}
