//! The USB link between the phone and the computer, as a clock: a reply leaves the phone a
//! turnaround time (`latency`) after its request arrived, and then takes its size over the
//! link's bandwidth, which every connection shares. Requests are answered in order but not
//! one at a time: a client that keeps several requests in flight keeps the link busy, one
//! that waits for each reply pays the turnaround every time — as on a real cable.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub(crate) struct Link {
    latency: Duration,
    bytes_per_sec: Option<u64>,
    /// When the link has sent everything scheduled so far.
    free: Mutex<Instant>,
}

impl Link {
    pub fn new(latency: Option<Duration>, bytes_per_sec: Option<u64>) -> Link {
        Link {
            latency: latency.unwrap_or_default(),
            bytes_per_sec: bytes_per_sec.filter(|b| *b > 0),
            free: Mutex::new(Instant::now()),
        }
    }

    /// When a reply of `len` bytes to a request that arrived at `arrived` has fully left
    /// the phone. Later calls never get an earlier time for a later arrival, so replies of
    /// one connection leave in order.
    pub fn schedule(&self, arrived: Instant, len: usize) -> Instant {
        let ready = arrived + self.latency;
        let Some(bps) = self.bytes_per_sec else {
            return ready;
        };
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let start = ready.max(*free);
        let done = start + Duration::from_secs_f64(len as f64 / bps as f64);
        *free = done;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_share_the_bandwidth_and_wait_the_turnaround() {
        let link = Link::new(Some(Duration::from_millis(5)), Some(1_000_000));
        let t0 = Instant::now();
        // Two replies of 10 kB to requests sent together: the second waits for the first.
        let a = link.schedule(t0, 10_000);
        let b = link.schedule(t0, 10_000);
        assert_eq!(a - t0, Duration::from_millis(15));
        assert_eq!(b - t0, Duration::from_millis(25));
        // Much later: only the turnaround and its own size.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(link.schedule(t1, 1_000) - t1, Duration::from_millis(6));
        let free = Link::new(None, None);
        assert_eq!(free.schedule(t1, 1 << 30), t1);
    }
}
