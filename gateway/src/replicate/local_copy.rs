//! The local copy (`--persistence.file` in redis mode): the applied state and its stream
//! position in a file, so that a restarted replica serves its last state at once.

use std::sync::Arc;

use super::Replicator;
use crate::config::LocalCopy;
use crate::persist::snapshot;

impl Replicator {
    /// Starts from the local copy, when there is a readable one; Redis has the last word.
    pub(super) fn restore_local_copy(&self, file: &std::path::Path) {
        match snapshot::read(file) {
            Ok(Some(copy)) => {
                let mut applied = self.applied.lock();
                let groups = copy.groups.len();
                for group in copy.groups {
                    self.store.restore_group(group);
                }
                *applied = copy.position;
                self.metrics.applied.set(copy.position as i64);
                tracing::info!(file = %file.display(), position = copy.position, groups, "restored the local copy; catching up from Redis");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(file = %file.display(), err = %e, "ignoring the unreadable local copy; starting from Redis");
            }
        }
    }

    /// Rewrites the local copy every interval when something was applied since.
    pub(super) async fn run_local_copies(self: Arc<Self>, copy: LocalCopy) {
        let mut ticker = tokio::time::interval(copy.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut written = *self.applied.lock();
        loop {
            ticker.tick().await;
            if *self.applied.lock() != written {
                if let Some(position) = self.clone().write_local_copy(&copy).await {
                    written = position;
                }
            }
        }
    }

    /// Writes the local copy once more at a clean stop, so that a restart starts from the
    /// latest state rather than from the last tick's.
    pub async fn shutdown(self: Arc<Self>) {
        if let Some(copy) = self.config.local_copy.clone() {
            self.write_local_copy(&copy).await;
        }
    }

    /// Writes the applied state and its position; returns the position when written.
    async fn write_local_copy(self: Arc<Self>, copy: &LocalCopy) -> Option<u64> {
        let (position, groups) = {
            let applied = self.applied.lock();
            (*applied, self.store.groups())
        };
        let file = copy.file.clone();
        let write = move || snapshot::write(&file, position, &groups);
        match tokio::task::spawn_blocking(write).await {
            Ok(Ok(())) => Some(position),
            Ok(Err(e)) => {
                tracing::error!(file = %copy.file.display(), err = %e, "cannot write the local copy");
                None
            }
            Err(e) => {
                tracing::error!(err = %e, "local copy task failed");
                None
            }
        }
    }
}
