//! A block's string table and its primitive values: LEB128 varints (zigzag for signed),
//! 8-byte little-endian floats, flags, and strings as indexes into the table. Label sets
//! and grouping keys are built from these here; families are in [`super::family`].

use std::collections::HashMap;

use std::time::Duration;

use super::{err, CodecError};
use crate::model::{GroupingKey, Label, LabelRef, Str, INSTANCE_LABEL};
use crate::store::GroupTtl;

/// A group's own TTL: one byte, 0 none (the expiry rules), 1 never, 2 then the TTL as a
/// varint of nanoseconds.
const TTL_NONE: u8 = 0;
const TTL_NEVER: u8 = 1;
const TTL_AFTER: u8 = 2;

// === writing ===

/// Collects a block's body and its string table; [`BlockWriter::finish`] writes the table
/// first, then the body.
#[derive(Default)]
pub(super) struct BlockWriter {
    strings: HashMap<Str, u64>,
    table: Vec<Str>,
    body: Vec<u8>,
}

impl BlockWriter {
    pub(super) fn finish(self, out: &mut Vec<u8>) {
        put_varint(out, self.table.len() as u64);
        for s in &self.table {
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&self.body);
    }

    pub(super) fn varint(&mut self, v: u64) {
        put_varint(&mut self.body, v);
    }

    pub(super) fn signed(&mut self, v: i64) {
        put_varint(&mut self.body, ((v << 1) ^ (v >> 63)) as u64);
    }

    pub(super) fn f64(&mut self, v: f64) {
        self.body.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn byte(&mut self, v: u8) {
        self.body.push(v);
    }

    pub(super) fn string(&mut self, s: &str) {
        // Looked up by `&str`: a label read from a packed family is not a `Str` yet.
        let index = match self.strings.get(s) {
            Some(&index) => index,
            None => {
                let index = self.table.len() as u64;
                let s = Str::from(s);
                self.table.push(s.clone());
                self.strings.insert(s, index);
                index
            }
        };
        self.varint(index);
    }

    pub(super) fn labels<'a, L: Into<LabelRef<'a>>>(
        &mut self,
        labels: impl Iterator<Item = L> + Clone,
    ) {
        self.varint(labels.clone().count() as u64);
        for label in labels {
            let label = label.into();
            self.string(label.name);
            self.string(label.value);
        }
    }

    pub(super) fn key(&mut self, key: &GroupingKey) {
        self.labels(key.labels().iter());
    }

    pub(super) fn ttl(&mut self, ttl: Option<GroupTtl>) {
        put_ttl(&mut self.body, ttl);
    }

    /// One optional field of a record's trailing section: tag, length, bytes.
    pub(super) fn field(&mut self, tag: u64, bytes: &[u8]) {
        self.varint(tag);
        self.varint(bytes.len() as u64);
        self.body.extend_from_slice(bytes);
    }
}

pub(super) fn put_ttl(out: &mut Vec<u8>, ttl: Option<GroupTtl>) {
    match ttl {
        None => out.push(TTL_NONE),
        Some(GroupTtl::Never) => out.push(TTL_NEVER),
        Some(GroupTtl::After(ttl)) => {
            out.push(TTL_AFTER);
            // Go durations fit in 63 bits of nanoseconds; the header parser keeps to them.
            put_varint(out, u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX));
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

// === reading ===

/// Reads a block: the string table on creation, then the body value by value.
pub(super) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// The table's strings as slices of the input, each made a shared `Str` only when
    /// asked for as one: most are label values that go straight into a packed family's
    /// arena, and an allocation each would cost a restore a malloc and a free per series.
    table: Vec<(&'a str, Option<Str>)>,
    /// Per table index used as a label name: whether the block's group supplies labels of
    /// that name ([`Reader::drop_supplied`]), found once per name instead of per label.
    supplied: Vec<Supplied>,
}

/// Whether a group supplies the labels of one name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Supplied {
    NotAsked,
    Always,
    Never,
    /// `instance`, which the group supplies when empty (it has no `instance` of its own).
    WhenEmpty,
}

impl<'a> Reader<'a> {
    pub(super) fn new(input: &'a [u8]) -> Result<Reader<'a>, CodecError> {
        let mut reader = Reader {
            input,
            pos: 0,
            table: Vec::new(),
            supplied: Vec::new(),
        };
        let count = reader.count()?;
        reader.table.reserve(count.min(4096));
        for _ in 0..count {
            let len = reader.count()?;
            let bytes = reader.take(len)?;
            let s =
                std::str::from_utf8(bytes).map_err(|_| CodecError("string is not UTF-8".into()))?;
            reader.table.push((s, None));
        }
        Ok(reader)
    }

    /// A reader of bytes without a string table (a record's trailing field).
    pub(super) fn raw(input: &'a [u8]) -> Reader<'a> {
        Reader {
            input,
            pos: 0,
            table: Vec::new(),
            supplied: Vec::new(),
        }
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos == self.input.len()
    }

    pub(super) fn end(&self) -> Result<(), CodecError> {
        if self.pos == self.input.len() {
            Ok(())
        } else {
            err("trailing bytes")
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.input.len())
            .ok_or_else(|| CodecError("truncated".into()))?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    pub(super) fn byte(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn varint(&mut self) -> Result<u64, CodecError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        err("varint too long")
    }

    /// A count or length, bounded by what is left so a bad value cannot allocate much.
    pub(super) fn count(&mut self) -> Result<usize, CodecError> {
        let v = self.varint()?;
        if v > (self.input.len() - self.pos) as u64 {
            return err("count larger than the data");
        }
        Ok(v as usize)
    }

    /// A count of items each encoded in at least `min_bytes`: one that the bytes left
    /// cannot hold fails here, before room is reserved for it.
    pub(super) fn count_of(&mut self, min_bytes: usize) -> Result<usize, CodecError> {
        let count = self.count()?;
        if count.saturating_mul(min_bytes) > self.input.len() - self.pos {
            return err("count larger than the data");
        }
        Ok(count)
    }

    /// Room to reserve for `count` items of `T`: never more bytes than are left to read,
    /// so that a damaged count costs no more memory than the input, however much larger
    /// an item is in memory than encoded (past it, a vector grows as items are read).
    pub(super) fn room<T>(&self, count: usize) -> usize {
        count.min((self.input.len() - self.pos) / std::mem::size_of::<T>().max(1))
    }

    pub(super) fn signed(&mut self) -> Result<i64, CodecError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub(super) fn i32(&mut self) -> Result<i32, CodecError> {
        i32::try_from(self.signed()?).map_err(|_| CodecError("number out of range".into()))
    }

    pub(super) fn f64(&mut self) -> Result<f64, CodecError> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(f64::from_le_bytes(array))
    }

    pub(super) fn flag(&mut self) -> Result<bool, CodecError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => err("bad flag"),
        }
    }

    pub(super) fn string(&mut self) -> Result<Str, CodecError> {
        let index = self.string_index()?;
        let (text, shared) = &mut self.table[index];
        Ok(shared.get_or_insert_with(|| Str::from(*text)).clone())
    }

    pub(super) fn labels(&mut self) -> Result<Vec<Label>, CodecError> {
        let count = self.count()?;
        let mut labels = Vec::with_capacity(self.room::<Label>(count));
        for _ in 0..count {
            let name = self.string()?;
            let value = self.string()?;
            labels.push(Label { name, value });
        }
        Ok(labels)
    }

    /// A label set as indexes into the string table (into `out`, cleared first), so that
    /// decoding straight into a packed family copies no string.
    pub(super) fn label_indexes(
        &mut self,
        out: &mut Vec<(usize, usize)>,
    ) -> Result<(), CodecError> {
        out.clear();
        let count = self.count()?;
        for _ in 0..count {
            out.push((self.string_index()?, self.string_index()?));
        }
        Ok(())
    }

    /// Takes out of `labels` (table indexes, as [`Reader::label_indexes`] gives them) those
    /// that `group` supplies to its series ([`GroupingKey::supplies`]); a block holds one
    /// group, so each name is looked up in the group once.
    pub(super) fn drop_supplied(&mut self, labels: &mut Vec<(usize, usize)>, group: &GroupingKey) {
        if self.supplied.len() < self.table.len() {
            self.supplied.resize(self.table.len(), Supplied::NotAsked);
        }
        let (table, supplied) = (&self.table, &mut self.supplied);
        let text = |index: usize| table.get(index).map_or("", |(text, _)| *text);
        labels.retain(|&(name, value)| {
            let Some(known) = supplied.get_mut(name) else {
                return true;
            };
            if *known == Supplied::NotAsked {
                *known = if group.get(text(name)).is_some() {
                    Supplied::Always
                } else if text(name) == INSTANCE_LABEL {
                    Supplied::WhenEmpty
                } else {
                    Supplied::Never
                };
            }
            match *known {
                Supplied::Always => false,
                Supplied::WhenEmpty => !text(value).is_empty(),
                Supplied::Never | Supplied::NotAsked => true,
            }
        });
    }

    fn string_index(&mut self) -> Result<usize, CodecError> {
        let index = self.varint()?;
        usize::try_from(index)
            .ok()
            .filter(|&i| i < self.table.len())
            .ok_or_else(|| CodecError("string index out of range".into()))
    }

    /// The string at a table index from [`Reader::label_indexes`].
    pub(super) fn text(&self, index: usize) -> &str {
        self.table.get(index).map_or("", |(text, _)| text)
    }

    pub(super) fn key(&mut self) -> Result<GroupingKey, CodecError> {
        Ok(GroupingKey::new(self.labels()?))
    }

    pub(super) fn ttl(&mut self) -> Result<Option<GroupTtl>, CodecError> {
        match self.byte()? {
            TTL_NONE => Ok(None),
            TTL_NEVER => Ok(Some(GroupTtl::Never)),
            TTL_AFTER => Ok(Some(GroupTtl::After(Duration::from_nanos(self.varint()?)))),
            _ => err("unknown TTL kind"),
        }
    }

    /// One optional field of a record's trailing section: its tag and bytes.
    pub(super) fn field(&mut self) -> Result<(u64, &'a [u8]), CodecError> {
        let tag = self.varint()?;
        let len = self.count()?;
        Ok((tag, self.take(len)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings dropped right after they are written keep their own index, and a repeated
    /// string is written once.
    #[test]
    fn strings_written_once_and_dropped_keep_their_own_index() {
        let shared = Str::from("job");
        let mut writer = BlockWriter::default();
        for i in 0..1000 {
            writer.string(&shared);
            writer.string(&format!("v{i}"));
            writer.string(&format!("v{}", i / 2));
        }
        let mut out = Vec::new();
        writer.finish(&mut out);
        let mut reader = Reader::new(&out).expect("table");
        for i in 0..1000 {
            assert_eq!(reader.string().expect("job").as_str(), "job");
            assert_eq!(reader.string().expect("v").as_str(), format!("v{i}"));
            assert_eq!(
                reader.string().expect("half").as_str(),
                format!("v{}", i / 2)
            );
        }
        assert!(reader.at_end());
        assert_eq!(reader.table.len(), 1001);
    }
}
