//! The two top-level records: a group block (one group of a snapshot) and a change (one
//! record of the write-ahead log, or one replicated entry).

use std::borrow::Cow;
use std::sync::Arc;

use super::block::{put_ttl, BlockWriter, Reader};
use super::{err, CodecError};
use crate::model::Str;
use crate::selector::{MatchOp, Matcher, Selector};
use crate::store::{Change, GroupView, PushMode};

/// Optional fields of a push record, written after its families as `varint tag, varint
/// length, bytes` to the end of the record; a reader skips tags it does not know.
/// Field 1: the group's own TTL (`Pushgateway-TTL`).
const FIELD_TTL: u64 = 1;
/// Field 2: the push's `Idempotency-Key`.
const FIELD_IDEMPOTENCY_KEY: u64 = 2;

// === writing ===

/// Encodes one group block.
pub fn encode_group(out: &mut Vec<u8>, view: &GroupView) {
    let mut block = BlockWriter::default();
    block.key(&view.key);
    block.f64(view.push_time);
    block.f64(view.failure_time);
    block.varint(view.families.len() as u64);
    for stored in &view.families {
        // The full label sets, as pushed: the store's leaner form stays an in-memory detail.
        block.stored_family(stored);
    }
    // Last, so that blocks written before it existed still decode; the fields after it
    // likewise.
    block.f64(view.created);
    block.ttl(view.ttl);
    // After it, the idempotency keys the group remembers, with their times.
    if !view.keys.is_empty() {
        block.varint(view.keys.len() as u64);
        for (key, time) in &view.keys {
            block.string(key);
            block.f64(*time);
        }
    }
    block.finish(out);
}

/// Encodes a change record's payload.
pub fn encode_change(out: &mut Vec<u8>, change: &Change<'_>) {
    let mut block = BlockWriter::default();
    match change {
        Change::Push {
            key,
            families,
            mode,
            time,
            inconsistent,
            ttl,
            idempotency_key,
        } => {
            let (mode, time, inconsistent) = (*mode, *time, *inconsistent);
            out.push(1);
            out.push(match mode {
                PushMode::Replace => 0,
                PushMode::Merge => 1,
                PushMode::Aggregate => 2,
            });
            out.push(u8::from(inconsistent));
            out.extend_from_slice(&time.to_le_bytes());
            block.key(key);
            block.varint(families.len() as u64);
            for family in families.iter() {
                // A push's families carry their full label sets already.
                block.family(family, time);
            }
            // The trailing section: only fields with a value, so that a push without them
            // is written as before.
            if ttl.is_some() {
                let mut bytes = Vec::with_capacity(10);
                put_ttl(&mut bytes, *ttl);
                block.field(FIELD_TTL, &bytes);
            }
            if let Some(idempotency_key) = idempotency_key {
                block.field(FIELD_IDEMPOTENCY_KEY, idempotency_key.as_bytes());
            }
        }
        Change::Failure { key, time } => {
            let time = *time;
            out.push(2);
            out.extend_from_slice(&time.to_le_bytes());
            block.key(key);
        }
        Change::Delete { key } => {
            out.push(3);
            block.key(key);
        }
        Change::Wipe => {
            out.push(4);
        }
        Change::DeleteMatching { selectors } => {
            out.push(5);
            block.varint(selectors.len() as u64);
            for selector in selectors.iter() {
                block.varint(selector.matchers().len() as u64);
                for matcher in selector.matchers() {
                    block.string(matcher.name());
                    block.byte(matcher.op().code());
                    block.string(matcher.value());
                }
            }
        }
    }
    block.finish(out);
}

// === reading ===

/// Decodes a group block.
///
/// # Errors
/// [`CodecError`] on malformed data.
pub fn decode_group(input: &[u8]) -> Result<GroupView, CodecError> {
    let mut reader = Reader::new(input)?;
    let key = Arc::new(reader.key()?);
    let push_time = reader.f64()?;
    let failure_time = reader.f64()?;
    let count = reader.count()?;
    let mut families = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        families.push(Arc::new(reader.stored_family(&key)?));
    }
    let created = if reader.at_end() {
        // Written before the creation time was kept: the earliest time the group shows.
        families
            .iter()
            .map(|f| f.pushed_at)
            .chain([push_time, failure_time])
            .filter(|&t| t > 0.0)
            .fold(f64::INFINITY, f64::min)
    } else {
        reader.f64()?
    };
    let ttl = if reader.at_end() { None } else { reader.ttl()? };
    let mut keys = Vec::new();
    if !reader.at_end() {
        let count = reader.count()?;
        keys.reserve(count.min(1024));
        for _ in 0..count {
            keys.push((reader.string()?, reader.f64()?));
        }
    }
    reader.end()?;
    Ok(GroupView {
        key,
        families,
        push_time,
        failure_time,
        created: if created.is_finite() { created } else { 0.0 },
        ttl,
        keys,
    })
}

/// Decodes a change record's payload.
///
/// # Errors
/// [`CodecError`] on malformed data.
pub fn decode_change(input: &[u8]) -> Result<Change<'static>, CodecError> {
    let (&tag, rest) = input
        .split_first()
        .ok_or_else(|| CodecError("empty record".into()))?;
    match tag {
        1 => {
            if rest.len() < 10 {
                return err("truncated push record");
            }
            let mode = match rest[0] {
                0 => PushMode::Replace,
                1 => PushMode::Merge,
                2 => PushMode::Aggregate,
                _ => return err("unknown push mode"),
            };
            let inconsistent = rest[1] != 0;
            let time = f64::from_le_bytes(
                rest[2..10]
                    .try_into()
                    .map_err(|_| CodecError("time".into()))?,
            );
            let mut reader = Reader::new(&rest[10..])?;
            let key = reader.key()?;
            let count = reader.count()?;
            let mut families = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                families.push(reader.family()?.0);
            }
            let mut ttl = None;
            let mut idempotency_key = None;
            // The trailing section; a field this version does not know is skipped.
            while !reader.at_end() {
                let (tag, bytes) = reader.field()?;
                if tag == FIELD_TTL {
                    let mut field = Reader::raw(bytes);
                    ttl = field.ttl()?;
                    field.end()?;
                } else if tag == FIELD_IDEMPOTENCY_KEY {
                    let value = std::str::from_utf8(bytes)
                        .map_err(|_| CodecError("idempotency key is not UTF-8".into()))?;
                    idempotency_key = Some(Str::from(value));
                }
            }
            Ok(Change::Push {
                key: Cow::Owned(key),
                families: Cow::Owned(families),
                mode,
                time,
                inconsistent,
                ttl,
                idempotency_key,
            })
        }
        2 => {
            if rest.len() < 8 {
                return err("truncated failure record");
            }
            let time = f64::from_le_bytes(
                rest[..8]
                    .try_into()
                    .map_err(|_| CodecError("time".into()))?,
            );
            let mut reader = Reader::new(&rest[8..])?;
            let key = reader.key()?;
            reader.end()?;
            Ok(Change::Failure {
                key: Cow::Owned(key),
                time,
            })
        }
        3 => {
            let mut reader = Reader::new(rest)?;
            let key = reader.key()?;
            reader.end()?;
            Ok(Change::Delete {
                key: Cow::Owned(key),
            })
        }
        4 => {
            let reader = Reader::new(rest)?;
            reader.end()?;
            Ok(Change::Wipe)
        }
        5 => {
            let mut reader = Reader::new(rest)?;
            let count = reader.count()?;
            let mut selectors = Vec::with_capacity(count.min(64));
            for _ in 0..count {
                selectors.push(decode_selector(&mut reader)?);
            }
            reader.end()?;
            Ok(Change::DeleteMatching {
                selectors: Cow::Owned(selectors),
            })
        }
        other => Err(CodecError(format!("unknown record type {other}"))),
    }
}

/// One selector of a matcher delete; its regexes are compiled again, with the same bounds.
fn decode_selector(reader: &mut Reader<'_>) -> Result<Selector, CodecError> {
    let bad = |e: crate::selector::SelectorError| CodecError(format!("selector: {e}"));
    let count = reader.count()?;
    let mut matchers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let name = reader.string()?;
        let op = MatchOp::from_code(reader.byte()?)
            .ok_or_else(|| CodecError("unknown matcher operator".into()))?;
        let value = reader.string()?;
        matchers.push(Matcher::new(name.as_str(), op, value.as_str()).map_err(bad)?);
    }
    Selector::from_matchers(matchers).map_err(bad)
}
