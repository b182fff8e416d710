//! Who may ask the browse server anything: whoever presents its random token, either in
//! the address it printed (`?token=…`, once) or in the cookie the first page then sets
//! (`HttpOnly`, `SameSite=Strict`). On a loopback address the `Host` header must name the
//! server too, so a web page whose domain was rebound to 127.0.0.1 gets nowhere even
//! before the token is asked for.

use anyhow::{Context, Result};
use rand::RngCore;

/// How a request stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The cookie carries the token.
    Cookie,
    /// The query carries it (the printed address): set the cookie.
    Query,
    /// No token, a wrong one, or a `Host` this server does not answer to.
    Forbidden,
}

pub struct Access {
    token: String,
    cookie: String,
    /// `Host` values accepted (`None`: any, with `--allow-remote`).
    hosts: Option<Vec<String>>,
}

impl Access {
    /// A fresh 256-bit token from the operating system's random source.
    pub fn new(port: u16, check_host: bool) -> Result<Access> {
        let mut b = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut b)
            .context("reading the operating system's random source for the access token")?;
        Ok(Access::with_token(hex::encode(b), port, check_host))
    }

    pub fn with_token(token: String, port: u16, check_host: bool) -> Access {
        Access {
            token,
            // Cookies are per host, not per port: one name per server, so two servers
            // on 127.0.0.1 don't overwrite each other's.
            cookie: format!("snapvault_{port}"),
            hosts: check_host.then(|| {
                ["127.0.0.1", "localhost", "[::1]"]
                    .iter()
                    .map(|h| format!("{h}:{port}"))
                    .collect()
            }),
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The `Set-Cookie` value that keeps the token in the browser.
    pub fn set_cookie(&self) -> String {
        format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            self.cookie, self.token
        )
    }

    /// Judge a request from its `Host` and `Cookie` headers and its query string.
    pub fn judge(&self, host: Option<&str>, cookies: &[&str], query: Option<&str>) -> Verdict {
        if let Some(hosts) = &self.hosts
            && !host.is_some_and(|h| hosts.iter().any(|x| x.eq_ignore_ascii_case(h)))
        {
            return Verdict::Forbidden;
        }
        let in_cookie = cookies
            .iter()
            .flat_map(|h| h.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .any(|(k, v)| k == self.cookie && same(v, &self.token));
        if in_cookie {
            return Verdict::Cookie;
        }
        if query_token(query).is_some_and(|t| same(t, &self.token)) {
            return Verdict::Query;
        }
        Verdict::Forbidden
    }
}

/// The `token` parameter of a query string.
fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|kv| kv.strip_prefix("token="))
}

/// The query without its `token` parameter (for the address the browser goes on to).
pub fn without_token(query: Option<&str>) -> String {
    let rest: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("token="))
        .collect();
    if rest.is_empty() {
        String::new()
    } else {
        format!("?{}", rest.join("&"))
    }
}

/// Compare without stopping at the first difference (the time taken says nothing about
/// how much of a guess was right).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cookies_and_hosts() {
        let a = Access::with_token("abc123".into(), 8080, true);
        let h = Some("127.0.0.1:8080");
        assert_eq!(a.judge(h, &[], None), Verdict::Forbidden);
        assert_eq!(a.judge(h, &[], Some("token=abc124")), Verdict::Forbidden);
        assert_eq!(a.judge(h, &[], Some("token=abc12")), Verdict::Forbidden);
        assert_eq!(a.judge(h, &[], Some("f=x&token=abc123")), Verdict::Query);
        assert_eq!(
            a.judge(h, &["a=b; snapvault_8080=abc123"], None),
            Verdict::Cookie
        );
        // Another server's cookie is not ours.
        assert_eq!(
            a.judge(h, &["snapvault_8081=abc123"], None),
            Verdict::Forbidden
        );
        // Rebinding: the right token under a foreign Host is still refused.
        assert_eq!(
            a.judge(Some("evil.example:8080"), &[], Some("token=abc123")),
            Verdict::Forbidden
        );
        assert_eq!(a.judge(None, &[], Some("token=abc123")), Verdict::Forbidden);
        let remote = Access::with_token("abc123".into(), 8080, false);
        assert_eq!(
            remote.judge(Some("photos.lan:8080"), &[], Some("token=abc123")),
            Verdict::Query
        );
        assert_eq!(without_token(Some("token=x&f=vanished")), "?f=vanished");
        assert_eq!(without_token(Some("token=x")), "");
        assert!(a.set_cookie().contains("HttpOnly; SameSite=Strict"));
        let r = Access::new(1, true).unwrap();
        assert_eq!(r.token().len(), 64);
        assert_ne!(r.token(), Access::new(1, true).unwrap().token());
    }
}
