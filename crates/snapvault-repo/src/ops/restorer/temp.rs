//! Temporary names beside restored files.
//!
//! A file is written under a temporary name in its folder and renamed into place once
//! durable. The name is a short hash of the file's name, the same in every run, so a re-run
//! finds and removes the leftover of an interrupted one. But any name can be in a snapshot:
//! a folder that once received an interrupted restore and was backed up afterwards holds
//! such a leftover as an ordinary file. Were its name used as another file's temporary
//! name, one of the two would replace the other: staged under it, the other file's rename
//! lands on it (or it is removed as a leftover). So a temporary name that this restore
//! also makes as an entry of the same folder is passed over for the next candidate. Names
//! are compared without ASCII case, as a case-insensitive target compares them.

use std::collections::HashSet;

use super::split;

const PREFIX: &[u8] = b".snapvault-restore-";

/// Candidate `k` of the temporary name for `name`; candidate 0 is what every version
/// of restore used, so its leftovers are still found.
fn candidate(name: &[u8], k: u32) -> Vec<u8> {
    let hash = match k {
        0 => blake3::hash(name),
        _ => {
            let mut h = blake3::Hasher::new();
            // A NUL ends the name: no file name holds one.
            h.update(name).update(&[0]).update(&k.to_le_bytes());
            h.finalize()
        }
    };
    let mut out = PREFIX.to_vec();
    out.extend_from_slice(&hash.to_hex().as_bytes()[..16]);
    out
}

/// The paths (from the target) this restore makes whose name looks like a temporary
/// name: usually none.
pub(crate) struct TempNames {
    taken: HashSet<Vec<u8>>,
}

impl TempNames {
    /// From the paths of everything the restore makes (its items and folders); the folders
    /// above them are made too (when a filter matched only what lies inside them), so
    /// their names count as well.
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a [u8]>) -> TempNames {
        let mut taken = HashSet::new();
        for p in paths {
            let mut start = 0;
            for end in p
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'/')
                .map(|(i, _)| i)
                .chain([p.len()])
            {
                let name = &p[start..end];
                if name.len() >= PREFIX.len() && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
                    taken.insert(p[..end].to_ascii_lowercase());
                }
                start = end + 1;
            }
        }
        TempNames { taken }
    }

    /// The temporary name for the entry at `path`: the first candidate that is not itself
    /// an entry of the same folder in this restore.
    pub fn for_path(&self, path: &[u8]) -> Vec<u8> {
        let (dir, name) = split(path);
        let mut k = 0;
        loop {
            let c = candidate(name, k);
            if self.taken.is_empty() || !self.taken.contains(&joined(dir, &c).to_ascii_lowercase())
            {
                return c;
            }
            k += 1;
        }
    }
}

fn joined(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut p = dir.to_vec();
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(paths: &[&str]) -> TempNames {
        TempNames::new(paths.iter().map(|p| p.as_bytes()))
    }

    #[test]
    fn a_temporary_name_in_the_restore_is_passed_over() {
        let t0 = String::from_utf8(candidate(b"a.jpg", 0)).unwrap();
        // Nothing of the kind: the name every version used.
        let none = names(&["x/a.jpg", "x"]);
        assert_eq!(none.for_path(b"x/a.jpg"), t0.as_bytes());
        // A file, or a folder above an item, of that name in the same folder.
        for taken in [format!("x/{t0}"), format!("x/{t0}/deep/file")] {
            let t = names(&["x/a.jpg", &taken]);
            let got = t.for_path(b"x/a.jpg");
            assert_ne!(got, t0.as_bytes(), "{taken}");
            assert!(got.starts_with(PREFIX));
            // In another folder it does not matter.
            assert_eq!(t.for_path(b"y/a.jpg"), t0.as_bytes());
        }
        // At the top of the target; in other case (a case-insensitive target).
        let t = names(&["a.jpg", &t0]);
        assert_ne!(t.for_path(b"a.jpg"), t0.as_bytes());
        let t = names(&["A/a.jpg", &format!("A/{}", t0.to_ascii_uppercase())]);
        assert_ne!(t.for_path(b"A/a.jpg"), t0.as_bytes());
    }
}
