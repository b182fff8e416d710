//! The private runtime of a session: one thread driving a current-thread tokio runtime; the
//! synchronous API hands futures to it and waits for their results.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::afc::OpError;
use crate::error::SourceError;

/// The private runtime: one thread driving a current-thread tokio runtime.
pub(crate) struct Runtime {
    pub(crate) handle: tokio::runtime::Handle,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Runtime {
    pub(crate) fn start() -> Result<Arc<Runtime>, SourceError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("snapvault-iphone".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = rx.await;
                });
                // Dropping `rt` here cancels the remaining tasks and closes their sockets.
            })?;
        Ok(Arc::new(Runtime {
            handle,
            stop: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Runs `fut` on the runtime and waits for it. Every future given here bounds its own
    /// device operations with timeouts.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, SourceError>> + Send + 'static,
    ) -> Result<T, SourceError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().unwrap_or(Err(SourceError::Disconnected))
    }
}

impl Runtime {
    /// [`Runtime::run`] for one AFC operation, keeping a status apart from a lost session.
    pub(crate) fn run_op<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, OpError>> + Send + 'static,
    ) -> Result<T, OpError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .unwrap_or(Err(OpError::Fatal(SourceError::Disconnected)))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.get_mut().ok().and_then(|s| s.take()) {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.get_mut().ok().and_then(|t| t.take())
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}
