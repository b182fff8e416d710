//! Refusing trivially weak new passwords. A repository's password is all that protects the
//! photos on a lost or stolen drive, so `init`, `key add` and `key passwd` turn down what
//! anyone would guess first; `--allow-weak-password` overrides for the user who insists.
//! This is a floor, not a strength meter.

/// Passwords people try first (compared case-insensitively).
const COMMON: &[&str] = &[
    "password",
    "password1",
    "passw0rd",
    "12345678",
    "123456789",
    "1234567890",
    "87654321",
    "qwertyuiop",
    "qwerty123",
    "iloveyou",
    "letmein1",
    "sunshine",
    "football",
    "baseball",
    "superman",
    "trustno1",
    "snapvault",
    "photos123",
    "welcome1",
    "abc12345",
    "admin123",
];

/// Why `pw` is too weak to protect a repository, or `None`.
pub fn weakness(pw: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(pw);
    let chars: Vec<char> = text.chars().collect();
    if chars.len() < 8 {
        return Some("shorter than 8 characters");
    }
    if chars.iter().all(|c| *c == chars[0]) {
        return Some("one character repeated");
    }
    let steps: Vec<i64> = chars
        .windows(2)
        .map(|w| i64::from(u32::from(w[1])) - i64::from(u32::from(w[0])))
        .collect();
    if steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == -1) {
        return Some("a simple sequence");
    }
    let lower = text.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Some("one of the most common passwords");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::weakness;

    #[test]
    fn trivial_passwords_are_weak_and_ordinary_ones_are_not() {
        for weak in [
            "x",
            "secret",
            "aaaaaaaaaa",
            "12345678",
            "abcdefghij",
            "Password",
            "9876543210",
        ] {
            assert!(weakness(weak.as_bytes()).is_some(), "{weak:?}");
        }
        for ok in [
            "correct horse battery staple",
            "Tr0ub4dor&3",
            "second horse",
        ] {
            assert_eq!(weakness(ok.as_bytes()), None, "{ok:?}");
        }
    }
}
