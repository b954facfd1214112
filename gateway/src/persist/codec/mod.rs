//! The binary encoding of groups and changes used by both the snapshot and the log.
//!
//! A *group block* starts with its own string table (every label name and value, metric
//! name and help text of the group, each once), followed by the grouping key, the group's
//! timestamps and its families, which refer to strings by index, then the group's
//! creation time and its own TTL (each missing in blocks written before it was kept).
//! A change record is a type byte (1 push, 2 failure, 3 delete, 4 wipe, 5 matcher delete)
//! and its block; a push record may end in a trailing section of optional fields
//! (`varint tag, varint length, bytes`, field 1 the TTL), unknown tags skipped. Numbers are LEB128
//! varints (zigzag for signed), floats are 8 little-endian bytes. Decoding checks every
//! length and index and fails with [`CodecError`] instead of panicking.
//!
//! - [`block`]: the string table and the primitive values, written and read.
//! - [`family`]: metric families, their metrics and extras, written and read side by side.
//! - [`record`]: the two top-level records, a group block and a change.

mod block;
mod family;
mod record;

pub use record::{decode_change, decode_group, encode_change, encode_group};

/// Malformed encoded data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

fn err<T>(what: &str) -> Result<T, CodecError> {
    Err(CodecError(what.to_string()))
}
