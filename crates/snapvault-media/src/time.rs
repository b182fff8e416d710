//! [`CaptureTime`]: the wall-clock time a camera recorded, plus its UTC offset when known.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest UTC offset accepted, in minutes (±18:00, as ISO 8601 / chrono allow).
pub const MAX_OFFSET_MINUTES: i16 = 18 * 60;

/// Seconds between 0000-01-01T00:00:00 and the Unix epoch (proleptic Gregorian).
const MIN_UNIX: i64 = -62_167_219_200;
/// 9999-12-31T23:59:59 as Unix seconds.
const MAX_UNIX: i64 = 253_402_300_799;

/// Local wall-clock capture time as the camera recorded it, plus its UTC offset when known.
///
/// Ordering (`Ord`) is by local wall time (year, month, …, second) with the offset only as a
/// final tie-break, so that "photos taken in July 2023" means July on the photographer's clock.
/// Serialized (serde) as its string form, e.g. `"2023-07-14T18:03:11+02:00"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaptureTime {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// Minutes east of UTC (`+02:00` is `Some(120)`), `None` when the source did not say.
    pub offset_minutes: Option<i16>,
}

/// Error of [`CaptureTime::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid capture time {0:?} (expected e.g. 2023-07-14T18:03:11+02:00)")]
pub struct ParseCaptureTimeError(pub String);

impl CaptureTime {
    /// A validated capture time: `None` when a field is out of range (month 1–12, a day that
    /// exists in that month, hour < 24, minute < 60, second < 60, year 0–9999, offset ≤ ±18:00).
    pub fn new(
        year: i32,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        offset_minutes: Option<i16>,
    ) -> Option<Self> {
        let t = CaptureTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            offset_minutes,
        };
        t.is_valid().then_some(t)
    }

    /// Whether every field is in range (see [`CaptureTime::new`]).
    pub fn is_valid(&self) -> bool {
        (0..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
            && self
                .offset_minutes
                .is_none_or(|o| o.unsigned_abs() <= MAX_OFFSET_MINUTES.unsigned_abs())
    }

    /// Unix seconds of this instant: UTC when the offset is known, else the local wall time
    /// read as if it were UTC. Total on any field values (never panics).
    pub fn to_unix_seconds(&self) -> i64 {
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        days * 86_400
            + i64::from(self.hour) * 3_600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.offset_minutes.unwrap_or(0)) * 60
    }

    /// The wall time at `offset_minutes` east of UTC of the instant `secs` (Unix seconds).
    /// With `None` the wall time is UTC and the offset stays unknown. Offsets beyond ±18:00
    /// are treated as unknown; instants outside years 0–9999 are clamped into that range.
    pub fn from_unix(secs: i64, offset_minutes: Option<i16>) -> Self {
        let offset_minutes =
            offset_minutes.filter(|o| o.unsigned_abs() <= MAX_OFFSET_MINUTES.unsigned_abs());
        let local = secs
            .saturating_add(i64::from(offset_minutes.unwrap_or(0)) * 60)
            .clamp(MIN_UNIX, MAX_UNIX);
        let days = local.div_euclid(86_400);
        let sod = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        CaptureTime {
            year: year as i32,
            month,
            day,
            hour: (sod / 3_600) as u8,
            minute: (sod / 60 % 60) as u8,
            second: (sod % 60) as u8,
            offset_minutes,
        }
    }

    /// The same wall time with another (or no) offset.
    pub fn with_offset(self, offset_minutes: Option<i16>) -> Self {
        CaptureTime {
            offset_minutes,
            ..self
        }
    }

    /// The same instant expressed in UTC (offset `Some(0)`); unchanged when the offset is
    /// unknown.
    pub fn to_utc(&self) -> Self {
        match self.offset_minutes {
            Some(_) => CaptureTime::from_unix(self.to_unix_seconds(), Some(0)),
            None => *self,
        }
    }
}

impl fmt::Display for CaptureTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.year < 0 {
            write!(f, "-{:04}", self.year.unsigned_abs())?;
        } else {
            write!(f, "{:04}", self.year)?;
        }
        write!(
            f,
            "-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.month, self.day, self.hour, self.minute, self.second
        )?;
        if let Some(o) = self.offset_minutes {
            let sign = if o < 0 { '-' } else { '+' };
            let a = o.unsigned_abs();
            write!(f, "{sign}{:02}:{:02}", a / 60, a % 60)?;
        }
        Ok(())
    }
}

impl FromStr for CaptureTime {
    type Err = ParseCaptureTimeError;

    /// Parses the [`Display`](fmt::Display) form and common variants: `T` or space between
    /// date and time, `-`, `:` or `/` in the date, fractional seconds (ignored), and an
    /// optional offset `Z`, `±HH:MM`, `±HHMM` or `±HH`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_datetime(s.as_bytes()).ok_or_else(|| ParseCaptureTimeError(s.to_owned()))
    }
}

impl Serialize for CaptureTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CaptureTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = CaptureTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a capture time such as \"2023-07-14T18:03:11+02:00\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CaptureTime, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Strip trailing NULs and spaces and leading spaces (EXIF strings are NUL-padded).
pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b'\0' | b' '] = s {
        s = rest;
    }
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    s
}

fn digits(s: &[u8], n: usize) -> Option<u32> {
    let d = s.get(..n)?;
    d.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// A date-time: `YYYY?MM?DD?HH:MM:SS[.fff][offset]` where the date separator is one of
/// `- : / .`, the date/time separator `T`, `t` or a space. EXIF's `2023:07:14 18:03:11` and
/// QuickTime's `2023-07-14T18:03:11+0200` both parse. Invalid dates (EXIF's all-zero
/// "unknown" date included) give `None`.
pub(crate) fn parse_datetime(s: &[u8]) -> Option<CaptureTime> {
    let s = trim(s);
    let year = digits(s, 4)?;
    let dsep = *s.get(4)?;
    if !matches!(dsep, b'-' | b':' | b'/' | b'.') || s.get(7) != Some(&dsep) {
        return None;
    }
    let month = digits(s.get(5..)?, 2)?;
    let day = digits(s.get(8..)?, 2)?;
    if !matches!(s.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(s.get(11..)?, 2)?;
    if s.get(13) != Some(&b':') {
        return None;
    }
    let minute = digits(s.get(14..)?, 2)?;
    // Seconds are optional in ISO 8601 (`2023-07-14T18:03+02:00`).
    let (second, mut rest) = if s.get(16) == Some(&b':') {
        (digits(s.get(17..)?, 2)?, s.get(19..)?)
    } else {
        (0, s.get(16..)?)
    };
    if let [b'.' | b',', tail @ ..] = rest {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &tail[n..];
    }
    let offset = if rest.is_empty() {
        None
    } else {
        Some(parse_offset(rest)?)
    };
    CaptureTime::new(
        year as i32,
        month as u8,
        day as u8,
        hour as u8,
        minute as u8,
        second as u8,
        offset,
    )
}

/// A UTC offset `Z`, `±HH:MM`, `±HHMM` or `±HH`, in minutes east of UTC.
pub(crate) fn parse_offset(s: &[u8]) -> Option<i16> {
    let s = trim(s);
    let (sign, body) = match s {
        [b'Z' | b'z'] => return Some(0),
        [b'+', b @ ..] => (1i16, b),
        [b'-', b @ ..] => (-1i16, b),
        _ => return None,
    };
    let h = digits(body, 2)?;
    let m = match body.len() {
        2 => 0,
        4 => digits(&body[2..], 2)?,
        5 if body[2] == b':' => digits(&body[3..], 2)?,
        _ => return None,
    };
    if m >= 60 {
        return None;
    }
    let total = i16::try_from(h * 60 + m).ok()?;
    (total <= MAX_OFFSET_MINUTES).then_some(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> CaptureTime {
        s.parse().expect(s)
    }

    #[test]
    fn display_and_parse_round_trip() {
        for s in [
            "2023-07-14T18:03:11+02:00",
            "2023-07-14T18:03:11",
            "2024-02-29T00:00:00-04:30",
            "1999-12-31T23:59:59+00:00",
            "0000-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
        ] {
            assert_eq!(t(s).to_string(), s);
        }
    }

    #[test]
    fn parses_variants() {
        let want = t("2023-07-14T18:03:11+02:00");
        assert_eq!(t("2023-07-14T18:03:11+0200"), want);
        assert_eq!(t("2023-07-14 18:03:11+02"), want);
        assert_eq!(t("2023-07-14T18:03:11.123+02:00"), want);
        assert_eq!(t("2023:07:14 18:03:11+02:00"), want);
        assert_eq!(
            t("2023-07-14T16:03:11Z"),
            CaptureTime::from_unix(want.to_unix_seconds(), Some(0))
        );
        assert_eq!(
            parse_datetime(b"2023:07:14 18:03:11\0"),
            Some(want.with_offset(None))
        );
        assert_eq!(t("2023-07-14T18:03-01:00").second, 0);
    }

    #[test]
    fn rejects_bad_input() {
        for s in [
            "",
            "0000:00:00 00:00:00",
            "    :  :     :  :  ",
            "2023-02-29T00:00:00",
            "2023-13-01T00:00:00",
            "2023-07-14T24:00:00",
            "2023-07-14T18:60:00",
            "2023-07-14T18:03:60",
            "2023-07-14T18:03:11+19:00",
            "2023-07-14T18:03:11+02:60",
            "2023-07-14T18:03:11 garbage",
            "2023-07-14X18:03:11",
            "2023-07:14T18:03:11",
            "2023-07-14T18:03:11.",
            "23-07-14T18:03:11",
            "２023-07-14T18:03:11",
        ] {
            assert!(s.parse::<CaptureTime>().is_err(), "{s:?}");
        }
    }

    #[test]
    fn unix_conversions() {
        let c = t("2023-07-14T18:03:11+02:00");
        assert_eq!(c.to_unix_seconds(), 1_689_350_591);
        assert_eq!(CaptureTime::from_unix(1_689_350_591, Some(120)), c);
        assert_eq!(
            CaptureTime::from_unix(1_689_350_591, None),
            t("2023-07-14T16:03:11")
        );
        assert_eq!(t("2023-07-14T16:03:11").to_unix_seconds(), 1_689_350_591);
        assert_eq!(CaptureTime::from_unix(0, None), t("1970-01-01T00:00:00"));
        assert_eq!(
            CaptureTime::from_unix(-1, Some(-60)),
            t("1969-12-31T22:59:59-01:00")
        );
        // Extremes clamp, never panic.
        assert_eq!(CaptureTime::from_unix(i64::MAX, Some(840)).year, 9999);
        assert_eq!(CaptureTime::from_unix(i64::MIN, None).year, 0);
        assert_eq!(
            CaptureTime::from_unix(0, Some(i16::MAX)).offset_minutes,
            None
        );
        // Every day for a few centuries round-trips.
        for day in (-200_000i64..200_000).step_by(7) {
            let secs = day * 86_400 + 45_296;
            let c = CaptureTime::from_unix(secs, None);
            assert!(c.is_valid());
            assert_eq!(c.to_unix_seconds(), secs);
        }
        // Any field values: no panic.
        let wild = CaptureTime {
            year: i32::MIN,
            month: 255,
            day: 255,
            hour: 255,
            minute: 255,
            second: 255,
            offset_minutes: Some(i16::MIN),
        };
        let _ = wild.to_unix_seconds();
        let _ = wild.to_string();
        assert!(!wild.is_valid());
    }

    #[test]
    fn ordering_is_by_wall_time() {
        let mut v = [
            t("2023-07-14T18:03:11+02:00"),
            t("2023-07-14T17:03:11-05:00"),
            t("2022-12-31T23:59:59"),
            t("2023-07-14T18:03:11"),
            t("2023-07-14T18:03:10+14:00"),
        ];
        v.sort();
        let s: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(
            s,
            [
                "2022-12-31T23:59:59",
                "2023-07-14T17:03:11-05:00",
                "2023-07-14T18:03:10+14:00",
                "2023-07-14T18:03:11",
                "2023-07-14T18:03:11+02:00",
            ]
        );
    }

    #[test]
    fn serde_as_string() {
        let c = t("2023-07-14T18:03:11+02:00");
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, "\"2023-07-14T18:03:11+02:00\"");
        assert_eq!(serde_json::from_str::<CaptureTime>(&j).unwrap(), c);
        assert!(serde_json::from_str::<CaptureTime>("\"nope\"").is_err());
        assert!(serde_json::from_str::<CaptureTime>("17").is_err());
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset(b"+02:00\0"), Some(120));
        assert_eq!(parse_offset(b"-0330"), Some(-210));
        assert_eq!(parse_offset(b"+14"), Some(840));
        assert_eq!(parse_offset(b"Z"), Some(0));
        assert_eq!(parse_offset(b"   :  \0"), None);
        assert_eq!(parse_offset(b"+2:00"), None);
        assert_eq!(parse_offset(b""), None);
    }
}
