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

mod group;
mod photos;
mod policy;
mod span;

pub use group::{GroupBy, parse_group_by};
pub use photos::{LostPhoto, PhotoLoss, photos_lost};
pub use policy::{Candidate, Decision, Policy, apply};
pub use span::{Span, parse_count, parse_span};

#[cfg(test)]
mod tests {
    use super::photos::taken_key;
    use super::policy::iso_week;
    use super::span::{NS, UNLIMITED};
    use super::*;
    use crate::format::id::BlobId;
    use crate::format::snapshot::Snapshot;
    use crate::format::time::days_from_civil;

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
