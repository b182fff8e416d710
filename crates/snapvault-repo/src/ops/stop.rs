//! A request to end a long run early (Ctrl-C, SIGTERM): the run stops reading and keeps
//! what it has, as an unplugged phone makes it do. Set from another thread (the binary's
//! signal watcher), polled by the run between files and chunks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

#[derive(Debug, Default)]
pub struct Stop {
    requested: AtomicBool,
    why: Mutex<Option<String>>,
}

impl Stop {
    /// Ask the run to stop; `why` ends up in the snapshot's `interrupted` field. The first
    /// reason given is kept.
    pub fn request(&self, why: impl Into<String>) {
        if let Ok(mut g) = self.why.lock()
            && g.is_none()
        {
            *g = Some(why.into());
        }
        self.requested.store(true, SeqCst);
    }

    /// Why the run was asked to stop, once it was.
    pub fn reason(&self) -> Option<String> {
        if !self.requested.load(SeqCst) {
            return None;
        }
        Some(
            self.why
                .lock()
                .ok()
                .and_then(|g| g.clone())
                .unwrap_or_else(|| "interrupted".into()),
        )
    }
}
