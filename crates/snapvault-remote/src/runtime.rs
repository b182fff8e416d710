//! The process's network runtime for OpenDAL: started on first use, stopped by [`shutdown`].

use std::sync::Mutex;
use std::time::Duration;

use snapvault_repo::{RemoteError, RepoError};

/// The network runtime, started on first use. It is owned here (not leaked in a static
/// `LazyLock`) so that [`shutdown`] can stop it: SFTP sessions live in its tasks, and
/// dropping them ends their `ssh` processes.
static RUNTIME: Mutex<Option<tokio::runtime::Runtime>> = Mutex::new(None);

pub(crate) fn runtime() -> Result<tokio::runtime::Handle, RepoError> {
    let mut rt = RUNTIME
        .lock()
        .map_err(|_| RemoteError::Runtime("the network runtime failed earlier".into()))?;
    if rt.is_none() {
        // ring, not aws-lc: no cmake or nasm needed to build, and already in the workspace.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("snapvault-remote")
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Runtime(format!("starting the network runtime: {e}")))?;
        *rt = Some(built);
    }
    rt.as_ref()
        .map(|r| r.handle().clone())
        .ok_or_else(|| RemoteError::Runtime("no network runtime".into()).into())
}

/// Stop the network runtime once every remote backend is dropped: closes SFTP sessions
/// (their `ssh` processes would otherwise outlive snapvault) and S3 connections.
pub fn shutdown() {
    let rt = RUNTIME.lock().ok().and_then(|mut r| r.take());
    if let Some(rt) = rt {
        rt.shutdown_timeout(Duration::from_secs(10));
    }
}
