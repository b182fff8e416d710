//! Human-readable sizes, durations and times.

pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000)
    }
}

pub fn time_ns(ns: i64) -> String {
    snapvault_repo::time::format_utc(ns.div_euclid(1_000_000_000))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::size(12), "12 B");
        assert_eq!(super::size(1536), "1.5 KiB");
        assert_eq!(super::size(3 << 30), "3.0 GiB");
        assert_eq!(super::duration_ms(61_500), "1m01s");
    }
}

/// Parse a duration like `90s`, `10m`, `1h30m`, `2d`.
pub fn parse_duration(s: &str) -> anyhow::Result<std::time::Duration> {
    let mut total = 0u64;
    let mut num = String::new();
    let bad = || anyhow::anyhow!("invalid duration {s:?}: use e.g. 90s, 10m, 1h30m, 2d");
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}

#[cfg(test)]
mod duration_tests {
    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(super::parse_duration("10m").unwrap().as_secs(), 600);
        assert!(super::parse_duration("10").is_err());
        assert!(super::parse_duration("x").is_err());
        assert!(super::parse_duration("0s").is_err());
    }
}

/// Put a name or path into a JSON object losslessly: `key` holds it as text (a name that is
/// not UTF-8 with U+FFFD where bytes are invalid), and only then `key_hex` the exact bytes
/// in hex (docs/json.md).
pub fn json_bytes(obj: &mut serde_json::Map<String, serde_json::Value>, key: &str, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => {
            obj.insert(key.into(), s.into());
        }
        Err(_) => {
            obj.insert(key.into(), String::from_utf8_lossy(b).into());
            obj.insert(format!("{key}_hex"), hex::encode(b).into());
        }
    }
}
