//! The store's side of durability: every change is handed to a [`Journal`] under the
//! store's lock, in the order changes are applied, before it is applied. The journal
//! (the persistence module's write-ahead log) decides how it is recorded; the store only
//! guarantees the order and that nothing is applied that could not be recorded.

use std::borrow::Cow;

use crate::model::{GroupingKey, MetricFamily, Str};
use crate::selector::Selector;

use super::{GroupTtl, PushMode, Rejection};

/// One change to the store, as recorded and replayed: borrowed from the store when it is
/// journaled, owned when it was decoded (so that replaying it moves rather than copies).
#[derive(Debug, Clone, PartialEq)]
pub enum Change<'a> {
    /// A successful push (families already sanitised).
    Push {
        /// The group.
        key: Cow<'a, GroupingKey>,
        /// The pushed families.
        families: Cow<'a, [MetricFamily]>,
        /// PUT, POST or aggregating.
        mode: PushMode,
        /// Unix time of the push.
        time: f64,
        /// True when an unchecked push did not pass the consistency check.
        inconsistent: bool,
        /// The group's own TTL (`Pushgateway-TTL`); `None`: the expiry rules apply.
        ttl: Option<GroupTtl>,
        /// The push's `Idempotency-Key`, remembered with it.
        idempotency_key: Option<Str>,
    },
    /// A refused push: only the group's failure time changes.
    Failure {
        /// The group.
        key: Cow<'a, GroupingKey>,
        /// Unix time of the failure.
        time: f64,
    },
    /// A deleted group.
    Delete {
        /// The group.
        key: Cow<'a, GroupingKey>,
    },
    /// Every group removed.
    Wipe,
    /// Every group that any of the selectors matches removed. The selectors travel, not
    /// the keys: applied in the same order to the same state, they remove the same groups
    /// everywhere, and the record stays as small as the request.
    DeleteMatching {
        /// The selectors, OR-ed.
        selectors: Cow<'a, [Selector]>,
    },
}

impl Change<'_> {
    /// An owned copy, independent of the store it was borrowed from.
    pub fn to_static(&self) -> Change<'static> {
        match self {
            Change::Push {
                key,
                families,
                mode,
                time,
                inconsistent,
                ttl,
                idempotency_key,
            } => Change::Push {
                key: Cow::Owned(key.clone().into_owned()),
                families: Cow::Owned(families.to_vec()),
                mode: *mode,
                time: *time,
                inconsistent: *inconsistent,
                ttl: *ttl,
                idempotency_key: idempotency_key.clone(),
            },
            Change::Failure { key, time } => Change::Failure {
                key: Cow::Owned(key.clone().into_owned()),
                time: *time,
            },
            Change::Delete { key } => Change::Delete {
                key: Cow::Owned(key.clone().into_owned()),
            },
            Change::Wipe => Change::Wipe,
            Change::DeleteMatching { selectors } => Change::DeleteMatching {
                selectors: Cow::Owned(selectors.to_vec()),
            },
        }
    }
}

/// Records changes durably. Called with the store's lock held, so it must be quick:
/// append, and leave waiting for the disk to the caller.
pub trait Journal: Send + Sync {
    /// Records a change and returns its sequence number.
    ///
    /// # Errors
    /// Any I/O error; the change is then not applied.
    fn append(&mut self, change: &Change<'_>) -> std::io::Result<u64>;

    /// Lets the caller reach the concrete journal (for snapshot cuts).
    fn as_any(&mut self) -> &mut dyn std::any::Any;
}

/// Why a change was not made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PushError {
    /// The push was refused; the group's failure time was set.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The push exceeds a per-push limit (series count, label length).
    #[error("{0}")]
    TooLarge(String),
    /// The store is at its configured capacity (series or groups).
    #[error("{0}")]
    Full(String),
    /// The push would take a quota past its limit.
    #[error("{0}")]
    OverQuota(String),
    /// The change could not be recorded durably; nothing was applied.
    #[error("cannot persist the change: {0}")]
    Unavailable(String),
    /// Replication could not confirm the change (Redis unreachable, or not applied here in
    /// time); the reason says whether it may still be applied.
    #[error("{0}")]
    Replication(String),
}
