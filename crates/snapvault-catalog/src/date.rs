//! Capture-date filters (`--date`) and media-kind filters (`--kind`).
//!
//! A photo's date is the *local* capture date as the camera recorded it: the `YYYY-MM-DD`
//! part of its `taken` string, whatever the UTC offset. Dates are compared as the integer
//! `YYYYMMDD` ("day number"), and a bound at month or year granularity covers the whole
//! month or year: `2023-07` is `20230700..=20230799`, `2023` is `20230000..=20239999`.

use std::fmt;
use std::str::FromStr;

use crate::CatalogError;

const FORMS: &str = "use YYYY, YYYY-MM, YYYY-MM-DD, or a range A..B, ..B, A.. of those";

/// One end of a date range, at its own granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatePoint {
    pub year: u16,
    pub month: Option<u8>,
    pub day: Option<u8>,
}

impl DatePoint {
    /// The first day number it covers.
    pub fn first_day(&self) -> u32 {
        self.year as u32 * 10_000
            + self.month.unwrap_or(0) as u32 * 100
            + self.day.unwrap_or(0) as u32
    }

    /// The last day number it covers.
    pub fn last_day(&self) -> u32 {
        self.year as u32 * 10_000
            + match (self.month, self.day) {
                (None, _) => 9999,
                (Some(m), None) => m as u32 * 100 + 99,
                (Some(m), Some(d)) => m as u32 * 100 + d as u32,
            }
    }
}

impl fmt::Display for DatePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some(m) = self.month {
            write!(f, "-{m:02}")?;
        }
        if let Some(d) = self.day {
            write!(f, "-{d:02}")?;
        }
        Ok(())
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

fn parse_point(s: &str) -> Result<DatePoint, String> {
    let mut parts = s.split('-');
    let y = parts.next().unwrap_or_default();
    let year = digits(y, 4).ok_or_else(|| format!("{y:?} is not a four-digit year"))?;
    if year == 0 {
        return Err("year 0000 does not exist".into());
    }
    let mut p = DatePoint {
        year: year as u16,
        month: None,
        day: None,
    };
    if let Some(m) = parts.next() {
        let month = digits(m, 2).ok_or_else(|| format!("{m:?} is not a two-digit month"))?;
        if !(1..=12).contains(&month) {
            return Err(format!("month {m} is not 01..12"));
        }
        p.month = Some(month as u8);
        if let Some(d) = parts.next() {
            let day = digits(d, 2).ok_or_else(|| format!("{d:?} is not a two-digit day"))?;
            let max = days_in_month(p.year, month as u8);
            if day < 1 || day > max as u32 {
                return Err(format!("day {d} is not 01..{max} in {p}"));
            }
            p.day = Some(day as u8);
        }
    }
    if parts.next().is_some() {
        return Err("too many parts".into());
    }
    Ok(p)
}

/// A capture-date filter: one day, month or year, or an inclusive range whose ends each
/// keep their own granularity (`2023-06..2023-08` is 1 June to 31 August), possibly open
/// on one side (`..2022`, `2024-03..`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateRange {
    pub from: Option<DatePoint>,
    pub to: Option<DatePoint>,
}

impl DateRange {
    /// Inclusive bounds as day numbers (`YYYYMMDD`); open ends are 0 and `u32::MAX`.
    pub fn day_bounds(&self) -> (u32, u32) {
        (
            self.from.map_or(0, |p| p.first_day()),
            self.to.map_or(u32::MAX, |p| p.last_day()),
        )
    }

    /// Does a `taken` string (`YYYY-MM-DDTHH:MM:SS[±HH:MM]`) fall in the range?
    pub fn contains(&self, taken: &str) -> bool {
        let (lo, hi) = self.day_bounds();
        day_number(taken).is_some_and(|d| lo <= d && d <= hi)
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.from, self.to) {
            (Some(a), Some(b)) if a == b => write!(f, "{a}"),
            (a, b) => {
                if let Some(a) = a {
                    write!(f, "{a}")?;
                }
                f.write_str("..")?;
                if let Some(b) = b {
                    write!(f, "{b}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for DateRange {
    type Err = CatalogError;

    fn from_str(input: &str) -> Result<Self, CatalogError> {
        let bad = |reason: String| CatalogError::BadDate {
            input: input.to_string(),
            reason: format!("{reason}; {FORMS}"),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(bad("empty".into()));
        }
        let range = match s.split_once("..") {
            None => {
                let p = parse_point(s).map_err(bad)?;
                DateRange {
                    from: Some(p),
                    to: Some(p),
                }
            }
            Some((a, b)) => {
                let (a, b) = (a.trim(), b.trim());
                if a.is_empty() && b.is_empty() {
                    return Err(bad("a range needs at least one end".into()));
                }
                let from = (!a.is_empty())
                    .then(|| parse_point(a))
                    .transpose()
                    .map_err(bad)?;
                let to = (!b.is_empty())
                    .then(|| parse_point(b))
                    .transpose()
                    .map_err(bad)?;
                DateRange { from, to }
            }
        };
        if let (Some(a), Some(b)) = (range.from, range.to)
            && a.first_day() > b.last_day()
        {
            return Err(bad(format!("the range starts ({a}) after it ends ({b})")));
        }
        Ok(range)
    }
}

/// The day number `YYYYMMDD` of a `taken` string, from its leading `YYYY-MM-DD`.
pub fn day_number(taken: &str) -> Option<u32> {
    let b = taken.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    // `taken` comes from a stored tree: a multi-byte character may sit anywhere.
    let y = digits(taken.get(0..4)?, 4)?;
    let m = digits(taken.get(5..7)?, 2)?;
    let d = digits(taken.get(8..10)?, 2)?;
    Some(y * 10_000 + m * 100 + d)
}

/// Which media a query returns. Without a filter, photos and videos (not sidecars).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindFilter {
    Photo,
    Video,
    /// Stills that have a Live Photo video beside them (same pairing key, same folder).
    Live,
}

impl FromStr for KindFilter {
    type Err = CatalogError;
    fn from_str(s: &str) -> Result<Self, CatalogError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "photo" | "photos" => Ok(KindFilter::Photo),
            "video" | "videos" => Ok(KindFilter::Video),
            "live" => Ok(KindFilter::Live),
            _ => Err(CatalogError::BadKind(s.to_string())),
        }
    }
}

impl fmt::Display for KindFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KindFilter::Photo => "photo",
            KindFilter::Video => "video",
            KindFilter::Live => "live",
        })
    }
}

#[cfg(test)]
// Day numbers are written 2023_07_14 for readability.
#[allow(clippy::inconsistent_digit_grouping)]
mod tests {
    use super::*;

    fn bounds(s: &str) -> (u32, u32) {
        s.parse::<DateRange>()
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .day_bounds()
    }

    #[test]
    fn accepted_forms() {
        let table: &[(&str, u32, u32, &str)] = &[
            ("2023", 2023_00_00, 2023_99_99, "2023"),
            ("2023-07", 2023_07_00, 2023_07_99, "2023-07"),
            ("2023-07-14", 2023_07_14, 2023_07_14, "2023-07-14"),
            (
                "2023-06..2023-08",
                2023_06_00,
                2023_08_99,
                "2023-06..2023-08",
            ),
            (
                "2023-06-30..2023-07",
                2023_06_30,
                2023_07_99,
                "2023-06-30..2023-07",
            ),
            (
                "2021..2023-02-28",
                2021_00_00,
                2023_02_28,
                "2021..2023-02-28",
            ),
            ("..2022", 0, 2022_99_99, "..2022"),
            ("2024-03..", 2024_03_00, u32::MAX, "2024-03.."),
            ("2023-07..2023-07", 2023_07_00, 2023_07_99, "2023-07"),
            (" 2023-07 ", 2023_07_00, 2023_07_99, "2023-07"),
            ("2024-02-29", 2024_02_29, 2024_02_29, "2024-02-29"),
            ("2000-02-29", 2000_02_29, 2000_02_29, "2000-02-29"),
        ];
        for &(input, lo, hi, shown) in table {
            assert_eq!(bounds(input), (lo, hi), "{input}");
            assert_eq!(input.parse::<DateRange>().unwrap().to_string(), shown);
        }
    }

    #[test]
    fn rejected_forms_name_the_input() {
        let table: &[(&str, &str)] = &[
            ("", "empty"),
            ("..", "at least one end"),
            ("23", "four-digit year"),
            ("2023-7", "two-digit month"),
            ("2023-13", "month 13"),
            ("2023-00", "month 00"),
            ("2023-02-29", "day 29"),
            ("1900-02-29", "day 29"),
            ("2023-04-31", "day 31"),
            ("2023-07-14T10:00", "two-digit day"),
            ("2023-07-14-01", "too many parts"),
            ("july", "four-digit year"),
            ("0000", "0000"),
            (
                "2023-08..2023-06",
                "starts (2023-08) after it ends (2023-06)",
            ),
            ("2023..x", "\"x\""),
            ("2023...2024", "four-digit year"),
            ("+2023", "four-digit year"),
        ];
        for &(input, why) in table {
            let e = input.parse::<DateRange>().expect_err(input).to_string();
            assert!(e.contains(&format!("{input:?}")), "{e}");
            assert!(e.contains(why), "{input}: {e}");
            assert!(e.contains("YYYY-MM"), "{e}");
        }
    }

    #[test]
    fn contains_uses_local_date() {
        let r: DateRange = "2023-07".parse().unwrap();
        assert!(r.contains("2023-07-01T00:00:00+14:00"));
        assert!(r.contains("2023-07-31T23:59:59-12:00"));
        assert!(!r.contains("2023-08-01T00:00:00"));
        assert!(!r.contains("2023-06-30T23:59:59"));
        assert!(!r.contains("garbage"));
        assert!(!r.contains(""));
        assert_eq!(day_number("2023-07-14T18:03:11+02:00"), Some(2023_07_14));
        assert_eq!(day_number("2023-07-1"), None);
        assert_eq!(day_number("2023/07/14"), None);
    }

    /// A `taken` from a crafted tree, with a multi-byte character where the day's digits
    /// should be, is no date (it panicked by slicing inside the character).
    #[test]
    fn day_number_of_a_taken_cut_inside_a_character() {
        assert_eq!(day_number("2023-07-0é"), None);
        assert_eq!(day_number("2023-07-é1"), None);
        assert_eq!(day_number("2023-0é-01"), None);
        assert_eq!(day_number("éé-07-01ab"), None);
        let r: DateRange = "2023-07".parse().unwrap();
        assert!(!r.contains("2023-07-0é"));
    }

    #[test]
    fn kinds() {
        assert_eq!("photo".parse::<KindFilter>().unwrap(), KindFilter::Photo);
        assert_eq!("Videos".parse::<KindFilter>().unwrap(), KindFilter::Video);
        assert_eq!("live".parse::<KindFilter>().unwrap(), KindFilter::Live);
        let e = "raw".parse::<KindFilter>().unwrap_err().to_string();
        assert!(e.contains("\"raw\""), "{e}");
    }
}
