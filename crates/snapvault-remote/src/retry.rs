//! When to try a failed storage request again, for S3 and SFTP alike.
//!
//! Time limits are about progress, never about total duration: a request that moves data
//! may take as long as the link needs. What ends a command is a request that moves nothing
//! for `stall` ([`crate::RemoteOptions::stall`], `SNAPVAULT_TIMEOUT`): it is retried once
//! on a fresh connection, so a dead server is reported after about two stall periods. A
//! refused connection is retried for a few seconds only (a server restarting), then named.
//! Other transient failures (resets, 5xx, a dropped SSH session) are retried with jittered
//! exponential backoff, `retries` times in a row; an attempt that made progress the caller
//! keeps (an SFTP upload that got further before its connection dropped) starts the count
//! again.

use std::time::Duration;

/// What became of one attempt, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Nothing accepts connections there (the server is down or the port is wrong).
    Refused,
    /// Connected, but no data moved for the stall period.
    Stalled,
    /// Reset, dropped, a 5xx: may well work when repeated.
    Transient,
    /// The server answered no (missing file, access denied, bad request): don't repeat.
    Permanent,
}

/// How long refused connections are retried: long enough for a server restart.
const REFUSED_TRIES: u32 = 5;
/// Stalls are retried this many times in a row (once: a fresh connection may work).
const STALL_RETRIES: u32 = 1;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Policy {
    pub fn new(retries: usize) -> Policy {
        Policy {
            retries,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Counts consecutive failures of one operation and says whether to go on.
#[derive(Debug)]
pub(crate) struct Tries {
    policy: Policy,
    transient: u32,
    stalled: u32,
    refused: u32,
}

impl Tries {
    pub fn new(policy: Policy) -> Tries {
        Tries {
            policy,
            transient: 0,
            stalled: 0,
            refused: 0,
        }
    }

    /// The attempt got somewhere the next one builds on: failures so far are forgiven.
    pub fn progressed(&mut self) {
        self.transient = 0;
        self.stalled = 0;
        self.refused = 0;
    }

    /// After a failed attempt: how long to wait before the next, or `None` to give up.
    pub fn next_delay(&mut self, f: Failure) -> Option<Duration> {
        match f {
            Failure::Permanent => None,
            Failure::Refused => {
                self.refused += 1;
                // 0.5, 1, 2, 4 s: a restarting server is back by then.
                (self.refused < REFUSED_TRIES)
                    .then(|| Duration::from_millis(250 << self.refused.min(6)))
            }
            Failure::Stalled => {
                self.stalled += 1;
                (self.stalled <= STALL_RETRIES).then_some(self.policy.min_delay)
            }
            Failure::Transient => {
                self.transient += 1;
                if self.transient as usize > self.policy.retries {
                    return None;
                }
                let exp =
                    self.policy.min_delay.as_secs_f64() * 2f64.powi(self.transient as i32 - 1);
                let capped = exp.min(self.policy.max_delay.as_secs_f64());
                // Full jitter in [d/2, d): many connections failing together don't come back
                // in step.
                let jitter = 0.5 + rand::random::<f64>() * 0.5;
                Some(Duration::from_secs_f64(capped * jitter))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_own_budget() {
        let mut t = Tries::new(Policy::new(3));
        assert_eq!(t.next_delay(Failure::Permanent), None);
        for _ in 0..3 {
            assert!(t.next_delay(Failure::Transient).is_some());
        }
        assert_eq!(t.next_delay(Failure::Transient), None);
        t.progressed();
        assert!(t.next_delay(Failure::Transient).is_some());
        assert!(t.next_delay(Failure::Stalled).is_some());
        assert_eq!(
            t.next_delay(Failure::Stalled),
            None,
            "a stall is retried once"
        );
        let mut t = Tries::new(Policy::new(10));
        let waited: Duration = std::iter::from_fn(|| t.next_delay(Failure::Refused)).sum();
        assert!(waited <= Duration::from_secs(8), "{waited:?}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut t = Tries::new(Policy::new(20));
        let delays: Vec<Duration> =
            std::iter::from_fn(|| t.next_delay(Failure::Transient)).collect();
        assert_eq!(delays.len(), 20);
        assert!(delays[0] < Duration::from_millis(500));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
        assert!(delays[19] >= Duration::from_secs(15));
    }
}
