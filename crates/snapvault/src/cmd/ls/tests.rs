//! `ls` prints as the walk goes, and prints what it printed when it sorted a collected
//! listing at the end (the reference below is that old code, kept here to compare with).

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;
use snapvault_repo::Id;
use snapvault_repo::testing::trees::{dir, node};
use snapvault_repo::tree::{MediaMeta, Name, Tree};

/// Trees by id; every load counted.
struct Held {
    trees: HashMap<BlobId, Tree>,
    loads: Mutex<usize>,
}

impl TreeSource for Held {
    fn load_tree(&self, id: &BlobId) -> snapvault_repo::Result<Tree> {
        *self.loads.lock().unwrap() += 1;
        self.trees
            .get(id)
            .cloned()
            .ok_or_else(|| RepoError::MissingBlob(id.to_hex()))
    }
}

impl Held {
    fn add(&mut self, mut nodes: Vec<Node>) -> BlobId {
        nodes.sort_by(|a, b| a.name.0.cmp(&b.name.0));
        let id = BlobId(Id::hash_of(format!("tree {}", self.trees.len()).as_bytes()));
        self.trees.insert(id, Tree { nodes });
        id
    }
}

fn file(name: &str, size: u64) -> Node {
    Node {
        size,
        mtime: 1_700_000_000_123_456_789 + size as i64 * 1_000_000_000,
        ..node(name, NodeKind::File)
    }
}

/// Names that sort differently as whole paths than depth first ('-', '.', ' ' < '/'), a
/// name that is not UTF-8, a symlink, a photo with its capture time, an empty folder.
fn sample() -> (Held, BlobId) {
    let mut h = Held {
        trees: HashMap::new(),
        loads: Mutex::new(0),
    };
    let deep = h.add(vec![file("c", 5), file("c d", 6), file("c.e", 7)]);
    let empty = h.add(vec![]);
    let photo = Node {
        media: Some(MediaMeta {
            kind: "photo".into(),
            taken: Some("2023-05-01T10:00:00+02:00".into()),
            date_source: Some("exif".into()),
            pair: None,
            content_id: None,
        }),
        ..file("IMG_0001.HEIC", 2_500_000)
    };
    let a = h.add(vec![
        dir("b", deep),
        file("b.txt", 3),
        file("b0", 4),
        photo,
        dir("empty", empty),
    ]);
    let mut link = node("link", NodeKind::Symlink);
    link.target = Some(Name(b"../a/b.txt".to_vec()));
    let ax = h.add(vec![file("z", 8), link]);
    let mut odd = file("x", 9);
    odd.name = Name(b"caf\xe9".to_vec());
    let root = h.add(vec![
        dir("a", a),
        file("a.txt", 10),
        file("a b", 11),
        dir("a-x", ax),
        file("a0", 12),
        file("B", 1 << 20),
        odd,
    ]);
    (h, root)
}

/// The listing as `ls` made it before it streamed: walked depth first, collected, sorted,
/// printed with `println!`.
fn reference(h: &Held, root: BlobId, prefix: &[u8], format: Format) -> (Vec<u8>, bool) {
    struct Collect<'p> {
        prefix: &'p [u8],
        rows: Vec<(Vec<u8>, Node)>,
        found: bool,
    }
    impl Visitor for Collect<'_> {
        fn entry(&mut self, p: &[u8], n: &Node) -> snapvault_repo::Result<bool> {
            let under = self.prefix.is_empty()
                || p == self.prefix
                || p.starts_with(&[self.prefix, b"/"].concat());
            let above = self.prefix.starts_with(&[p, b"/"].concat());
            if under {
                self.found = true;
                self.rows.push((p.to_vec(), n.clone()));
            }
            Ok(under || above)
        }
        fn unreadable(&mut self, _: &BlobId, _: &[u8], e: RepoError) -> snapvault_repo::Result<()> {
            Err(e)
        }
    }
    let mut c = Collect {
        prefix,
        rows: Vec::new(),
        found: prefix.is_empty(),
    };
    TreeWalker::over(h, Sharing::EveryPath { keep: false })
        .walk(root, &mut c)
        .unwrap();
    let mut rows = c.rows;
    if !c.found {
        return (Vec::new(), false);
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    match format {
        Format::Json => {
            let v: Vec<Value> = rows.iter().map(|(p, n)| json_row(p, n)).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap()).unwrap();
        }
        Format::Text { bytes } => {
            for (p, n) in rows {
                writeln!(out, "{}", text_row(&p, &n, bytes)).unwrap();
            }
        }
    }
    (out, true)
}

#[test]
fn the_listing_is_byte_for_byte_what_sorting_a_collected_listing_printed() {
    let (h, root) = sample();
    let formats = [
        Format::Text { bytes: false },
        Format::Text { bytes: true },
        Format::Json,
    ];
    let prefixes: [&[u8]; 8] = [
        b"", b"a", b"a/b", b"a/empty", b"a-x", b"a.txt", b"caf\xe9", b"nope",
    ];
    for format in formats {
        for prefix in prefixes {
            let mut out = Vec::new();
            let found = list(&h, root, "snapshot t", prefix, format, &mut out).unwrap();
            let (want, want_found) = reference(&h, root, prefix, format);
            assert_eq!(found, want_found, "{format:?} {prefix:?}");
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&want),
                "{format:?} {prefix:?}"
            );
            assert_eq!(out, want, "{format:?} {prefix:?}");
        }
    }
    // The sample does sort differently depth first: the comparison above means something.
    let mut out = Vec::new();
    list(&h, root, "t", b"", Format::Text { bytes: true }, &mut out).unwrap();
    let text = String::from_utf8(out.clone()).unwrap_or_default();
    let a_txt = text.find(" a.txt").unwrap();
    let a_b = text.find(" a/b\n").unwrap();
    assert!(a_txt < a_b, "{text}");
}

/// Records, at each write, how many trees had been loaded.
struct Watch<'h> {
    h: &'h Held,
    at: Vec<usize>,
}

impl Write for Watch<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.at.push(*self.h.loads.lock().unwrap());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn rows_are_printed_as_the_walk_goes() {
    let (h, root) = sample();
    for format in [Format::Text { bytes: false }, Format::Json] {
        *h.loads.lock().unwrap() = 0;
        let mut w = Watch {
            h: &h,
            at: Vec::new(),
        };
        list(&h, root, "t", b"", format, &mut w).unwrap();
        let total = *h.loads.lock().unwrap();
        assert_eq!(total, 5, "{format:?}");
        // The first rows ("B", "a") are out before any folder below the top is read.
        assert_eq!(w.at.first(), Some(&1), "{format:?}: {:?}", w.at);
    }
}
