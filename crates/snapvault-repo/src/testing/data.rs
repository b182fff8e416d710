//! Test data and files: deterministic bytes, photo-like files, folder contents and copies.

use std::collections::BTreeMap;
use std::path::Path;

/// What a folder or a restored snapshot holds: file contents by relative path.
pub type Content = BTreeMap<String, Vec<u8>>;

/// `len` deterministic, incompressible bytes from `seed` (the BLAKE3 XOF of it).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Write `IMG_<i>.HEIC` of `len` bytes of [`noise`]`(i, len)` into `dir`.
pub fn photo_file(dir: &Path, i: u64, len: usize) {
    std::fs::write(dir.join(format!("IMG_{i:04}.HEIC")), noise(i, len)).unwrap();
}

/// Write `data` to `path`, making its folder first.
pub fn write(path: &Path, data: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

/// Every file under `dir`, by its path relative to `dir` with `prefix` in front.
pub fn files_under(dir: &Path, prefix: &str) -> Content {
    fn walk(base: &Path, d: &Path, prefix: &str, out: &mut Content) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, prefix, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy();
                out.insert(format!("{prefix}{rel}"), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, prefix, &mut out);
    out
}

/// Copy the folder `from` (recursively) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// `data` with bit `bit % 8` of byte `i` flipped.
pub fn flipped(data: &[u8], i: usize, bit: usize) -> Vec<u8> {
    let mut b = data.to_vec();
    b[i] ^= 1 << (bit % 8);
    b
}
