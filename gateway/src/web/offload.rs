//! Work whose cost grows with the request (inflating a compressed body, decoding a large
//! push, applying it) runs on tokio's blocking pool, at most one job per CPU at a time, so
//! that the async workers stay free: a large push then delays other large pushes, never
//! `/-/healthy` or a scrape.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::error::ApiError;

/// Bodies from this size on are decoded and applied off the async workers; smaller ones
/// cost less than the hand-over.
pub const OFFLOAD_FROM_BYTES: usize = 64 * 1024;

/// A bounded lane onto the blocking pool (clones share the lane).
#[derive(Clone)]
pub struct Offload {
    slots: Arc<Semaphore>,
}

impl Default for Offload {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Offload {
            slots: Arc::new(Semaphore::new(cpus)),
        }
    }
}

impl Offload {
    /// Runs `job` inline when `size` is small, else on the blocking pool once a slot is free.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] when the job panicked or the pool is shutting down.
    pub async fn run<T: Send + 'static>(
        &self,
        size: usize,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        if size < OFFLOAD_FROM_BYTES {
            return Ok(job());
        }
        self.always(job).await
    }

    /// Runs `job` on the blocking pool once a slot is free, whatever its size.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] when the job panicked or the pool is shutting down.
    pub async fn always<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let unavailable = |e: &dyn std::fmt::Display| ApiError::Unavailable(e.to_string());
        let _slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| unavailable(&e))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| unavailable(&e))
    }
}
