//! A reader for Go's `encoding/gob` streams, as far as upstream Pushgateway's persistence
//! file needs: the type definitions a stream carries, one value after them, and a
//! [`Decoder`] that walks that value by its wire types, skipping what the caller does not
//! ask for. What the value *means* is [`super::upstream`]'s business.
//!
//! The file is operator input, so every count is checked against the bytes left (each
//! element takes at least one byte), nesting is capped, and nothing panics.
//!
//! Wire format in short: a stream is a sequence of messages, each a byte count, a type id
//! and a payload. A negative id defines type `-id` (the payload is a `wireType`); a
//! positive id is a value of that type. Unsigned numbers take one byte below 128, else a
//! negated byte count and that many big-endian bytes; signed numbers fold the sign into the
//! lowest bit. A struct is a list of (field delta, value) ending with a zero delta, fields
//! with zero values left out; a top-level non-struct value is preceded by a zero byte.

use std::collections::HashMap;

/// Why a gob stream cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GobError(pub String);

fn fail<T>(why: impl Into<String>) -> Result<T, GobError> {
    Err(GobError(why.into()))
}

/// A gob type id.
pub type TypeId = i64;

/// Ids of gob's predeclared types.
pub mod builtin {
    use super::TypeId;
    /// `bool`.
    pub const BOOL: TypeId = 1;
    /// Every signed integer.
    pub const INT: TypeId = 2;
    /// Every unsigned integer.
    pub const UINT: TypeId = 3;
    /// Every float.
    pub const FLOAT: TypeId = 4;
    /// `[]byte`.
    pub const BYTES: TypeId = 5;
    /// `string`.
    pub const STRING: TypeId = 6;
    /// Every complex number.
    pub const COMPLEX: TypeId = 7;
    /// An interface value.
    pub const INTERFACE: TypeId = 8;
}

/// Deepest nesting of values (and of type definitions) the reader follows.
const MAX_DEPTH: usize = 64;
/// Most type definitions in one stream (upstream's file has about thirty).
const MAX_TYPES: usize = 10_000;

/// A type a stream defined.
#[derive(Debug, Clone, PartialEq)]
pub enum WireType {
    /// A fixed-size array.
    Array {
        /// Element type.
        elem: TypeId,
    },
    /// A slice.
    Slice {
        /// Element type.
        elem: TypeId,
    },
    /// A struct with its fields in wire order.
    Struct {
        /// The type's name (may be empty).
        name: String,
        /// Field names and types.
        fields: Vec<(String, TypeId)>,
    },
    /// A map.
    Map {
        /// Key type.
        key: TypeId,
        /// Value type.
        elem: TypeId,
    },
    /// A value that encodes itself (`GobEncoder`, `BinaryMarshaler`, `TextMarshaler`),
    /// sent as a byte string.
    Encoded {
        /// The type's name (may be empty).
        name: String,
    },
}

/// The decoded type definitions and the payload of the stream's one value.
#[derive(Debug)]
pub struct Stream<'a> {
    /// Types by id.
    pub types: HashMap<TypeId, WireType>,
    /// The value's type.
    pub value_type: TypeId,
    /// The value's payload.
    pub value: &'a [u8],
}

/// Splits a stream that holds exactly one value into its type definitions and the value.
///
/// # Errors
/// A malformed message, an unknown kind of type, a stream without a value or with data
/// after it.
pub fn read_stream(data: &[u8]) -> Result<Stream<'_>, GobError> {
    let mut input = Reader::new(data);
    let mut types = HashMap::new();
    while !input.is_empty() {
        let length = input.count()?;
        let mut message = Reader::new(input.take(length)?);
        let id = message.int()?;
        if id < 0 {
            if types.len() >= MAX_TYPES {
                return fail("too many type definitions");
            }
            let id = id
                .checked_neg()
                .ok_or_else(|| GobError("bad type id".into()))?;
            let wire = read_wire_type(&mut message)?;
            if !message.is_empty() {
                return fail(format!("trailing bytes in the definition of type {id}"));
            }
            types.insert(id, wire);
        } else if id == 0 {
            return fail("value of type 0");
        } else {
            if !input.is_empty() {
                return fail("data after the first value");
            }
            return Ok(Stream {
                types,
                value_type: id,
                value: message.rest(),
            });
        }
    }
    fail("no value in the stream")
}

/// Reads a `wireType` struct: one of its pointer fields is set.
fn read_wire_type(r: &mut Reader<'_>) -> Result<WireType, GobError> {
    let mut wire = None;
    r.fields(|index, r| {
        let kind = match index {
            0 => {
                let (mut elem, mut _len) = (0, 0);
                r.fields(|i, r| match i {
                    0 => read_common(r).map(drop),
                    1 => r.int().map(|v| elem = v),
                    2 => r.int().map(|v| _len = v),
                    _ => fail("unknown field in an array type"),
                })?;
                WireType::Array { elem }
            }
            1 => {
                let mut elem = 0;
                r.fields(|i, r| match i {
                    0 => read_common(r).map(drop),
                    1 => r.int().map(|v| elem = v),
                    _ => fail("unknown field in a slice type"),
                })?;
                WireType::Slice { elem }
            }
            2 => {
                let (mut name, mut fields) = (String::new(), Vec::new());
                r.fields(|i, r| match i {
                    0 => read_common(r).map(|n| name = n),
                    1 => {
                        let count = r.count()?;
                        // A field takes a few bytes encoded, 32 in memory: a damaged count
                        // reserves little, and the vector grows as fields are read.
                        fields = Vec::with_capacity(count.min(64));
                        for _ in 0..count {
                            let (mut field_name, mut id) = (String::new(), 0);
                            r.fields(|i, r| match i {
                                0 => r.string().map(|s| field_name = s),
                                1 => r.int().map(|v| id = v),
                                _ => fail("unknown field in a struct field"),
                            })?;
                            fields.push((field_name, id));
                        }
                        Ok(())
                    }
                    _ => fail("unknown field in a struct type"),
                })?;
                WireType::Struct { name, fields }
            }
            3 => {
                let (mut key, mut elem) = (0, 0);
                r.fields(|i, r| match i {
                    0 => read_common(r).map(drop),
                    1 => r.int().map(|v| key = v),
                    2 => r.int().map(|v| elem = v),
                    _ => fail("unknown field in a map type"),
                })?;
                WireType::Map { key, elem }
            }
            4..=6 => {
                let mut name = String::new();
                r.fields(|i, r| match i {
                    0 => read_common(r).map(|n| name = n),
                    _ => fail("unknown field in an encoder type"),
                })?;
                WireType::Encoded { name }
            }
            _ => return fail(format!("unknown kind of type {index}")),
        };
        if wire.replace(kind).is_some() {
            return fail("a type definition of two kinds");
        }
        Ok(())
    })?;
    wire.ok_or_else(|| GobError("an empty type definition".into()))
}

/// Reads a `CommonType` and returns its name (its id repeats the message's or is unused).
fn read_common(r: &mut Reader<'_>) -> Result<String, GobError> {
    let mut name = String::new();
    r.fields(|i, r| match i {
        0 => r.string().map(|s| name = s),
        1 => r.int().map(drop),
        _ => fail("unknown field in a type's common part"),
    })?;
    Ok(name)
}

/// Reads gob's primitive encodings from a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn rest(&self) -> &'a [u8] {
        self.data
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], GobError> {
        if n > self.data.len() {
            return fail("truncated");
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    /// An unsigned number.
    ///
    /// # Errors
    /// Truncated data or a length byte beyond eight.
    pub fn uint(&mut self) -> Result<u64, GobError> {
        let first = self.take(1)?[0];
        if first < 0x80 {
            return Ok(u64::from(first));
        }
        let n = usize::from(first.wrapping_neg());
        if n > 8 {
            return fail("a number longer than eight bytes");
        }
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b)))
    }

    /// A signed number.
    ///
    /// # Errors
    /// As [`Reader::uint`].
    pub fn int(&mut self) -> Result<i64, GobError> {
        let u = self.uint()?;
        // The sign is in the lowest bit; the rest is the magnitude (complemented if negative).
        let magnitude = (u >> 1) as i64;
        Ok(if u & 1 == 1 { !magnitude } else { magnitude })
    }

    /// A float: its IEEE bits, byte-reversed, sent as an unsigned number.
    ///
    /// # Errors
    /// As [`Reader::uint`].
    pub fn float(&mut self) -> Result<f64, GobError> {
        Ok(f64::from_bits(self.uint()?.swap_bytes()))
    }

    /// A count of elements or bytes that still fit in the data, each taking a byte at least.
    ///
    /// # Errors
    /// As [`Reader::uint`], or a count beyond the bytes left.
    pub fn count(&mut self) -> Result<usize, GobError> {
        let count = self.uint()?;
        match usize::try_from(count) {
            Ok(count) if count <= self.data.len() => Ok(count),
            _ => fail(format!(
                "a count of {count} with {} bytes left",
                self.data.len()
            )),
        }
    }

    /// A byte string.
    ///
    /// # Errors
    /// Truncated data.
    pub fn bytes(&mut self) -> Result<&'a [u8], GobError> {
        let n = self.count()?;
        self.take(n)
    }

    /// A string that must be UTF-8.
    ///
    /// # Errors
    /// Truncated data or invalid UTF-8.
    pub fn string(&mut self) -> Result<String, GobError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GobError("a string that is not UTF-8".into()))
    }

    /// Reads a struct's fields, calling `field(index, reader)` for each field present,
    /// which must read exactly that field's value.
    ///
    /// # Errors
    /// Whatever `field` returns, or a malformed field delta.
    pub fn fields(
        &mut self,
        mut field: impl FnMut(usize, &mut Reader<'a>) -> Result<(), GobError>,
    ) -> Result<(), GobError> {
        let mut index: i64 = -1;
        loop {
            let delta = self.uint()?;
            if delta == 0 {
                return Ok(());
            }
            index = i64::try_from(delta)
                .ok()
                .and_then(|d| index.checked_add(d))
                .ok_or_else(|| GobError("bad field delta".into()))?;
            let at = usize::try_from(index).map_err(|_| GobError("bad field delta".into()))?;
            field(at, self)?;
        }
    }
}

/// Walks values by the stream's types.
pub struct Decoder<'t> {
    types: &'t HashMap<TypeId, WireType>,
    depth: usize,
}

impl<'t> Decoder<'t> {
    /// A decoder for values of `types`.
    pub fn new(types: &'t HashMap<TypeId, WireType>) -> Decoder<'t> {
        Decoder { types, depth: 0 }
    }

    /// The definition of a user type.
    ///
    /// # Errors
    /// An id the stream never defined.
    pub fn wire(&self, id: TypeId) -> Result<&'t WireType, GobError> {
        self.types
            .get(&id)
            .ok_or_else(|| GobError(format!("type {id} is not defined")))
    }

    /// Reads a map of `id`, calling `entry(decoder, reader, key type, value type)` per entry.
    ///
    /// # Errors
    /// A type that is not a map, malformed data, or whatever `entry` returns.
    pub fn map<'a>(
        &mut self,
        r: &mut Reader<'a>,
        id: TypeId,
        mut entry: impl FnMut(&mut Self, &mut Reader<'a>, TypeId, TypeId) -> Result<(), GobError>,
    ) -> Result<(), GobError> {
        let &WireType::Map { key, elem } = self.wire(id)? else {
            return fail(format!("type {id} is not a map"));
        };
        self.nested(|d| {
            for _ in 0..r.count()? {
                entry(d, r, key, elem)?;
            }
            Ok(())
        })
    }

    /// Reads a struct of `id`, calling `field(decoder, reader, name, type)` for each field
    /// present; it returns false for the fields it leaves alone, which are skipped.
    ///
    /// # Errors
    /// A type that is not a struct, malformed data, or whatever `field` returns.
    pub fn structure<'a>(
        &mut self,
        r: &mut Reader<'a>,
        id: TypeId,
        mut field: impl FnMut(&mut Self, &mut Reader<'a>, &str, TypeId) -> Result<bool, GobError>,
    ) -> Result<(), GobError> {
        let WireType::Struct { fields, .. } = self.wire(id)? else {
            return fail(format!("type {id} is not a struct"));
        };
        self.nested(|d| {
            r.fields(|index, r| {
                let Some((name, field_type)) = fields.get(index) else {
                    return fail(format!("field {index} of a struct with {}", fields.len()));
                };
                if !field(d, r, name, *field_type)? {
                    d.skip(r, *field_type)?;
                }
                Ok(())
            })
        })
    }

    /// Reads a self-encoded value (such as a `time.Time`) of `id` as its bytes.
    ///
    /// # Errors
    /// A type of another kind, or truncated data.
    pub fn encoded<'a>(&self, r: &mut Reader<'a>, id: TypeId) -> Result<&'a [u8], GobError> {
        match self.wire(id)? {
            WireType::Encoded { .. } => r.bytes(),
            _ => fail(format!("type {id} does not encode itself")),
        }
    }

    /// Reads a string, whatever its bytes (Go strings need not be UTF-8).
    ///
    /// # Errors
    /// A type other than string, or truncated data.
    pub fn raw_string<'a>(&self, r: &mut Reader<'a>, id: TypeId) -> Result<&'a [u8], GobError> {
        if id != builtin::STRING {
            return fail(format!("type {id} is not a string"));
        }
        r.bytes()
    }

    /// Reads past a value of `id`.
    ///
    /// # Errors
    /// Malformed data, an undefined type, or nesting beyond the limit.
    pub fn skip(&mut self, r: &mut Reader<'_>, id: TypeId) -> Result<(), GobError> {
        match id {
            builtin::BOOL | builtin::INT | builtin::UINT | builtin::FLOAT => r.uint().map(drop),
            builtin::BYTES | builtin::STRING => r.bytes().map(drop),
            builtin::COMPLEX => r.uint().and_then(|_| r.uint()).map(drop),
            builtin::INTERFACE => {
                // A concrete type's name (empty for nil), its id, and its value's bytes.
                if r.bytes()?.is_empty() {
                    return Ok(());
                }
                r.int()?;
                r.bytes().map(drop)
            }
            _ => match self.wire(id)? {
                WireType::Array { elem } | WireType::Slice { elem } => {
                    let elem = *elem;
                    self.nested(|d| {
                        for _ in 0..r.count()? {
                            d.skip(r, elem)?;
                        }
                        Ok(())
                    })
                }
                WireType::Map { key, elem } => {
                    let (key, elem) = (*key, *elem);
                    self.nested(|d| {
                        for _ in 0..r.count()? {
                            d.skip(r, key)?;
                            d.skip(r, elem)?;
                        }
                        Ok(())
                    })
                }
                WireType::Struct { .. } => self.structure(r, id, |_, _, _, _| Ok(false)),
                WireType::Encoded { .. } => r.bytes().map(drop),
            },
        }
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, GobError>,
    ) -> Result<T, GobError> {
        if self.depth >= MAX_DEPTH {
            return fail("values nested too deeply");
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_go_writes_them() {
        // Examples from the encoding/gob documentation.
        assert_eq!(Reader::new(&[0x07]).uint(), Ok(7));
        assert_eq!(Reader::new(&[0xFE, 0x01, 0x00]).uint(), Ok(256));
        assert_eq!(Reader::new(&[0x06]).int(), Ok(3));
        assert_eq!(Reader::new(&[0x05]).int(), Ok(-3));
        assert_eq!(Reader::new(&[0xFE, 0x31, 0x40]).float(), Ok(17.0));
        assert!(Reader::new(&[0xF7, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .uint()
            .is_err());
        assert!(Reader::new(&[0xFE, 0x01]).uint().is_err());
    }

    #[test]
    fn counts_beyond_the_data_are_refused() {
        assert!(Reader::new(&[0x05, 1, 2]).bytes().is_err());
        assert_eq!(Reader::new(&[0x02, 1, 2]).bytes(), Ok(&[1u8, 2][..]));
    }

    #[test]
    fn a_stream_needs_one_value_and_nothing_after_it() {
        // A bare int value: length 2, type id 2 (int, encoded 0x04), singleton 0, value.
        assert!(read_stream(&[0x03, 0x04, 0x00, 0x06]).is_ok());
        assert!(read_stream(&[0x03, 0x04, 0x00, 0x06, 0x00]).is_err());
        assert!(read_stream(&[]).is_err());
        assert!(read_stream(&[0x09, 0x04]).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        // Type 65 is a slice of itself; a value nests one level per byte.
        let types = HashMap::from([(65, WireType::Slice { elem: 65 })]);
        let data = vec![1u8; 10_000];
        let mut decoder = Decoder::new(&types);
        let error = decoder.skip(&mut Reader::new(&data), 65).unwrap_err();
        assert!(error.0.contains("nested"), "{error}");
    }
}
