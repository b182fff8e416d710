//! The order photo rows are listed in: capture time (undated last), then path, then
//! content, with a cheap numeric first key.

use std::cmp::Ordering;

use super::PhotoRow;

/// `YYYY-MM-DDTHH:MM:SS` as the number `YYYYMMDDHHMMSS` (a cheap first sort key);
/// `u64::MAX` when absent or malformed.
fn time_key(taken: Option<&str>) -> u64 {
    let Some(t) = taken else {
        return u64::MAX;
    };
    let b = t.as_bytes();
    if b.len() < 19 {
        return u64::MAX - 1;
    }
    let mut k = 0u64;
    for (i, &c) in b[..19].iter().enumerate() {
        match (i, c) {
            (4 | 7, b'-') | (10, b'T' | b' ') | (13 | 16, b':') => {}
            (_, b'0'..=b'9') => k = k * 10 + (c - b'0') as u64,
            _ => return u64::MAX - 1,
        }
    }
    k
}

pub(super) fn sort_rows(rows: Vec<PhotoRow>) -> Vec<PhotoRow> {
    if rows.len() < 2 {
        return rows;
    }
    let mut order: Vec<(u64, u32)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (time_key(r.taken.as_deref()), i as u32))
        .collect();
    let full = |a: &PhotoRow, b: &PhotoRow| -> Ordering {
        (a.taken.is_none(), &a.taken, &a.latest_path, &a.content_key).cmp(&(
            b.taken.is_none(),
            &b.taken,
            &b.latest_path,
            &b.content_key,
        ))
    };
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| full(&rows[a.1 as usize], &rows[b.1 as usize]))
    });
    // Apply the permutation in place, cycle by cycle: rows are large, move each once.
    let mut rows = rows;
    let mut perm: Vec<u32> = order.into_iter().map(|(_, i)| i).collect();
    for start in 0..perm.len() {
        let mut cur = start;
        loop {
            let next = perm[cur] as usize;
            perm[cur] = cur as u32;
            if next == start {
                break;
            }
            rows.swap(cur, next);
            cur = next;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::group::hex32;
    use snapvault_repo::{Id, SnapshotId};

    fn row(taken: Option<&str>, path: &str) -> PhotoRow {
        PhotoRow {
            content_key: hex32(&Id::hash_of(path.as_bytes()).0),
            kind: "photo".into(),
            taken: taken.map(str::to_string),
            date_source: None,
            size: 1,
            pair: None,
            content_id: None,
            live: false,
            latest_path: path.into(),
            latest_path_bytes: path.as_bytes().to_vec(),
            latest_snapshot: SnapshotId::default(),
            latest_time: 0,
            snapshot_count: 1,
            content: vec![],
            mode: 0o644,
            mtime: 0,
        }
    }

    #[test]
    fn rows_sort_by_time_then_path_undated_last() {
        let mut rows = Vec::new();
        let mut x = 12345u64;
        for i in 0..500 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let taken = match x >> 61 {
                0 => None,
                1 => Some("garbage".to_string()),
                n => Some(format!(
                    "20{:02}-0{}-1{}T1{}:00:00+0{}:00",
                    x % 30,
                    n,
                    x % 10,
                    i % 10,
                    x % 3
                )),
            };
            rows.push(row(taken.as_deref(), &format!("p/{}", x % 97)));
        }
        let sorted = sort_rows(rows.clone());
        let mut want = rows;
        want.sort_by(|a, b| {
            let k = |r: &PhotoRow| {
                (
                    time_key(r.taken.as_deref()),
                    r.taken.is_none(),
                    r.taken.clone(),
                    r.latest_path.clone(),
                    r.content_key.clone(),
                )
            };
            k(a).cmp(&k(b))
        });
        assert_eq!(sorted, want);
        assert!(sorted.last().unwrap().taken.is_none());
        assert_eq!(time_key(Some("2023-07-14T18:03:11+02:00")), 20230714180311);
        assert_eq!(time_key(Some("2023-07-14 18:03:11")), 20230714180311);
        assert!(time_key(Some("2023-07-14")) > 99991231235959);
        assert_eq!(hex32(&[0xab; 32]), "ab".repeat(32));
    }
}
