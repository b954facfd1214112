//! The binary encoding of groups and changes used by both the snapshot and the log.
//!
//! A *group block* starts with its own string table (every label name and value, metric
//! name and help text of the group, each once), followed by the grouping key, the group's
//! timestamps and its families, which refer to strings by index, and last the group's
//! creation time (missing in blocks written before it was kept). Numbers are LEB128
//! varints (zigzag for signed), floats are 8 little-endian bytes. Decoding checks every
//! length and index and fails with [`CodecError`] instead of panicking.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{
    Bucket, BucketSpan, Exemplar, Extras, GroupingKey, Histogram, Label, Metric, MetricFamily,
    MetricType, NativeHistogram, Quantile, Series, Str, Summary, Timestamp, Value,
};
use crate::store::{Change, GroupView, PushMode, StoredFamily};

/// Malformed encoded data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

fn err<T>(what: &str) -> Result<T, CodecError> {
    Err(CodecError(what.to_string()))
}

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
        block.family(&stored.family, stored.pushed_at, Some(&view.key));
    }
    // Last, so that blocks written before it existed still decode.
    block.f64(view.created);
    block.finish(out);
}

/// Encodes a change record's payload.
pub fn encode_change(out: &mut Vec<u8>, change: &Change<'_>) {
    let mut block = BlockWriter::default();
    match *change {
        Change::Push {
            key,
            families,
            mode,
            time,
            inconsistent,
        } => {
            out.push(1);
            out.push(match mode {
                PushMode::Replace => 0,
                PushMode::Merge => 1,
            });
            out.push(u8::from(inconsistent));
            out.extend_from_slice(&time.to_le_bytes());
            block.key(key);
            block.varint(families.len() as u64);
            for family in families {
                // A push's families carry their full label sets already.
                block.family(family, time, None);
            }
        }
        Change::Failure { key, time } => {
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
    }
    block.finish(out);
}

#[derive(Default)]
struct BlockWriter {
    strings: HashMap<Str, u64>,
    table: Vec<Str>,
    body: Vec<u8>,
}

impl BlockWriter {
    fn finish(self, out: &mut Vec<u8>) {
        put_varint(out, self.table.len() as u64);
        for s in &self.table {
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&self.body);
    }

    fn varint(&mut self, v: u64) {
        put_varint(&mut self.body, v);
    }

    fn signed(&mut self, v: i64) {
        put_varint(&mut self.body, ((v << 1) ^ (v >> 63)) as u64);
    }

    fn f64(&mut self, v: f64) {
        self.body.extend_from_slice(&v.to_le_bytes());
    }

    fn byte(&mut self, v: u8) {
        self.body.push(v);
    }

    fn string(&mut self, s: &Str) {
        let next = self.table.len() as u64;
        let index = *self.strings.entry(s.clone()).or_insert_with(|| {
            self.table.push(s.clone());
            next
        });
        self.varint(index);
    }

    fn labels<'a>(&mut self, labels: impl Iterator<Item = &'a Label> + Clone) {
        self.varint(labels.clone().count() as u64);
        for label in labels {
            self.string(&label.name);
            self.string(&label.value);
        }
    }

    fn key(&mut self, key: &GroupingKey) {
        self.labels(key.labels().iter());
    }

    /// Writes a family; `group` supplies the labels its metrics do not carry themselves.
    fn family(&mut self, family: &MetricFamily, pushed_at: f64, group: Option<&GroupingKey>) {
        self.string(&family.name);
        match &family.help {
            None => self.byte(0),
            Some(help) => {
                self.byte(1);
                self.string(help);
            }
        }
        self.byte(type_code(family.metric_type));
        self.f64(pushed_at);
        self.varint(family.metrics.len() as u64);
        for metric in &family.metrics {
            self.metric(Series { metric, group });
        }
    }

    fn metric(&mut self, series: Series<'_>) {
        let metric = series.metric;
        self.labels(series.labels());
        match &metric.value {
            Value::Counter(v) => {
                self.byte(0);
                self.f64(*v);
            }
            Value::Gauge(v) => {
                self.byte(1);
                self.f64(*v);
            }
            Value::Untyped(v) => {
                self.byte(2);
                self.f64(*v);
            }
            Value::Summary(s) => {
                self.byte(3);
                self.varint(s.count);
                self.f64(s.sum);
                self.varint(s.quantiles.len() as u64);
                for q in &s.quantiles {
                    self.f64(q.quantile);
                    self.f64(q.value);
                }
            }
            Value::Histogram(h) => {
                self.byte(4);
                self.f64(h.count);
                self.byte(u8::from(h.float_counts));
                self.f64(h.sum);
                self.varint(h.buckets.len() as u64);
                for b in &h.buckets {
                    self.f64(b.upper_bound);
                    self.f64(b.count);
                }
            }
        }
        match metric.timestamp_ms() {
            None => self.byte(0),
            Some(ts) => {
                self.byte(1);
                self.signed(ts);
            }
        }
        match &metric.extras {
            None => self.byte(0),
            Some(extras) => {
                self.byte(1);
                self.extras(extras);
            }
        }
    }

    fn timestamp(&mut self, ts: Option<Timestamp>) {
        match ts {
            None => self.byte(0),
            Some(ts) => {
                self.byte(1);
                self.signed(ts.seconds);
                self.signed(i64::from(ts.nanos));
            }
        }
    }

    fn exemplar(&mut self, e: &Exemplar) {
        self.labels(e.labels.iter());
        self.f64(e.value);
        self.timestamp(e.timestamp);
    }

    fn optional_exemplar(&mut self, e: Option<&Exemplar>) {
        match e {
            None => self.byte(0),
            Some(e) => {
                self.byte(1);
                self.exemplar(e);
            }
        }
    }

    fn spans(&mut self, spans: &[BucketSpan]) {
        self.varint(spans.len() as u64);
        for s in spans {
            self.signed(i64::from(s.offset));
            self.varint(u64::from(s.length));
        }
    }

    fn extras(&mut self, extras: &Extras) {
        self.timestamp(extras.created);
        self.optional_exemplar(extras.exemplar.as_ref());
        self.varint(extras.bucket_exemplars.len() as u64);
        for e in &extras.bucket_exemplars {
            self.optional_exemplar(e.as_ref());
        }
        match &extras.native {
            None => self.byte(0),
            Some(n) => {
                self.byte(1);
                self.signed(i64::from(n.schema));
                self.f64(n.zero_threshold);
                match n.zero_count {
                    None => self.byte(0),
                    Some(c) => {
                        self.byte(1);
                        self.varint(c);
                    }
                }
                match n.zero_count_float {
                    None => self.byte(0),
                    Some(c) => {
                        self.byte(1);
                        self.f64(c);
                    }
                }
                for (spans, deltas, counts) in [
                    (&n.negative_spans, &n.negative_deltas, &n.negative_counts),
                    (&n.positive_spans, &n.positive_deltas, &n.positive_counts),
                ] {
                    self.spans(spans);
                    self.varint(deltas.len() as u64);
                    for d in deltas {
                        self.signed(*d);
                    }
                    self.varint(counts.len() as u64);
                    for c in counts {
                        self.f64(*c);
                    }
                }
            }
        }
        self.varint(extras.exemplars.len() as u64);
        for e in &extras.exemplars {
            self.exemplar(e);
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

fn type_code(t: MetricType) -> u8 {
    match t {
        MetricType::Counter => 0,
        MetricType::Gauge => 1,
        MetricType::Summary => 2,
        MetricType::Untyped => 3,
        MetricType::Histogram => 4,
        MetricType::GaugeHistogram => 5,
    }
}

// === reading ===

/// A decoded change, owning its data.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedChange {
    /// See [`Change::Push`].
    Push {
        /// The group.
        key: GroupingKey,
        /// The families.
        families: Vec<MetricFamily>,
        /// PUT or POST.
        mode: PushMode,
        /// Unix time.
        time: f64,
        /// Unchecked and inconsistent.
        inconsistent: bool,
    },
    /// See [`Change::Failure`].
    Failure {
        /// The group.
        key: GroupingKey,
        /// Unix time.
        time: f64,
    },
    /// See [`Change::Delete`].
    Delete {
        /// The group.
        key: GroupingKey,
    },
    /// See [`Change::Wipe`].
    Wipe,
}

impl OwnedChange {
    /// Borrows it as the store's [`Change`].
    pub fn as_change(&self) -> Change<'_> {
        match self {
            OwnedChange::Push {
                key,
                families,
                mode,
                time,
                inconsistent,
            } => Change::Push {
                key,
                families,
                mode: *mode,
                time: *time,
                inconsistent: *inconsistent,
            },
            OwnedChange::Failure { key, time } => Change::Failure { key, time: *time },
            OwnedChange::Delete { key } => Change::Delete { key },
            OwnedChange::Wipe => Change::Wipe,
        }
    }
}

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
        let (family, pushed_at) = reader.family()?;
        families.push(Arc::new(StoredFamily::new(family, pushed_at, key.clone())));
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
    reader.end()?;
    Ok(GroupView {
        key,
        families,
        push_time,
        failure_time,
        created: if created.is_finite() { created } else { 0.0 },
    })
}

/// Decodes a change record's payload.
///
/// # Errors
/// [`CodecError`] on malformed data.
pub fn decode_change(input: &[u8]) -> Result<OwnedChange, CodecError> {
    let (&tag, rest) = input
        .split_first()
        .ok_or(CodecError("empty record".into()))?;
    match tag {
        1 => {
            if rest.len() < 10 {
                return err("truncated push record");
            }
            let mode = match rest[0] {
                0 => PushMode::Replace,
                1 => PushMode::Merge,
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
            reader.end()?;
            Ok(OwnedChange::Push {
                key,
                families,
                mode,
                time,
                inconsistent,
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
            Ok(OwnedChange::Failure { key, time })
        }
        3 => {
            let mut reader = Reader::new(rest)?;
            let key = reader.key()?;
            reader.end()?;
            Ok(OwnedChange::Delete { key })
        }
        4 => {
            let reader = Reader::new(rest)?;
            reader.end()?;
            Ok(OwnedChange::Wipe)
        }
        other => Err(CodecError(format!("unknown record type {other}"))),
    }
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    table: Vec<Str>,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Result<Reader<'a>, CodecError> {
        let mut reader = Reader {
            input,
            pos: 0,
            table: Vec::new(),
        };
        let count = reader.count()?;
        reader.table.reserve(count.min(4096));
        for _ in 0..count {
            let len = reader.count()?;
            let bytes = reader.take(len)?;
            let s =
                std::str::from_utf8(bytes).map_err(|_| CodecError("string is not UTF-8".into()))?;
            reader.table.push(Str::from(s));
        }
        Ok(reader)
    }

    fn at_end(&self) -> bool {
        self.pos == self.input.len()
    }

    fn end(&self) -> Result<(), CodecError> {
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
            .ok_or(CodecError("truncated".into()))?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
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
    fn count(&mut self) -> Result<usize, CodecError> {
        let v = self.varint()?;
        if v > (self.input.len() - self.pos) as u64 {
            return err("count larger than the data");
        }
        Ok(v as usize)
    }

    fn signed(&mut self) -> Result<i64, CodecError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn i32(&mut self) -> Result<i32, CodecError> {
        i32::try_from(self.signed()?).map_err(|_| CodecError("number out of range".into()))
    }

    fn f64(&mut self) -> Result<f64, CodecError> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(f64::from_le_bytes(array))
    }

    fn flag(&mut self) -> Result<bool, CodecError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => err("bad flag"),
        }
    }

    fn string(&mut self) -> Result<Str, CodecError> {
        let index = self.varint()?;
        self.table
            .get(index as usize)
            .cloned()
            .ok_or(CodecError("string index out of range".into()))
    }

    fn labels(&mut self) -> Result<Vec<Label>, CodecError> {
        let count = self.count()?;
        let mut labels = Vec::with_capacity(count);
        for _ in 0..count {
            let name = self.string()?;
            let value = self.string()?;
            labels.push(Label { name, value });
        }
        Ok(labels)
    }

    fn key(&mut self) -> Result<GroupingKey, CodecError> {
        Ok(GroupingKey::new(self.labels()?))
    }

    fn family(&mut self) -> Result<(MetricFamily, f64), CodecError> {
        let name = self.string()?;
        let help = if self.flag()? {
            Some(self.string()?)
        } else {
            None
        };
        let metric_type = match self.byte()? {
            0 => MetricType::Counter,
            1 => MetricType::Gauge,
            2 => MetricType::Summary,
            3 => MetricType::Untyped,
            4 => MetricType::Histogram,
            5 => MetricType::GaugeHistogram,
            _ => return err("unknown metric type"),
        };
        let pushed_at = self.f64()?;
        let count = self.count()?;
        let mut metrics = Vec::with_capacity(count);
        for _ in 0..count {
            metrics.push(self.metric()?);
        }
        Ok((
            MetricFamily {
                name,
                help,
                metric_type,
                metrics,
            },
            pushed_at,
        ))
    }

    fn metric(&mut self) -> Result<Metric, CodecError> {
        let labels = self.labels()?;
        let value = match self.byte()? {
            0 => Value::Counter(self.f64()?),
            1 => Value::Gauge(self.f64()?),
            2 => Value::Untyped(self.f64()?),
            3 => {
                let count = self.varint()?;
                let sum = self.f64()?;
                let n = self.count()?;
                let mut quantiles = Vec::with_capacity(n);
                for _ in 0..n {
                    quantiles.push(Quantile {
                        quantile: self.f64()?,
                        value: self.f64()?,
                    });
                }
                Value::Summary(Box::new(Summary {
                    count,
                    sum,
                    quantiles,
                }))
            }
            4 => {
                let count = self.f64()?;
                let float_counts = self.flag()?;
                let sum = self.f64()?;
                let n = self.count()?;
                let mut buckets = Vec::with_capacity(n);
                for _ in 0..n {
                    buckets.push(Bucket {
                        upper_bound: self.f64()?,
                        count: self.f64()?,
                    });
                }
                Value::Histogram(Box::new(Histogram {
                    count,
                    float_counts,
                    sum,
                    buckets,
                }))
            }
            _ => return err("unknown value type"),
        };
        let timestamp_ms = if self.flag()? {
            Some(self.signed()?)
        } else {
            None
        };
        let extras = if self.flag()? {
            Some(Box::new(self.extras()?))
        } else {
            None
        };
        Ok(Metric {
            labels: labels.into_boxed_slice(),
            value,
            extras: Metric::extras_from(timestamp_ms, extras.map(|e| *e).unwrap_or_default()),
        })
    }

    fn timestamp(&mut self) -> Result<Option<Timestamp>, CodecError> {
        if !self.flag()? {
            return Ok(None);
        }
        Ok(Some(Timestamp {
            seconds: self.signed()?,
            nanos: self.i32()?,
        }))
    }

    fn exemplar(&mut self) -> Result<Exemplar, CodecError> {
        Ok(Exemplar {
            labels: self.labels()?,
            value: self.f64()?,
            timestamp: self.timestamp()?,
        })
    }

    fn optional_exemplar(&mut self) -> Result<Option<Exemplar>, CodecError> {
        if self.flag()? {
            Ok(Some(self.exemplar()?))
        } else {
            Ok(None)
        }
    }

    fn spans(&mut self) -> Result<Vec<BucketSpan>, CodecError> {
        let n = self.count()?;
        let mut spans = Vec::with_capacity(n);
        for _ in 0..n {
            let offset = self.i32()?;
            let length =
                u32::try_from(self.varint()?).map_err(|_| CodecError("span length".into()))?;
            spans.push(BucketSpan { offset, length });
        }
        Ok(spans)
    }

    fn extras(&mut self) -> Result<Extras, CodecError> {
        let created = self.timestamp()?;
        let exemplar = self.optional_exemplar()?;
        let n = self.count()?;
        let mut bucket_exemplars = Vec::with_capacity(n);
        for _ in 0..n {
            bucket_exemplars.push(self.optional_exemplar()?);
        }
        let native = if self.flag()? {
            let schema = self.i32()?;
            let zero_threshold = self.f64()?;
            let zero_count = if self.flag()? {
                Some(self.varint()?)
            } else {
                None
            };
            let zero_count_float = if self.flag()? {
                Some(self.f64()?)
            } else {
                None
            };
            let mut sides = Vec::with_capacity(2);
            for _ in 0..2 {
                let spans = self.spans()?;
                let n = self.count()?;
                let mut deltas = Vec::with_capacity(n);
                for _ in 0..n {
                    deltas.push(self.signed()?);
                }
                let n = self.count()?;
                let mut counts = Vec::with_capacity(n);
                for _ in 0..n {
                    counts.push(self.f64()?);
                }
                sides.push((spans, deltas, counts));
            }
            let (positive_spans, positive_deltas, positive_counts) =
                sides.pop().ok_or(CodecError("native histogram".into()))?;
            let (negative_spans, negative_deltas, negative_counts) =
                sides.pop().ok_or(CodecError("native histogram".into()))?;
            Some(NativeHistogram {
                schema,
                zero_threshold,
                zero_count,
                zero_count_float,
                negative_spans,
                negative_deltas,
                negative_counts,
                positive_spans,
                positive_deltas,
                positive_counts,
            })
        } else {
            None
        };
        let n = self.count()?;
        let mut exemplars = Vec::with_capacity(n);
        for _ in 0..n {
            exemplars.push(self.exemplar()?);
        }
        Ok(Extras {
            timestamp_ms: None,
            created,
            exemplar,
            bucket_exemplars,
            native,
            exemplars,
        })
    }
}
