//! The compact decoder against serde_json: the same tree whenever it decodes one, the same
//! result from [`Tree::decode`] (trees and error messages) on random and mutated trees.

use super::*;
use crate::format::id::Id;
use proptest::prelude::*;

fn by_serde(b: &[u8]) -> Option<Tree> {
    serde_json::from_slice(b).ok()
}

/// `Tree::decode` and the serde-only decoder agree, errors by their messages; whatever the
/// compact decoder reads, serde_json reads the same.
fn agree(b: &[u8]) -> std::result::Result<(), TestCaseError> {
    let text = |r: Result<Tree>| r.map_err(|e| e.to_string());
    prop_assert_eq!(
        text(Tree::decode(b)),
        text(Tree::decode_with_serde(b)),
        "{}",
        String::from_utf8_lossy(b)
    );
    if let Some(t) = compact::decode(b) {
        prop_assert_eq!(Some(t), by_serde(b), "{}", String::from_utf8_lossy(b));
    }
    Ok(())
}

/// Does the compact decoder read every number of `t`? (It leaves numbers of 20 digits and
/// `i64::MIN` to serde.)
fn numbers_fit(t: &Tree) -> bool {
    let u = |v: u64| v < 10_000_000_000_000_000_000;
    let i = |v: i64| v != i64::MIN;
    t.nodes.iter().all(|n| {
        i(n.mtime)
            && n.btime.is_none_or(i)
            && n.ctime.is_none_or(i)
            && u(n.size)
            && [n.rdev, n.dev, n.ino, n.inode].into_iter().flatten().all(u)
    })
}

fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        4 => "[a-zA-Z0-9._ -]{1,12}".prop_map(|s| Name::from(s.as_str())),
        2 => "[a-zé写📷]{1,6}".prop_map(|s| Name::from(s.as_str())),
        // Any bytes: `{"hex": …}` when not UTF-8; quotes, backslashes and control
        // characters escaped when they are.
        2 => proptest::collection::vec(any::<u8>(), 0..8).prop_map(Name),
        1 => Just(Name::from("..")),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[a-z0-9:+T-]{0,25}", 1 => any::<String>()]
}

fn media() -> impl Strategy<Value = Option<MediaMeta>> {
    proptest::option::weighted(
        0.3,
        (
            text(),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
        )
            .prop_map(|(kind, taken, date_source, pair, content_id)| MediaMeta {
                kind,
                taken,
                date_source,
                pair,
                content_id,
            }),
    )
}

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![4 => 0i64..2_000_000_000_000_000_000, 1 => any::<i64>(), 1 => Just(i64::MIN), 1 => -5i64..5]
}

fn uint() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..100_000, 1 => any::<u64>(), 1 => Just(u64::MAX)]
}

fn id() -> impl Strategy<Value = BlobId> {
    any::<[u8; 32]>().prop_map(|b| BlobId(Id(b)))
}

fn kind() -> impl Strategy<Value = NodeKind> {
    prop_oneof![
        4 => Just(NodeKind::File),
        2 => Just(NodeKind::Dir),
        1 => Just(NodeKind::Symlink),
        1 => Just(NodeKind::Fifo),
        1 => Just(NodeKind::Socket),
        1 => Just(NodeKind::CharDevice),
        1 => Just(NodeKind::BlockDevice),
    ]
}

/// Any node: valid for its kind or not (the rules are checked after either decoder).
fn node() -> impl Strategy<Value = Node> {
    let opt = |p: f64| proptest::option::weighted(p, uint());
    (
        (
            name(),
            kind(),
            any::<u32>(),
            int(),
            proptest::option::of(int()),
            uint(),
        ),
        (
            proptest::collection::vec(id(), 0..3),
            proptest::option::weighted(0.3, id()),
            proptest::option::weighted(0.2, name()),
            media(),
            opt(0.2),
            opt(0.2),
            opt(0.2),
        ),
        (proptest::option::weighted(0.5, int()), opt(0.5)),
    )
        .prop_map(
            |(
                (name, kind, mode, mtime, btime, size),
                (content, subtree, target, media, rdev, dev, ino),
                (ctime, inode),
            )| Node {
                name,
                kind,
                mode,
                mtime,
                btime,
                size,
                content,
                subtree,
                target,
                media,
                rdev,
                dev,
                ino,
                ctime,
                inode,
            },
        )
}

fn tree() -> impl Strategy<Value = Tree> {
    (proptest::collection::vec(node(), 0..6), any::<bool>()).prop_map(|(nodes, sort)| {
        let mut t = Tree { nodes };
        if sort {
            t.sort();
        }
        t
    })
}

/// Bytes and pieces of JSON a mutation puts in.
const BYTES: &[u8] = b" \t\n{}[],:\"\\-+.eE0123456789abcdefABCDEF\xff\xc3\x80\x00\x1f";
const PIECES: &[&str] = &[
    "null",
    "1.5",
    "5E2",
    "-1",
    "0",
    "01",
    " 7",
    "7 ",
    "\"x\"",
    "\"fifo\"",
    "\"\"",
    "[]",
    "{}",
    "-0",
    "1e3",
    ".5",
    "00",
    " ",
    "\\u0041",
    "\\\"",
    ",\"x\":1",
    ",\"name\":\"z\"",
    ",\"size\":1",
    ",\"ctime\":1",
    ",\"inode\":1",
    "{\"hex\":\"ff\"}",
    "{\"hex\":\"FF\",\"hex\":\"00\"}",
    "[\"ff\"]",
    "{\"file\":null}",
    "18446744073709551616",
    "-9223372036854775808",
    "9223372036854775808",
    "4294967296",
    "true",
];

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Cut(usize, usize),
    Repeat(usize, usize),
    Piece(usize, usize),
    Case(usize),
    /// A piece right after a `:`, `,`, `[` or `{`.
    PieceAtBoundary(usize, usize),
    /// The value after the nth `:` (to the next `,`, `}` or `]`) replaced by a piece.
    Value(usize, usize),
    /// The field after the nth `,` written twice.
    Field(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        1 => (at, any::<usize>()).prop_map(|(i, c)| Mutation::Set(i, BYTES[c % BYTES.len()])),
        1 => (at, any::<u8>()).prop_map(|(i, c)| Mutation::Set(i, c)),
        1 => (at, any::<usize>())
            .prop_map(|(i, c)| Mutation::Insert(i, BYTES[c % BYTES.len()])),
        1 => at.prop_map(Mutation::Delete),
        1 => (at, 1usize..80).prop_map(|(i, n)| Mutation::Cut(i, n)),
        1 => (at, 1usize..80).prop_map(|(i, n)| Mutation::Repeat(i, n)),
        1 => (at, any::<usize>()).prop_map(|(i, p)| Mutation::Piece(i, p)),
        1 => at.prop_map(Mutation::Case),
        3 => (at, any::<usize>()).prop_map(|(i, p)| Mutation::PieceAtBoundary(i, p)),
        4 => (at, any::<usize>()).prop_map(|(i, p)| Mutation::Value(i, p)),
        2 => at.prop_map(Mutation::Field),
    ]
}

/// Positions just after one of `after`'s bytes.
fn after(b: &[u8], bytes: &[u8]) -> Vec<usize> {
    (1..=b.len())
        .filter(|&j| bytes.contains(&b[j - 1]))
        .collect()
}

/// The end of the simple value or field starting at `from`: the next `,`, `}` or `]`.
fn end_of(b: &[u8], from: usize) -> usize {
    (from..b.len())
        .find(|&j| matches!(b[j], b',' | b'}' | b']'))
        .unwrap_or(b.len())
}

fn mutate(b: &mut Vec<u8>, m: &Mutation) {
    let len = b.len().max(1);
    match *m {
        Mutation::Set(i, c) => {
            if let Some(x) = b.get_mut(i % len) {
                *x = c;
            }
        }
        Mutation::Insert(i, c) => b.insert(i % (b.len() + 1), c),
        Mutation::Delete(i) => {
            if !b.is_empty() {
                b.remove(i % len);
            }
        }
        Mutation::Cut(i, n) => {
            let i = i % len;
            let end = (i + n).min(b.len());
            b.drain(i.min(end)..end);
        }
        Mutation::Repeat(i, n) => {
            let i = i % len;
            let span: Vec<u8> = b.iter().skip(i).take(n).copied().collect();
            let at = i.min(b.len());
            b.splice(at..at, span);
        }
        Mutation::Piece(i, p) => {
            let at = i % (b.len() + 1);
            b.splice(at..at, PIECES[p % PIECES.len()].bytes());
        }
        Mutation::PieceAtBoundary(i, p) => {
            let at = after(b, b":,[{");
            if let Some(&j) = at.get(i % at.len().max(1)) {
                b.splice(j..j, PIECES[p % PIECES.len()].bytes());
            }
        }
        Mutation::Value(i, p) => {
            let at = after(b, b":");
            if let Some(&j) = at.get(i % at.len().max(1)) {
                let end = end_of(b, j);
                b.splice(j..end, PIECES[p % PIECES.len()].bytes());
            }
        }
        Mutation::Field(i) => {
            let at: Vec<usize> = after(b, b",").into_iter().map(|j| j - 1).collect();
            if let Some(&j) = at.get(i % at.len().max(1)) {
                let end = end_of(b, j + 1);
                let field: Vec<u8> = b[j..end].to_vec();
                b.splice(end..end, field);
            }
        }
        Mutation::Case(i) => {
            if let Some(x) = b.get_mut(i % len) {
                if x.is_ascii_lowercase() {
                    x.make_ascii_uppercase();
                } else {
                    x.make_ascii_lowercase();
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// What snapvault writes, the compact decoder reads (unless it holds an escape or a
    /// number it leaves to serde), to the tree written.
    #[test]
    fn compact_reads_what_encode_writes(t in tree()) {
        let b = t.encode();
        let fits = !b.contains(&b'\\') && numbers_fit(&t);
        prop_assert_eq!(compact::decode(&b), fits.then(|| t.clone()));
        agree(&b)?;
    }

    #[test]
    fn mutated_trees_decode_as_serde_decodes_them(
        t in tree(),
        ms in proptest::collection::vec(mutation(), 1..4),
    ) {
        let mut b = t.encode();
        for m in &ms {
            mutate(&mut b, m);
        }
        agree(&b)?;
    }

    #[test]
    fn garbage_decodes_as_serde_decodes_it(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        agree(&b)?;
    }
}

/// Forms serde_json reads (or refuses) that the compact decoder leaves to it: each must
/// come out of `Tree::decode` exactly as serde_json has it.
#[test]
fn forms_left_to_serde() {
    let id = "0a".repeat(32);
    let node = |rest: &str| {
        format!(r#"{{"nodes":[{{"name":"a","type":"file","mode":420,"mtime":5{rest}}}]}}"#)
    };
    let cases = [
        format!(
            r#"{{"nodes":[{{"name":"a","type":"file","mode":420,"mtime":5,"content":["{}"]}}]}}"#,
            id.to_uppercase()
        ),
        node(r#","size":1"#).replace(":5", ": 5"),
        node("") + " ",
        node("") + "\n",
        node(r#","btime":null"#),
        node(r#","size":null"#),
        node(r#","size":1.0"#),
        node(r#","size":1e2"#),
        node(r#","size":01"#),
        node(r#","btime":-0"#),
        node(r#","btime":-9223372036854775808"#),
        node(r#","btime":9223372036854775808"#),
        node(r#","size":18446744073709551615"#),
        node(r#","size":18446744073709551616"#),
        node(r#","dev":1,"ino":2,"dev":1"#),
        node(r#","ctime":1,"inode":2,"ctime":1"#),
        node(r#","ctime":1,"inode":2,"inode":2"#),
        node(r#","ctime":-0"#),
        node(r#","ctime":1.5"#),
        node(r#","inode":-1"#),
        node(r#","inode":null"#),
        node(r#","ctime":-9223372036854775808"#),
        node(r#","inode":18446744073709551615"#),
        node(r#","x":[1,{"y":null}]"#),
        node(r#","media":{"kind":"photo","kind":"video"}"#),
        node(r#","media":{"kind":"photo","extra":1}"#),
        node(r#","media":{}"#),
        node(r#","media":{"taken":"x"}"#),
        node(r#","media":null"#),
        r#"{"nodes":[{"name":{"hex":"ff"},"type":"file","mode":420,"mtime":5}]}"#.into(),
        r#"{"nodes":[{"name":{"hex":"FF"},"type":"file","mode":420,"mtime":5}]}"#.into(),
        r#"{"nodes":[{"name":{"hex":"f"},"type":"file","mode":420,"mtime":5}]}"#.into(),
        r#"{"nodes":[{"name":{"hex":"ff","x":1},"type":"file","mode":420,"mtime":5}]}"#.into(),
        r#"{"nodes":[{"name":["ff"],"type":"file","mode":420,"mtime":5}]}"#.into(),
        r#"{"nodes":[{"name":"caf\u00e9","type":"file","mode":420,"mtime":5}]}"#.into(),
        r#"{"nodes":[{"na\u006de":"a","type":"file","mode":420,"mtime":5}]}"#.into(),
        r#"{"nodes":[{"name":"a","type":{"file":null},"mode":420,"mtime":5}]}"#.into(),
        r#"{"nodes":[{"name":"a","type":"file","mode":4294967296,"mtime":5}]}"#.into(),
        r#"{"nodes":[{"name":"a","type":"File","mode":420,"mtime":5}]}"#.into(),
        r#"{"nodes":[{"type":"file","mode":420,"mtime":5}]}"#.into(),
        r#"{"nodes":[{}]}"#.into(),
        r#"{"nodes":[]}"#.into(),
        r#"{"nodes":[],"nodes":[]}"#.into(),
        r#"{"nodes":[[]]}"#.into(),
        r#"[[]]"#.into(),
        r#"{}"#.into(),
        String::new(),
    ];
    for c in &cases {
        agree(c.as_bytes()).unwrap();
    }
    // The compact decoder reads only these four: an uppercase id, `{"hex":"ff"}` and
    // `{"hex":"FF"}`, the empty listing.
    let read = |c: &String| compact::decode(c.as_bytes()).is_some();
    let read: Vec<usize> = (0..cases.len()).filter(|&i| read(&cases[i])).collect();
    assert_eq!(read, [0, 29, 30, 41]);
}
