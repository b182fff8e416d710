//! `forget`: which snapshots a retention policy keeps, and which photos would be lost with
//! the rest.
//!
//! The policy engine ([`apply`]) is pure: snapshot times and tags in, one [`Decision`] per
//! snapshot out. Its semantics are restic's (see `docs/forget-prune.md` for a worked
//! example):
//!
//! - snapshots are taken newest first; `--keep-last N` keeps the N newest;
//! - `--keep-{hourly,daily,weekly,monthly,yearly} N` keep the newest snapshot of each of the
//!   N most recent periods *that have a snapshot* (UTC calendar periods; ISO weeks, Monday
//!   to Sunday); when the snapshots run out before the count does, the oldest snapshot is
//!   kept too ("oldest daily snapshot");
//! - `--keep-within D` keeps everything within D (`1y6m`, `2w`, `30d`, `12h`) of the newest
//!   snapshot that is not in the future; `--keep-within-daily D` etc. keep the newest of
//!   each period within D;
//! - `--keep-tag a,b` keeps snapshots having all of the listed tags (`''`: untagged ones);
//! - the rules are a union: a snapshot matching any of them is kept, with every rule that
//!   matched listed.
//!
//! Photo safety ([`photos_lost`]) walks trees: the photos (files whose node has `media` of
//! kind photo, video or sidecar) held by the snapshots to be removed whose content (list of
//! blob ids) appears in no remaining snapshot.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::Result;
use crate::format::id::{BlobId, SnapshotId};
use crate::format::snapshot::Snapshot;
use crate::format::time::{Civil, days_from_civil};
use crate::format::tree::NodeKind;
use crate::repository::Repository;
use crate::repository::index::Index;

/// A count meaning "every period" (`--keep-daily unlimited`).
pub(crate) const UNLIMITED: u32 = u32::MAX;

const NS: i64 = 1_000_000_000;

/// A calendar duration such as `1y6m`, `2w`, `30d`, `12h` (units y, m, w, d, h).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub years: u32,
    pub months: u32,
    pub weeks: u32,
    pub days: u32,
    pub hours: u32,
}

impl Span {
    pub fn is_zero(&self) -> bool {
        *self == Span::default()
    }

    /// The instant this span before `t_ns`. Years and months move the calendar date and keep
    /// the day of the month, which rolls over past a month's end like Go's `AddDate`
    /// (restic's behaviour): 31 March minus one month is 3 March (2 in a leap year).
    pub fn before(&self, t_ns: i64) -> i64 {
        let secs = t_ns.div_euclid(NS);
        let sub = t_ns.rem_euclid(NS);
        let c = Civil::from_unix(secs);
        let months =
            c.year * 12 + (c.month as i64 - 1) - self.years as i64 * 12 - self.months as i64;
        let (y, m) = (months.div_euclid(12), months.rem_euclid(12) as u32 + 1);
        let days = days_from_civil(y, m, c.day) - self.weeks as i64 * 7 - self.days as i64;
        let sod = secs.rem_euclid(86_400);
        let out = days * 86_400 + sod - self.hours as i64 * 3600;
        out.saturating_mul(NS).saturating_add(sub)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0h");
        }
        for (v, u) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.weeks, 'w'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if v > 0 {
                write!(f, "{v}{u}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Span, String> {
        let bad = || {
            format!("invalid duration {s:?}: expected e.g. 30d, 2w, 1y6m, 12h (units y m w d h)")
        };
        let mut span = Span::default();
        let mut num = String::new();
        let mut any = false;
        for ch in s.trim().chars() {
            if ch.is_ascii_digit() {
                num.push(ch);
                continue;
            }
            let v: u32 = num.parse().map_err(|_| bad())?;
            num.clear();
            let slot = match ch {
                'y' => &mut span.years,
                'm' => &mut span.months,
                'w' => &mut span.weeks,
                'd' => &mut span.days,
                'h' => &mut span.hours,
                _ => return Err(bad()),
            };
            *slot = slot.checked_add(v).ok_or_else(bad)?;
            any = true;
        }
        if !num.is_empty() || !any {
            return Err(bad());
        }
        // Keep the arithmetic far from overflow.
        if span.years > 10_000
            || span.months > 120_000
            || span.weeks > 600_000
            || span.days > 4_000_000
            || span.hours > 100_000_000
        {
            return Err(bad());
        }
        Ok(span)
    }
}

/// Parse a `--keep-*` count: a number, or `unlimited` (also restic's `-1`).
pub fn parse_count(s: &str) -> std::result::Result<u32, String> {
    match s.trim() {
        "unlimited" | "-1" => Ok(UNLIMITED),
        t => t
            .parse::<u32>()
            .map_err(|_| format!("invalid count {s:?}: expected a number or `unlimited`")),
    }
}

/// Parse a `--keep-within*` duration (for clap).
pub fn parse_span(s: &str) -> std::result::Result<Span, String> {
    s.parse()
}

/// A retention policy. All-zero (see [`Policy::is_empty`]) means "no policy": callers must
/// refuse rather than remove everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    pub within: Span,
    pub within_hourly: Span,
    pub within_daily: Span,
    pub within_weekly: Span,
    pub within_monthly: Span,
    pub within_yearly: Span,
    /// Keep snapshots having every tag of any one of these lists; an empty list (or `[""]`)
    /// matches untagged snapshots.
    pub tags: Vec<Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Period {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Period {
    fn name(self) -> &'static str {
        match self {
            Period::Last => "last",
            Period::Hourly => "hourly",
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
            Period::Yearly => "yearly",
        }
    }

    /// The period a snapshot falls into (`nr` is its rank, newest first: every snapshot is
    /// its own "last" period).
    fn bucket(self, t_ns: i64, nr: usize) -> i64 {
        let secs = t_ns.div_euclid(NS);
        let c = Civil::from_unix(secs);
        let (y, m, d, h) = (c.year, c.month as i64, c.day as i64, c.hour as i64);
        match self {
            Period::Last => nr as i64,
            Period::Hourly => y * 1_000_000 + m * 10_000 + d * 100 + h,
            Period::Daily => y * 10_000 + m * 100 + d,
            Period::Weekly => {
                let (iy, w) = iso_week(secs.div_euclid(86_400));
                iy * 100 + w as i64
            }
            Period::Monthly => y * 100 + m,
            Period::Yearly => y,
        }
    }
}

/// ISO 8601 (year, week) of a day given as days since 1970-01-01.
pub(crate) fn iso_week(days: i64) -> (i64, u32) {
    // 1970-01-01 was a Thursday; weekday 0 = Monday.
    let weekday = (days + 3).rem_euclid(7);
    let thursday = days - weekday + 3;
    let year = Civil::from_unix(thursday * 86_400).year;
    let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
    (year, week as u32)
}

fn count_text(n: u32, what: &str) -> String {
    if n == UNLIMITED {
        format!("all {what}")
    } else {
        format!("{n} {what}")
    }
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.counts().iter().all(|(_, n)| *n == 0)
            && self.within.is_zero()
            && self.within_periods().iter().all(|(_, s)| s.is_zero())
            && self.tags.is_empty()
    }

    fn counts(&self) -> [(Period, u32); 6] {
        [
            (Period::Last, self.last),
            (Period::Hourly, self.hourly),
            (Period::Daily, self.daily),
            (Period::Weekly, self.weekly),
            (Period::Monthly, self.monthly),
            (Period::Yearly, self.yearly),
        ]
    }

    fn within_periods(&self) -> [(Period, Span); 5] {
        [
            (Period::Hourly, self.within_hourly),
            (Period::Daily, self.within_daily),
            (Period::Weekly, self.within_weekly),
            (Period::Monthly, self.within_monthly),
            (Period::Yearly, self.within_yearly),
        ]
    }

    /// One line for humans: `keep 7 daily, 4 weekly snapshots and all within 30d of the newest`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for (p, n) in self.counts() {
            if n > 0 {
                let name = if p == Period::Last {
                    "latest"
                } else {
                    p.name()
                };
                parts.push(count_text(n, name));
            }
        }
        let mut s = if parts.is_empty() {
            String::new()
        } else {
            format!("{} snapshots", parts.join(", "))
        };
        let mut add = |t: String| {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(&t);
        };
        for (p, span) in self.within_periods() {
            if !span.is_zero() {
                add(format!("{} snapshots within {span}", p.name()));
            }
        }
        for t in &self.tags {
            add(format!("snapshots {}", tag_text(t)));
        }
        if !self.within.is_zero() {
            add(format!(
                "all snapshots within {} of the newest",
                self.within
            ));
        }
        format!("keep {s}")
    }
}

fn untagged(list: &[String]) -> bool {
    list.iter().all(|t| t.is_empty())
}

fn tag_text(list: &[String]) -> String {
    if untagged(list) {
        "without tags".into()
    } else {
        format!("tagged {}", list.join(","))
    }
}

fn has_tags(snapshot_tags: &[String], list: &[String]) -> bool {
    if untagged(list) {
        return snapshot_tags.is_empty();
    }
    list.iter()
        .filter(|t| !t.is_empty())
        .all(|t| snapshot_tags.contains(t))
}

/// Whether a snapshot stays, and every rule that kept it (empty when it goes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub keep: bool,
    pub reasons: Vec<String>,
}

/// One snapshot as the policy sees it.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// Nanoseconds since the Unix epoch (UTC).
    pub time: i64,
    pub tags: &'a [String],
}

/// Apply `policy` to one group of snapshots (in any order). `now_ns` only matters for
/// `--keep-within*`: the newest snapshot not in the future is their reference point. Returns
/// one decision per input, in input order. Ties in time count the later input as newer.
pub fn apply(policy: &Policy, now_ns: i64, snaps: &[Candidate]) -> Vec<Decision> {
    let mut out = vec![Decision::default(); snaps.len()];
    if policy.is_empty() {
        // Never "remove everything": an empty policy keeps all (callers refuse anyway).
        for d in &mut out {
            d.keep = true;
            d.reasons.push("no policy".into());
        }
        return out;
    }
    let mut order: Vec<usize> = (0..snaps.len()).collect();
    order.sort_by(|&a, &b| snaps[b].time.cmp(&snaps[a].time).then(b.cmp(&a)));
    let latest = snaps.iter().map(|s| s.time).filter(|&t| t < now_ns).max();
    // Thresholds: a snapshot strictly after it is "within". No snapshot in the past → all are.
    let threshold = |span: &Span| latest.map_or(i64::MIN, |l| span.before(l));
    let within = (!policy.within.is_zero()).then(|| threshold(&policy.within));
    let mut buckets: Vec<(Period, u32, Option<i64>)> = policy
        .counts()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|&(p, n)| (p, n, None))
        .collect();
    let mut within_buckets: Vec<(Period, Span, i64, Option<i64>)> = policy
        .within_periods()
        .iter()
        .filter(|(_, s)| !s.is_zero())
        .map(|&(p, s)| (p, s, threshold(&s), None))
        .collect();
    let n = order.len();
    for (nr, &i) in order.iter().enumerate() {
        let cur = &snaps[i];
        let d = &mut out[i];
        for list in &policy.tags {
            if has_tags(cur.tags, list) {
                d.reasons.push(if untagged(list) {
                    "untagged".to_string()
                } else {
                    format!("tags {}", list.join(","))
                });
            }
        }
        if let Some(t) = within
            && cur.time > t
        {
            d.reasons.push(format!("within {}", policy.within));
        }
        for (period, count, last) in &mut buckets {
            if *count == 0 {
                continue;
            }
            let val = period.bucket(cur.time, nr);
            let oldest = nr == n - 1;
            if Some(val) != *last || oldest {
                let prefix = if Some(val) == *last { "oldest " } else { "" };
                *last = Some(val);
                if *count != UNLIMITED {
                    *count -= 1;
                }
                d.reasons
                    .push(format!("{prefix}{} snapshot", period.name()));
            }
        }
        for (period, span, t, last) in &mut within_buckets {
            if cur.time > *t {
                let val = period.bucket(cur.time, nr);
                if Some(val) != *last {
                    *last = Some(val);
                    d.reasons.push(format!("{} within {span}", period.name()));
                }
            }
        }
        d.keep = !d.reasons.is_empty();
    }
    out
}

/// How snapshots are grouped before the policy is applied to each group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBy {
    pub source: bool,
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

impl Default for GroupBy {
    /// By source: the device (UDID) for iPhone snapshots, host + paths for folders.
    fn default() -> Self {
        GroupBy {
            source: true,
            host: false,
            paths: false,
            tags: false,
        }
    }
}

impl FromStr for GroupBy {
    type Err = String;
    /// `source` (default), `host`, `paths`, `tags`, comma-separated; `''` for one group.
    fn from_str(s: &str) -> std::result::Result<GroupBy, String> {
        let mut g = GroupBy {
            source: false,
            host: false,
            paths: false,
            tags: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "source" => g.source = true,
                "host" => g.host = true,
                "paths" => g.paths = true,
                "tags" => g.tags = true,
                other => {
                    return Err(format!(
                        "invalid --group-by {other:?}: use source, host, paths, tags (comma-separated) or ''"
                    ));
                }
            }
        }
        Ok(g)
    }
}

/// Parse `--group-by` (for clap).
pub fn parse_group_by(s: &str) -> std::result::Result<GroupBy, String> {
    s.parse()
}

impl GroupBy {
    /// The group a snapshot belongs to, as a readable key.
    pub fn key(&self, s: &Snapshot) -> String {
        let mut parts = Vec::new();
        if self.source {
            parts.push(format!("source {}", s.source.describe()));
            if s.source.device.is_none() {
                parts.push(format!("host {}", s.hostname));
            }
        }
        if self.host && !(self.source && s.source.device.is_none()) {
            parts.push(format!("host {}", s.hostname));
        }
        if self.paths && !self.source {
            parts.push(format!("paths {}", s.source.describe()));
        }
        if self.tags {
            let mut t = s.tags.clone();
            t.sort();
            parts.push(format!("tags [{}]", t.join(",")));
        }
        if parts.is_empty() {
            "all snapshots".into()
        } else {
            parts.join(", ")
        }
    }
}

// ---- photo safety ----

/// A photo (or video or sidecar) that no remaining snapshot would hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LostPhoto {
    pub path: String,
    pub kind: String,
    pub taken: Option<String>,
    pub size: u64,
    /// A snapshot to be removed that holds it.
    pub snapshot: SnapshotId,
}

/// What removing some snapshots would lose.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PhotoLoss {
    /// Lost photos, one per distinct content, sorted by path.
    pub lost: Vec<LostPhoto>,
    pub bytes: u64,
    /// Earliest and latest capture time (as recorded, local wall time) of the lost photos.
    pub first_taken: Option<String>,
    pub last_taken: Option<String>,
    /// Trees that could not be read. Unreadable trees of snapshots to be removed make the
    /// answer unknown ([`PhotoLoss::is_safe`] is then false).
    pub problems: Vec<String>,
    pub unverifiable: usize,
}

impl PhotoLoss {
    pub fn is_safe(&self) -> bool {
        self.lost.is_empty() && self.unverifiable == 0
    }
}

/// Identity of a file's content: a digest of its blob ids (16 bytes is plenty against
/// accidental collisions among a library's files).
fn content_key(content: &[BlobId]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    for b in content {
        h.update(b.as_bytes());
    }
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finalize().as_bytes()[..16]);
    k
}

fn taken_key(t: &str) -> &str {
    crate::format::text::prefix(t, 19)
}

/// Photos held by `removed` snapshots whose content appears in none of `remaining` (as any
/// file). Trees are visited once each, and trees shared with a remaining snapshot are not
/// visited again for the removed ones (they cannot hold a lost photo). Memory: the set of
/// content keys of every distinct file in the remaining snapshots (≈ 40 bytes each) plus
/// the visited tree ids.
pub fn photos_lost(
    repo: &Repository,
    index: &Index,
    remaining: &[&Snapshot],
    removed: &[(SnapshotId, &Snapshot)],
) -> Result<PhotoLoss> {
    let mut loss = PhotoLoss::default();
    let mut visited: HashSet<BlobId> = HashSet::new();
    let mut kept_content: HashSet<[u8; 16]> = HashSet::new();
    for s in remaining {
        let mut stack = vec![s.tree];
        while let Some(t) = stack.pop() {
            if !visited.insert(t) {
                continue;
            }
            let tree = match repo.load_tree(index, &t) {
                Ok(tree) => tree,
                Err(e) => {
                    // Conservative: what it holds is treated as absent.
                    loss.problems
                        .push(format!("tree {} of a remaining snapshot: {e}", t.short()));
                    continue;
                }
            };
            for n in tree.nodes {
                match n.kind {
                    NodeKind::Dir => stack.extend(n.subtree),
                    NodeKind::File => {
                        kept_content.insert(content_key(&n.content));
                    }
                    // Symlinks, FIFOs, sockets, devices: no data.
                    _ => {}
                }
            }
        }
    }
    let mut seen_lost: HashSet<[u8; 16]> = HashSet::new();
    for (sid, s) in removed {
        let mut stack = vec![(s.tree, String::new())];
        while let Some((t, path)) = stack.pop() {
            if !visited.insert(t) {
                continue;
            }
            let tree = match repo.load_tree(index, &t) {
                Ok(tree) => tree,
                Err(e) => {
                    loss.unverifiable += 1;
                    let shown = if path.is_empty() { "/" } else { &path };
                    loss.problems.push(format!(
                        "tree of {shown} in snapshot {} cannot be read: {e}",
                        sid.short()
                    ));
                    continue;
                }
            };
            for n in tree.nodes {
                let p = if path.is_empty() {
                    n.name.lossy()
                } else {
                    format!("{path}/{}", n.name.lossy())
                };
                match n.kind {
                    NodeKind::Dir => {
                        if let Some(sub) = n.subtree {
                            stack.push((sub, p));
                        }
                    }
                    NodeKind::File => {
                        let Some(m) = &n.media else { continue };
                        if !m.is_photo() {
                            continue;
                        }
                        let key = content_key(&n.content);
                        if kept_content.contains(&key) || !seen_lost.insert(key) {
                            continue;
                        }
                        loss.bytes += n.size;
                        if let Some(t) = &m.taken {
                            if loss
                                .first_taken
                                .as_deref()
                                .is_none_or(|f| taken_key(t) < taken_key(f))
                            {
                                loss.first_taken = Some(t.clone());
                            }
                            if loss
                                .last_taken
                                .as_deref()
                                .is_none_or(|l| taken_key(t) > taken_key(l))
                            {
                                loss.last_taken = Some(t.clone());
                            }
                        }
                        loss.lost.push(LostPhoto {
                            path: p,
                            kind: m.kind.clone(),
                            taken: m.taken.clone(),
                            size: n.size,
                            snapshot: *sid,
                        });
                    }
                    // Symlinks, FIFOs, sockets, devices: no data.
                    _ => {}
                }
            }
        }
    }
    loss.lost.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(loss)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `YYYY-MM-DD HH:MM` UTC → ns.
    fn t(s: &str) -> i64 {
        let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
        let days = days_from_civil(n(0, 4), n(5, 7) as u32, n(8, 10) as u32);
        (days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60) * NS
    }

    const NOW: &str = "2030-01-01 00:00";

    /// A `taken` from a crafted tree with a multi-byte character across byte 19 orders by
    /// what precedes it (it panicked by slicing inside the character).
    #[test]
    fn taken_key_of_a_taken_cut_inside_a_character() {
        assert_eq!(taken_key("2023-07-01T10:00:0é"), "2023-07-01T10:00:0");
        assert_eq!(
            taken_key("2023-07-01T10:00:00+02:00"),
            "2023-07-01T10:00:00"
        );
        assert_eq!(taken_key("é"), "é");
    }

    /// Apply and return the kept times, newest first.
    fn kept(policy: &Policy, times: &[&str]) -> Vec<String> {
        let ts: Vec<i64> = times.iter().map(|s| t(s)).collect();
        let c: Vec<Candidate> = ts
            .iter()
            .map(|&time| Candidate { time, tags: &[] })
            .collect();
        let d = apply(policy, t(NOW), &c);
        let mut out: Vec<(i64, String)> = d
            .iter()
            .zip(times)
            .filter(|(d, _)| d.keep)
            .map(|(_, s)| (t(s), s.to_string()))
            .collect();
        out.sort_by_key(|x| std::cmp::Reverse(x.0));
        out.into_iter().map(|(_, s)| s).collect()
    }

    /// restic's documentation example: one backup every Sunday 11:00 for 12 weeks.
    fn sundays() -> Vec<&'static str> {
        vec![
            "2019-09-01 11:00",
            "2019-09-08 11:00",
            "2019-09-15 11:00",
            "2019-09-22 11:00",
            "2019-09-29 11:00",
            "2019-10-06 11:00",
            "2019-10-13 11:00",
            "2019-10-20 11:00",
            "2019-10-27 11:00",
            "2019-11-03 11:00",
            "2019-11-10 11:00",
            "2019-11-17 11:00",
        ]
    }

    /// A denser series: several snapshots a day over some months, out of order.
    fn series() -> Vec<&'static str> {
        vec![
            "2024-03-01 09:00",
            "2024-03-01 18:00",
            "2024-01-15 08:00",
            "2023-12-31 23:30",
            "2024-02-29 12:00",
            "2024-03-03 10:00",
            "2024-03-03 10:30",
            "2024-03-04 07:00",
            "2024-03-10 20:00",
            "2024-03-11 06:00",
            "2023-06-01 12:00",
            "2022-12-25 10:00",
        ]
    }

    fn p(f: impl FnOnce(&mut Policy)) -> Policy {
        let mut p = Policy::default();
        f(&mut p);
        p
    }

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            policy: Policy,
            times: Vec<&'static str>,
            want: Vec<&'static str>,
        }
        let cases = vec![
            Case {
                name: "restic docs: --keep-daily 4 on weekly backups",
                policy: p(|p| p.daily = 4),
                times: sundays(),
                want: vec![
                    "2019-11-17 11:00",
                    "2019-11-10 11:00",
                    "2019-11-03 11:00",
                    "2019-10-27 11:00",
                ],
            },
            Case {
                name: "keep-last 3",
                policy: p(|p| p.last = 3),
                times: series(),
                want: vec!["2024-03-11 06:00", "2024-03-10 20:00", "2024-03-04 07:00"],
            },
            Case {
                name: "keep-hourly 5: 10:00 and 10:30 share an hour, the newer counts",
                policy: p(|p| p.hourly = 5),
                times: series(),
                want: vec![
                    "2024-03-11 06:00",
                    "2024-03-10 20:00",
                    "2024-03-04 07:00",
                    "2024-03-03 10:30",
                    "2024-03-01 18:00",
                ],
            },
            Case {
                name: "keep-daily 5: newest of each day with snapshots",
                policy: p(|p| p.daily = 5),
                times: series(),
                want: vec![
                    "2024-03-11 06:00",
                    "2024-03-10 20:00",
                    "2024-03-04 07:00",
                    "2024-03-03 10:30",
                    "2024-03-01 18:00",
                ],
            },
            Case {
                name: "keep-weekly 3: ISO weeks (Mon 11 Mar; Sun 10 Mar belongs to the week of Mon 4 Mar)",
                policy: p(|p| p.weekly = 3),
                times: series(),
                want: vec!["2024-03-11 06:00", "2024-03-10 20:00", "2024-03-03 10:30"],
            },
            Case {
                name: "keep-monthly 3",
                policy: p(|p| p.monthly = 3),
                times: series(),
                want: vec!["2024-03-11 06:00", "2024-02-29 12:00", "2024-01-15 08:00"],
            },
            Case {
                name: "keep-yearly 2",
                policy: p(|p| p.yearly = 2),
                times: series(),
                want: vec!["2024-03-11 06:00", "2023-12-31 23:30"],
            },
            Case {
                name: "keep-yearly 10 runs out of years: the oldest is kept as well",
                policy: p(|p| p.yearly = 10),
                times: series(),
                want: vec!["2024-03-11 06:00", "2023-12-31 23:30", "2022-12-25 10:00"],
            },
            Case {
                name: "keep-monthly 20 runs out: oldest kept once (it is already its month's newest)",
                policy: p(|p| p.monthly = 20),
                times: vec!["2024-01-01 00:00", "2024-01-02 00:00", "2024-02-01 00:00"],
                want: vec!["2024-02-01 00:00", "2024-01-02 00:00", "2024-01-01 00:00"],
            },
            Case {
                name: "keep-within 10d of the newest snapshot (strictly after)",
                policy: p(|p| p.within = "10d".parse().unwrap()),
                times: series(),
                want: vec![
                    "2024-03-11 06:00",
                    "2024-03-10 20:00",
                    "2024-03-04 07:00",
                    "2024-03-03 10:30",
                    "2024-03-03 10:00",
                    "2024-03-01 18:00",
                    "2024-03-01 09:00",
                ],
            },
            Case {
                name: "keep-within 1w6d: 13 days",
                policy: p(|p| p.within = "1w6d".parse().unwrap()),
                times: series(),
                want: vec![
                    "2024-03-11 06:00",
                    "2024-03-10 20:00",
                    "2024-03-04 07:00",
                    "2024-03-03 10:30",
                    "2024-03-03 10:00",
                    "2024-03-01 18:00",
                    "2024-03-01 09:00",
                    "2024-02-29 12:00",
                ],
            },
            Case {
                name: "keep-within 1y2m (2022-12-25 is 1y2m2w before the newest)",
                policy: p(|p| p.within = "1y2m".parse().unwrap()),
                times: series(),
                want: vec![
                    "2024-03-11 06:00",
                    "2024-03-10 20:00",
                    "2024-03-04 07:00",
                    "2024-03-03 10:30",
                    "2024-03-03 10:00",
                    "2024-03-01 18:00",
                    "2024-03-01 09:00",
                    "2024-02-29 12:00",
                    "2024-01-15 08:00",
                    "2023-12-31 23:30",
                    "2023-06-01 12:00",
                ],
            },
            Case {
                name: "keep-within-daily 3d: newest of each day within 3 days",
                policy: p(|p| p.within_daily = "3d".parse().unwrap()),
                times: series(),
                want: vec!["2024-03-11 06:00", "2024-03-10 20:00"],
            },
            Case {
                name: "keep-within-monthly 3m",
                policy: p(|p| p.within_monthly = "3m".parse().unwrap()),
                times: series(),
                want: vec![
                    "2024-03-11 06:00",
                    "2024-02-29 12:00",
                    "2024-01-15 08:00",
                    "2023-12-31 23:30",
                ],
            },
            Case {
                name: "union: daily 2 + weekly 2 + monthly 2 + yearly 3",
                policy: p(|p| {
                    p.daily = 2;
                    p.weekly = 2;
                    p.monthly = 2;
                    p.yearly = 3;
                }),
                times: series(),
                want: vec![
                    "2024-03-11 06:00",
                    "2024-03-10 20:00",
                    "2024-02-29 12:00",
                    "2023-12-31 23:30",
                    "2022-12-25 10:00",
                ],
            },
            Case {
                name: "union: last 1 + within 1d (counted from the newest)",
                policy: p(|p| {
                    p.last = 1;
                    p.within = "1d".parse().unwrap();
                }),
                times: series(),
                want: vec!["2024-03-11 06:00", "2024-03-10 20:00"],
            },
            Case {
                name: "unlimited daily keeps one per day, and (counts never run out) the oldest",
                policy: p(|p| p.daily = UNLIMITED),
                times: vec![
                    "2024-01-01 01:00",
                    "2024-01-01 02:00",
                    "2024-01-01 03:00",
                    "2024-01-02 01:00",
                ],
                want: vec!["2024-01-02 01:00", "2024-01-01 03:00", "2024-01-01 01:00"],
            },
        ];
        for c in cases {
            assert_eq!(kept(&c.policy, &c.times), c.want, "{}", c.name);
        }
    }

    #[test]
    fn restic_docs_example_reasons() {
        let times = sundays();
        let ts: Vec<i64> = times.iter().map(|s| t(s)).collect();
        let c: Vec<Candidate> = ts
            .iter()
            .map(|&time| Candidate { time, tags: &[] })
            .collect();
        let pol = p(|p| {
            p.daily = 7;
            p.weekly = 5;
            p.monthly = 12;
            p.yearly = 75;
        });
        let d = apply(&pol, t(NOW), &c);
        // Newest: matches every rule.
        assert_eq!(
            d[11].reasons,
            vec![
                "daily snapshot",
                "weekly snapshot",
                "monthly snapshot",
                "yearly snapshot"
            ]
        );
        // 2019-10-27 is the last Sunday of October: daily (7th) and weekly and monthly.
        assert_eq!(
            d[8].reasons,
            vec!["daily snapshot", "weekly snapshot", "monthly snapshot"]
        );
        // 2019-09-29 last of September: monthly. The oldest is kept because counts remain.
        assert_eq!(d[4].reasons, vec!["monthly snapshot"]);
        assert_eq!(
            d[0].reasons,
            vec!["oldest monthly snapshot", "oldest yearly snapshot"]
        );
        assert!(!d[1].keep && d[1].reasons.is_empty());
        assert_eq!(d.iter().filter(|x| x.keep).count(), 9);
    }

    #[test]
    fn tags_and_ties_and_future() {
        let a = vec!["photos".to_string()];
        let ab = vec!["photos".to_string(), "trip".to_string()];
        let none: Vec<String> = vec![];
        let c = vec![
            Candidate {
                time: t("2024-01-01 00:00"),
                tags: &a,
            },
            Candidate {
                time: t("2024-01-02 00:00"),
                tags: &ab,
            },
            Candidate {
                time: t("2024-01-03 00:00"),
                tags: &none,
            },
            Candidate {
                time: t("2024-01-04 00:00"),
                tags: &none,
            },
        ];
        let pol = p(|p| p.tags = vec![vec!["photos".into(), "trip".into()]]);
        let d = apply(&pol, t(NOW), &c);
        assert_eq!(
            d.iter().map(|x| x.keep).collect::<Vec<_>>(),
            [false, true, false, false]
        );
        assert_eq!(d[1].reasons, vec!["tags photos,trip"]);
        let pol = p(|p| p.tags = vec![vec!["".into()]]);
        let d = apply(&pol, t(NOW), &c);
        assert_eq!(
            d.iter().map(|x| x.keep).collect::<Vec<_>>(),
            [false, false, true, true]
        );

        // Equal times: the later input counts as newer.
        let c = vec![
            Candidate {
                time: t("2024-01-01 00:00"),
                tags: &none,
            },
            Candidate {
                time: t("2024-01-01 00:00"),
                tags: &none,
            },
        ];
        let d = apply(&p(|p| p.daily = 1), t(NOW), &c);
        assert!(d[1].keep && d[1].reasons == vec!["daily snapshot"]);
        // Index 0 is the oldest and the count is used up: removed.
        assert!(!d[0].keep);

        // Within is measured from the newest snapshot that is not in the future.
        let c = vec![
            Candidate {
                time: t("2024-01-01 00:00"),
                tags: &none,
            },
            Candidate {
                time: t("2024-01-05 00:00"),
                tags: &none,
            },
            Candidate {
                time: t("2031-01-01 00:00"),
                tags: &none,
            },
        ];
        let d = apply(&p(|p| p.within = "2d".parse().unwrap()), t(NOW), &c);
        assert_eq!(
            d.iter().map(|x| x.keep).collect::<Vec<_>>(),
            [false, true, true]
        );

        // Empty policy keeps everything.
        assert!(apply(&Policy::default(), t(NOW), &c).iter().all(|d| d.keep));
    }

    #[test]
    fn spans_and_weeks() {
        let s: Span = "1y6m".parse().unwrap();
        assert_eq!((s.years, s.months), (1, 6));
        assert_eq!("2w".parse::<Span>().unwrap().weeks, 2);
        assert_eq!("30d".parse::<Span>().unwrap().to_string(), "30d");
        assert_eq!(
            "1y2m3w4d5h".parse::<Span>().unwrap().to_string(),
            "1y2m3w4d5h"
        );
        for bad in ["", "d", "30", "3x", "-1d", "1.5d", "99999999999d"] {
            assert!(bad.parse::<Span>().is_err(), "{bad}");
        }
        // Go's AddDate roll-over: 31 March − 1 month = 3 March (2023), 2 March (2024).
        let m1: Span = "1m".parse().unwrap();
        assert_eq!(m1.before(t("2023-03-31 12:00")), t("2023-03-03 12:00"));
        assert_eq!(m1.before(t("2024-03-31 12:00")), t("2024-03-02 12:00"));
        assert_eq!(
            "1y".parse::<Span>().unwrap().before(t("2024-02-29 00:00")),
            t("2023-03-01 00:00")
        );
        assert_eq!(
            "36h".parse::<Span>().unwrap().before(t("2024-01-02 00:00")),
            t("2023-12-31 12:00")
        );
        // ISO weeks.
        let day = |s: &str| t(s).div_euclid(86_400 * NS);
        assert_eq!(iso_week(day("2024-01-01 00:00")), (2024, 1));
        assert_eq!(iso_week(day("2023-01-01 00:00")), (2022, 52));
        assert_eq!(iso_week(day("2020-12-31 00:00")), (2020, 53));
        assert_eq!(iso_week(day("2021-01-03 00:00")), (2020, 53));
        assert_eq!(iso_week(day("2019-12-30 00:00")), (2020, 1));
        assert_eq!(iso_week(0), (1970, 1));
        assert_eq!(parse_count("unlimited"), Ok(UNLIMITED));
        assert_eq!(parse_count("7"), Ok(7));
        assert!(parse_count("x").is_err());
    }

    #[test]
    fn group_by() {
        let mut s = Snapshot {
            version: 1,
            time: 0,
            hostname: "mac".into(),
            username: "u".into(),
            source: crate::format::snapshot::Source::folder(vec!["/p".into()]),
            tags: vec!["b".into(), "a".into()],
            tree: BlobId::default(),
            parent: None,
            summary: Default::default(),
            incomplete: false,
            original: None,
            library: None,
        };
        let g = GroupBy::default();
        assert_eq!(g.key(&s), "source /p, host mac");
        assert_eq!(
            "host,tags".parse::<GroupBy>().unwrap().key(&s),
            "host mac, tags [a,b]"
        );
        assert_eq!("".parse::<GroupBy>().unwrap().key(&s), "all snapshots");
        assert!("nope".parse::<GroupBy>().is_err());
        s.source.device = Some(crate::format::snapshot::Device {
            udid: "0000".into(),
            name: "iPhone".into(),
            model: "m".into(),
            ios_version: "17".into(),
        });
        assert_eq!(g.key(&s), "source iPhone (0000)");
    }

    #[test]
    fn describe() {
        let pol = p(|p| {
            p.daily = 7;
            p.monthly = UNLIMITED;
            p.within = "30d".parse().unwrap();
        });
        assert_eq!(
            pol.describe(),
            "keep 7 daily, all monthly snapshots, all snapshots within 30d of the newest"
        );
        assert!(Policy::default().is_empty());
        assert!(!p(|p| p.tags = vec![vec![]]).is_empty());
    }

    #[test]
    fn photo_safety() {
        use crate::ops::test_support::{create_small_repo, open, photo, snapshot, unphoto};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let src = dir.path().join("lib");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        create_small_repo(&root, true);
        let repo = open(&root);
        for i in 0..8 {
            photo(&src, i);
        }
        photo(&src.join("sub"), 100);
        std::fs::write(src.join("notes.txt"), b"not a photo").unwrap();
        let (s1, _) = snapshot(&repo, &src, &[]);
        // Deleted "on the phone": 0..3; 3 is renamed (same content survives); notes change.
        for i in 0..4 {
            unphoto(&src, i);
        }
        photo(&src.join("sub"), 3);
        std::fs::write(src.join("notes.txt"), b"changed").unwrap();
        let (s2, _) = snapshot(&repo, &src, &[]);
        let index = repo.load_index().unwrap().index;
        let a = repo.load_snapshot(&s1).unwrap();
        let b = repo.load_snapshot(&s2).unwrap();

        let loss = photos_lost(&repo, &index, &[&b], &[(s1, &a)]).unwrap();
        let paths: Vec<&str> = loss.lost.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "lib/IMG_0000.HEIC",
                "lib/IMG_0001.HEIC",
                "lib/IMG_0002.HEIC"
            ]
        );
        assert!(!loss.is_safe());
        assert!(loss.first_taken.is_some() && loss.first_taken <= loss.last_taken);
        assert_eq!(loss.bytes, loss.lost.iter().map(|l| l.size).sum::<u64>());
        assert!(
            loss.lost
                .iter()
                .all(|l| l.snapshot == s1 && l.kind == "photo")
        );

        // Removing the newer one loses nothing: everything in it is in the older one.
        let loss = photos_lost(&repo, &index, &[&a], &[(s2, &b)]).unwrap();
        assert!(loss.is_safe(), "{loss:?}");
        // Removing both loses every photo once, however many snapshots hold it.
        let loss = photos_lost(&repo, &index, &[], &[(s1, &a), (s2, &b)]).unwrap();
        assert_eq!(loss.lost.len(), 9, "{:?}", loss.lost);
        // An unreadable tree of a snapshot to remove makes the answer unknown.
        let mut broken = a.clone();
        broken.tree = BlobId(crate::format::id::Id::random());
        let loss = photos_lost(&repo, &index, &[&b], &[(s1, &broken)]).unwrap();
        assert!(!loss.is_safe() && loss.unverifiable == 1, "{loss:?}");
    }
}
