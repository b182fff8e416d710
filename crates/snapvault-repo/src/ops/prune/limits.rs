//! The limits prune takes from the command line: `--max-unused`, `--max-repack` and the
//! minimum age of packs no index names, with their parsers (for clap).

use std::str::FromStr;

/// How much unused space may stay in partly used packs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxUnused {
    /// Percent of the repository's size after prune.
    Percent(f64),
    Bytes(u64),
    Unlimited,
}

impl FromStr for MaxUnused {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<MaxUnused, String> {
        let t = s.trim();
        if t == "unlimited" {
            return Ok(MaxUnused::Unlimited);
        }
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| {
                format!("invalid limit {s:?}: expected e.g. 5%, 200MiB or unlimited")
            })?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!(
                    "invalid limit {s:?}: a percentage is between 0% and 100%"
                ));
            }
            return Ok(MaxUnused::Percent(v));
        }
        parse_size(t).map(MaxUnused::Bytes)
    }
}

impl std::fmt::Display for MaxUnused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxUnused::Percent(p) => write!(f, "{p}%"),
            MaxUnused::Bytes(b) => write!(f, "{b} bytes"),
            MaxUnused::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// `--max-unused` (for clap).
pub fn parse_max_unused(s: &str) -> std::result::Result<MaxUnused, String> {
    s.parse()
}

/// A size: `1024`, `500K`, `200M`, `1.5G`, `2GiB`, `1TB` (all units are powers of 1024).
pub(crate) fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let bad = || format!("invalid size {s:?}: expected e.g. 500M, 2GiB or a number of bytes");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = v * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `--max-repack`: a size or `unlimited` (None).
pub fn parse_max_repack(s: &str) -> std::result::Result<Option<u64>, String> {
    if s.trim() == "unlimited" {
        return Ok(None);
    }
    parse_size(s).map(Some)
}

/// An age such as `1h`, `30m`, `1h30m`, `2d`, `90s` or `0`.
pub fn parse_age(s: &str) -> std::result::Result<u64, String> {
    let bad = || format!("invalid age {s:?}: expected e.g. 1h, 30m, 2d or 0");
    let t = s.trim();
    if t == "0" {
        return Ok(0);
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for ch in t.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let v: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        total = v
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() || t.is_empty() {
        return Err(bad());
    }
    Ok(total)
}
