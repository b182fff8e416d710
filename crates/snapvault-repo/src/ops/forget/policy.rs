//! The policy engine: snapshot times and tags in, one [`Decision`] per snapshot out
//! (restic's `snapshot_policy`; semantics in the module doc of [`forget`](super)).

use serde::Serialize;

use super::span::{NS, Span, UNLIMITED};
use crate::format::time::{Civil, days_from_civil};

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
