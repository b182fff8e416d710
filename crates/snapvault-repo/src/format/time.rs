//! Small time and host helpers (no calendar crate needed for UTC civil dates).

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_unix() -> i64 {
    now_ns() / 1_000_000_000
}

pub fn now_ns() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i64,
        Err(e) => -(e.duration().as_nanos() as i64),
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Who runs this process, as lock holders, snapshots and key files name it: `USER` or
/// `LOGNAME`, else the name the user database gives the process's user id (root from cron,
/// a service or `sudo -i` often has neither variable: it was "unknown"), else `uid N`.
pub fn username() -> String {
    username_from(|k| std::env::var(k).ok())
}

fn username_from(env: impl Fn(&str) -> Option<String>) -> String {
    if let Some(u) = env("USER")
        .or_else(|| env("LOGNAME"))
        .filter(|u| !u.is_empty())
    {
        return u;
    }
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    let uid = unsafe { libc::geteuid() };
    name_of_uid(uid).unwrap_or_else(|| format!("uid {uid}"))
}

/// `getpwuid_r` (POSIX: Linux and macOS alike); `None` when the database has no entry.
fn name_of_uid(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: a zeroed `passwd` is a valid value to be written over (pointers and ints).
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to live memory of the sizes given; on success `found` points
    // at `pw`, whose strings point into `buf`, both alive while read below.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: `pw_name` is a NUL-terminated string in `buf` (checked non-null above).
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty())
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic Gregorian.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Broken-down UTC time of a unix timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    pub fn from_unix(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

/// `2026-11-26 05:38:21` (UTC).
pub fn format_utc(secs: i64) -> String {
    let c = Civil::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Unix seconds of a UTC time written `2019-07-14`, `2019-07-14 10:30`,
/// `2019-07-14 10:30:05` or with `T` between date and time and an optional `Z`.
pub fn parse_utc(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, clock) = match s.split_once([' ', 'T']) {
        Some((d, c)) => (d, Some(c.trim())),
        None => (s, None),
    };
    let num = |t: &str, max: u32| -> Option<u32> {
        let v: u32 = t
            .parse()
            .ok()
            .filter(|_| t.bytes().all(|b| b.is_ascii_digit()))?;
        (v <= max).then_some(v)
    };
    let mut d = date.split('-');
    let y: i64 = d
        .next()
        .filter(|t| t.len() == 4)
        .and_then(|t| num(t, 9999))? as i64;
    let m = d.next().and_then(|t| num(t, 12)).filter(|&m| m >= 1)?;
    let day = d.next().and_then(|t| num(t, 31)).filter(|&x| x >= 1)?;
    if d.next().is_some() {
        return None;
    }
    let days = days_from_civil(y, m, day);
    // 2019-02-30 is not a date: it must come back as itself.
    if civil_from_days(days) != (y, m, day) {
        return None;
    }
    let mut secs = 0i64;
    if let Some(c) = clock {
        let parts: Vec<&str> = c.split(':').collect();
        let (h, mi, se) = match parts.as_slice() {
            [h, mi] => (num(h, 23)?, num(mi, 59)?, 0),
            [h, mi, se] => (num(h, 23)?, num(mi, 59)?, num(se, 59)?),
            _ => return None,
        };
        secs = i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se);
    }
    Some(days * 86_400 + secs)
}

/// RFC 3339 in UTC: `2026-11-26T05:38:21Z`.
pub fn rfc3339_utc(secs: i64) -> String {
    let c = Civil::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without `USER` and `LOGNAME` (root from cron or a service), the user is named from
    /// the user database, or by number: a lock held so read "by unknown". Before:
    /// "unknown".
    #[test]
    fn a_user_without_user_in_the_environment_is_named_from_the_uid() {
        let name = username_from(|_| None);
        // SAFETY: as in `username_from`.
        let uid = unsafe { libc::geteuid() };
        let want = name_of_uid(uid).unwrap_or_else(|| format!("uid {uid}"));
        assert_eq!(name, want);
        assert_ne!(name, "unknown");
        assert!(!name.is_empty());
        assert_eq!(
            username_from(|k| (k == "LOGNAME").then(|| "ann".into())),
            "ann"
        );
        assert_eq!(username_from(|k| (k == "USER").then(String::new)), want);
    }

    #[test]
    fn parse_utc_forms() {
        assert_eq!(parse_utc("1970-01-02"), Some(86_400));
        assert_eq!(
            parse_utc("2019-07-14 10:30"),
            parse_utc("2019-07-14T10:30:00Z")
        );
        assert_eq!(
            parse_utc("2019-07-14 10:30:05").map(format_utc).as_deref(),
            Some("2019-07-14 10:30:05")
        );
        for bad in [
            "",
            "2019",
            "2019-02-30",
            "2019-13-01",
            "19-07-14",
            "2019-07-14 25:00",
            "yesterday",
            "2019-07-14 10",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 59, 10_957, 19_000, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
    }
}
