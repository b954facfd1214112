//! One entry of the change stream: a request every replica applies in stream order.
//!
//! Entries are requests, not results: a push travels as the receiving replica parsed it,
//! with that replica's clock reading, and each replica runs the store's own check on it.
//! The check is deterministic given the prior state and the time, so every replica reaches
//! the same verdict and the same state.
//!
//! Layout: one kind byte, then either a change in the persistence codec's encoding
//! (push, delete, wipe, matcher delete) or, for an expiry sweep, the sweep's Unix time as
//! 8 bytes.

use std::borrow::Cow;

use crate::expiry::Expirer;
use crate::model::{GroupingKey, MetricFamily, Str};
use crate::persist::codec::{decode_change, encode_change, CodecError};
use crate::selector::Selector;
use crate::store::{Change, GroupSummary, GroupTtl, PushError, PushMode, Store};

const KIND_CHANGE: u8 = 1;
const KIND_EXPIRE: u8 = 2;

/// What a replica asks every replica to do.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeRequest {
    /// A push of parsed families to a group at the receiving replica's time.
    Push {
        /// The group.
        key: GroupingKey,
        /// The families as parsed (the store sanitises them).
        families: Vec<MetricFamily>,
        /// PUT, POST or aggregating.
        mode: PushMode,
        /// Unix time of the push.
        time: f64,
        /// The group's own TTL (`Pushgateway-TTL`), `None`: the expiry rules.
        ttl: Option<GroupTtl>,
        /// The request's `Idempotency-Key`, if any.
        idempotency_key: Option<Str>,
    },
    /// A group deleted.
    Delete {
        /// The group.
        key: GroupingKey,
    },
    /// Every group removed.
    Wipe,
    /// Every group any of the selectors matches removed: each replica evaluates them on
    /// its own copy of the same state, at the same position in the stream.
    DeleteMatching {
        /// The selectors, OR-ed.
        selectors: Vec<Selector>,
    },
    /// Groups past their TTL at this Unix time removed (sent by the leader).
    Expire {
        /// Unix time of the sweep.
        time: f64,
    },
}

/// What applying a request did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// With persistence, the journal sequence to wait for.
    pub seq: Option<u64>,
    /// The groups a matcher delete removed, in key order.
    pub deleted: Vec<GroupSummary>,
}

impl Applied {
    fn seq(seq: Option<u64>) -> Applied {
        Applied {
            seq,
            deleted: Vec::new(),
        }
    }
}

impl ChangeRequest {
    /// Applies it to `store` (an expiry sweep with `expirer`'s rules): the store's verdict
    /// and what it did.
    ///
    /// # Errors
    /// The store's reason for refusing it.
    pub fn apply(self, store: &Store, expirer: &Expirer) -> Result<Applied, PushError> {
        match self {
            ChangeRequest::Push {
                key,
                families,
                mode,
                time,
                ttl,
                idempotency_key,
            } => store
                .push_with(key, families, mode, time, ttl, idempotency_key)
                .map(Applied::seq),
            ChangeRequest::Delete { key } => store.delete(&key).map(Applied::seq),
            ChangeRequest::Wipe => store.wipe().map(Applied::seq),
            ChangeRequest::DeleteMatching { selectors } => store
                .delete_matching(&selectors)
                .map(|(seq, deleted)| Applied { seq, deleted }),
            ChangeRequest::Expire { time } => {
                expirer.sweep(store, time).map(|_| Applied::default())
            }
        }
    }
}

/// Encodes a request as a stream entry's payload.
pub fn encode(request: &ChangeRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let change = match request {
        ChangeRequest::Push {
            key,
            families,
            mode,
            time,
            ttl,
            idempotency_key,
        } => Change::Push {
            key: Cow::Borrowed(key),
            families: Cow::Borrowed(families),
            mode: *mode,
            time: *time,
            inconsistent: false,
            ttl: *ttl,
            idempotency_key: idempotency_key.clone(),
        },
        ChangeRequest::Delete { key } => Change::Delete {
            key: Cow::Borrowed(key),
        },
        ChangeRequest::Wipe => Change::Wipe,
        ChangeRequest::DeleteMatching { selectors } => Change::DeleteMatching {
            selectors: Cow::Borrowed(selectors),
        },
        ChangeRequest::Expire { time } => {
            out.push(KIND_EXPIRE);
            out.extend_from_slice(&time.to_le_bytes());
            return out;
        }
    };
    out.push(KIND_CHANGE);
    encode_change(&mut out, &change);
    out
}

/// Decodes a stream entry's payload.
///
/// # Errors
/// [`CodecError`] for anything this version did not write.
pub fn decode(payload: &[u8]) -> Result<ChangeRequest, CodecError> {
    match payload.split_first() {
        Some((&KIND_CHANGE, change)) => match decode_change(change)? {
            Change::Push {
                key,
                families,
                mode,
                time,
                ttl,
                idempotency_key,
                ..
            } => Ok(ChangeRequest::Push {
                key: key.into_owned(),
                families: families.into_owned(),
                mode,
                time,
                ttl,
                idempotency_key,
            }),
            Change::Delete { key } => Ok(ChangeRequest::Delete {
                key: key.into_owned(),
            }),
            Change::Wipe => Ok(ChangeRequest::Wipe),
            Change::DeleteMatching { selectors } => Ok(ChangeRequest::DeleteMatching {
                selectors: selectors.into_owned(),
            }),
            Change::Failure { .. } => Err(CodecError("a failure is not a request".into())),
        },
        Some((&KIND_EXPIRE, time)) => {
            let bytes: [u8; 8] = time
                .try_into()
                .map_err(|_| CodecError("expiry entry: expected 8 bytes of time".into()))?;
            Ok(ChangeRequest::Expire {
                time: f64::from_le_bytes(bytes),
            })
        }
        Some((kind, _)) => Err(CodecError(format!("unknown entry kind {kind}"))),
        None => Err(CodecError("empty entry".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Label, Metric, MetricType, Value};

    fn key(job: &str) -> GroupingKey {
        GroupingKey::new(vec![Label::new("job", job)])
    }

    #[test]
    fn every_request_survives_the_round_trip() {
        let family = MetricFamily {
            name: "jobs_done".into(),
            help: Some("Done.".into()),
            metric_type: MetricType::Counter,
            metrics: vec![Metric::new(
                vec![Label::new("shard", "1")],
                Value::Counter(3.5),
            )],
        };
        for request in [
            ChangeRequest::Push {
                key: key("batch"),
                families: vec![family.clone()],
                mode: PushMode::Merge,
                time: 1_700_000_000.25,
                ttl: Some(GroupTtl::After(std::time::Duration::from_millis(90_500))),
                idempotency_key: None,
            },
            ChangeRequest::Push {
                key: key("lambda"),
                families: vec![family],
                mode: PushMode::Aggregate,
                time: 1_700_000_000.5,
                ttl: None,
                idempotency_key: Some("8e03978e-40d5-43e8-bc93-6894a57f9324".into()),
            },
            ChangeRequest::Delete { key: key("gone") },
            ChangeRequest::DeleteMatching {
                selectors: vec![
                    Selector::parse(r#"{job=~"w.*",instance!="x"}"#).expect("selector"),
                    Selector::parse(r#"{"a.b"!~"c|d",e=""}"#).expect("selector"),
                ],
            },
            ChangeRequest::Wipe,
            ChangeRequest::Expire { time: 12.5 },
        ] {
            assert_eq!(decode(&encode(&request)), Ok(request));
        }
    }

    #[test]
    fn foreign_payloads_are_refused_not_misread() {
        for payload in [
            &[][..],
            &[9, 1, 2],
            &[KIND_EXPIRE, 1, 2, 3],
            &[KIND_CHANGE, 77],
        ] {
            assert!(decode(payload).is_err(), "{payload:?}");
        }
    }
}
