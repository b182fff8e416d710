//! The arguments of the `--keep-*` options: counts and calendar spans (`1y6m`, `2w`).

use std::fmt;
use std::str::FromStr;

use crate::format::time::{Civil, days_from_civil};

/// A count meaning "every period" (`--keep-daily unlimited`).
pub(crate) const UNLIMITED: u32 = u32::MAX;

pub(super) const NS: i64 = 1_000_000_000;

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
