//! Names that differ only in case, restored onto a target that does not tell them apart
//! (exFAT, FAT, APFS and HFS+ as formatted by default, casefolded ext4 folders): without
//! care the second `IMG_0001.JPG` would land on the first `img_0001.jpg` — overwriting it
//! with `--overwrite`, or being refused without. Such names in one folder of one restore are
//! found beforehand; when the target is case-insensitive there, each one after the first
//! gets a number (`img_0001 (2).jpg`), and the renaming is reported. Folders are treated
//! alike (what lies under a renamed folder follows it).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::{RestoreItem, by_components, split};

/// The key under which a case-insensitive file system sees a name as the same.
fn fold(name: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(name) {
        Ok(s) => s.to_lowercase().into_bytes(),
        Err(_) => name.to_ascii_lowercase(),
    }
}

/// `stem (n).ext` for `stem.ext`.
fn numbered(name: &[u8], n: usize) -> Vec<u8> {
    let (stem, ext) = match name.iter().rposition(|&b| b == b'.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, &b""[..]),
    };
    [stem, format!(" ({n})").as_bytes(), ext].concat()
}

/// The names of one folder, grouped by their folded form.
type ByKey<'a> = BTreeMap<Vec<u8>, Vec<&'a [u8]>>;

/// A renaming made: (path in the snapshot, path restored to).
pub(crate) type Renamed = (Vec<u8>, Vec<u8>);

/// Rename the entries whose names collide by case in a folder that `insensitive` says
/// cannot tell them apart (asked once per such folder, with its path in the target).
/// Without collisions the items come back borrowed, untouched.
pub fn plan<'a>(
    items: &'a [RestoreItem],
    dirs: &'a [RestoreItem],
    insensitive: &mut dyn FnMut(&[u8]) -> bool,
) -> (Cow<'a, [RestoreItem]>, Cow<'a, [RestoreItem]>, Vec<Renamed>) {
    // Names per folder, grouped by their folded form.
    let mut folders: HashMap<&[u8], ByKey> = HashMap::new();
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for it in items.iter().chain(dirs) {
        // Every folder on the way counts too (a parent may not be among `dirs`).
        let mut p = it.path.as_slice();
        while !p.is_empty() && seen.insert(p) {
            let (parent, name) = split(p);
            folders
                .entry(parent)
                .or_default()
                .entry(fold(name))
                .or_default()
                .push(name);
            p = parent;
        }
    }
    let mut clashing: Vec<&[u8]> = folders
        .iter()
        .filter(|(_, by_key)| by_key.values().any(|names| names.len() > 1))
        .map(|(parent, _)| *parent)
        .collect();
    if clashing.is_empty() {
        return (Cow::Borrowed(items), Cow::Borrowed(dirs), Vec::new());
    }
    // Parents first, so a folder's new name is known before what lies under it.
    clashing.sort_by(|a, b| by_components(a, b));
    // (original parent, original name) → new name.
    let mut new_name: HashMap<(&[u8], &[u8]), Vec<u8>> = HashMap::new();
    let rewrite = |path: &[u8], new_name: &HashMap<(&[u8], &[u8]), Vec<u8>>| -> Vec<u8> {
        let mut out = Vec::with_capacity(path.len() + 8);
        let mut start: usize = 0;
        for (i, part) in path.split(|&b| b == b'/').enumerate() {
            let parent = &path[..start.saturating_sub(1)];
            if i > 0 {
                out.push(b'/');
            }
            match new_name.get(&(parent, part)) {
                Some(n) => out.extend_from_slice(n),
                None => out.extend_from_slice(part),
            }
            start += part.len() + 1;
        }
        out
    };
    for parent in clashing {
        if !insensitive(&rewrite(parent, &new_name)) {
            continue;
        }
        let Some(by_key) = folders.get(parent) else {
            continue;
        };
        let mut taken: HashSet<Vec<u8>> = by_key.keys().cloned().collect();
        for names in by_key.values().filter(|n| n.len() > 1) {
            let mut names = names.clone();
            names.sort();
            for name in names.into_iter().skip(1) {
                let mut n = 2;
                let renamed = loop {
                    let candidate = numbered(name, n);
                    if taken.insert(fold(&candidate)) {
                        break candidate;
                    }
                    n += 1;
                };
                new_name.insert((parent, name), renamed);
            }
        }
    }
    if new_name.is_empty() {
        return (Cow::Borrowed(items), Cow::Borrowed(dirs), Vec::new());
    }
    let mut renamed: Vec<Renamed> = Vec::new();
    let mut apply = |list: &[RestoreItem]| -> Vec<RestoreItem> {
        list.iter()
            .map(|it| {
                let path = rewrite(&it.path, &new_name);
                let mut it = it.clone();
                if path != it.path {
                    if new_name.contains_key(&split(&it.path)) {
                        renamed.push((it.path.clone(), path.clone()));
                    }
                    it.node.name.0 = split(&path).1.to_vec();
                    it.path = path;
                }
                it
            })
            .collect()
    };
    let items = apply(items);
    let dirs = apply(dirs);
    renamed.sort();
    (Cow::Owned(items), Cow::Owned(dirs), renamed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::{Name, Node, NodeKind};

    fn item(path: &str, kind: NodeKind) -> RestoreItem {
        RestoreItem {
            path: path.as_bytes().to_vec(),
            node: Node {
                name: Name(split(path.as_bytes()).1.to_vec()),
                kind,
                mode: 0o644,
                mtime: 0,
                btime: None,
                size: 0,
                content: vec![],
                subtree: None,
                target: None,
                media: None,
                rdev: None,
                dev: None,
                ino: None,
                ctime: None,
                inode: None,
            },
        }
    }

    fn paths(v: &[RestoreItem]) -> Vec<&str> {
        v.iter()
            .map(|i| std::str::from_utf8(&i.path).unwrap())
            .collect()
    }

    #[test]
    fn names_differing_only_in_case_both_survive_on_an_insensitive_target() {
        let items = vec![
            item("DCIM/IMG_0001.JPG", NodeKind::File),
            item("DCIM/img_0001.jpg", NodeKind::File),
            item("DCIM/img_0001 (2).jpg", NodeKind::File),
            item("DCIM/Other.jpg", NodeKind::File),
            item("dcim/x.jpg", NodeKind::File),
        ];
        let dirs = vec![item("DCIM", NodeKind::Dir), item("dcim", NodeKind::Dir)];
        let mut asked = Vec::new();
        let (i, d, renamed) = plan(&items, &dirs, &mut |p: &[u8]| {
            asked.push(String::from_utf8_lossy(p).into_owned());
            true
        });
        assert_eq!(
            paths(&i),
            [
                "DCIM/IMG_0001.JPG",
                "DCIM/img_0001 (3).jpg",
                "DCIM/img_0001 (2).jpg",
                "DCIM/Other.jpg",
                "dcim (2)/x.jpg"
            ]
        );
        assert_eq!(paths(&d), ["DCIM", "dcim (2)"]);
        assert_eq!(i[1].node.name.0, b"img_0001 (3).jpg");
        assert_eq!(renamed.len(), 2, "{renamed:?}");
        // The target root, then the renamed-into folder (asked by its name in the target).
        assert_eq!(asked, ["", "DCIM"]);
    }

    #[test]
    fn a_case_sensitive_target_changes_nothing() {
        let items = vec![
            item("a/IMG.JPG", NodeKind::File),
            item("a/img.jpg", NodeKind::File),
        ];
        let (i, _, renamed) = plan(&items, &[], &mut |_: &[u8]| false);
        assert!(matches!(i, Cow::Borrowed(_)));
        assert!(renamed.is_empty());
        let none = vec![item("a/x.jpg", NodeKind::File)];
        let mut asked = false;
        let (i, _, _) = plan(&none, &[], &mut |_: &[u8]| {
            asked = true;
            true
        });
        assert!(
            matches!(i, Cow::Borrowed(_)) && !asked,
            "no collision: nothing probed"
        );
    }
}
