//! A small tokio runtime owned by one storage engine whose client library is asynchronous
//! (PostgreSQL, S3), so that the synchronous domain can call it from any thread.

use std::future::Future;

/// The runtime of one engine; shut down without waiting when the engine is dropped.
pub struct EngineRuntime {
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl Drop for EngineRuntime {
    fn drop(&mut self) {
        // Without waiting: the engine may be dropped on an async thread.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl EngineRuntime {
    /// A runtime of `threads` workers whose threads are called `name`.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .enable_all()
            .build()?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    #[must_use]
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Runs `work` on the runtime and waits for it: callable from any thread, a
    /// blocking-pool thread or an async one alike (which a runtime's own `block_on` is not).
    pub fn run<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> T {
        run_on(&self.handle, work)
    }
}

/// `EngineRuntime::run` for a holder of the handle alone.
pub fn run_on<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    work: impl Future<Output = T> + Send + 'static,
) -> T {
    let (done, result) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = done.send(work.await);
    });
    result
        .recv()
        .expect("an engine's runtime runs while the engine lives")
}
