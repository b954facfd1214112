//! Metric families, their metrics and the extras (timestamps, exemplars, native
//! histograms). Each writer method sits beside its reader so that the two stay in step.

use super::block::{BlockWriter, Reader};
use super::{err, CodecError};
use std::sync::Arc;

use crate::model::{
    Bucket, BucketSpan, Exemplar, Extras, GroupingKey, Histogram, LabelRef, Metric, MetricFamily,
    MetricType, NativeHistogram, PackedBuilder, Quantile, Series, Str, Summary, Timestamp, Value,
    ValueRef,
};
use crate::store::StoredFamily;

// === writing ===

impl BlockWriter {
    /// Writes a pushed family (its metrics carry their full label sets).
    pub(super) fn family(&mut self, family: &MetricFamily, pushed_at: f64) {
        let header = (&*family.name, family.help.as_ref(), family.metric_type);
        self.family_of(header, pushed_at, family.metrics.iter().map(Series::alone));
    }

    /// Writes a stored family with the full label sets of its series.
    pub(super) fn stored_family(&mut self, stored: &StoredFamily) {
        let header = (&*stored.name, stored.help.as_ref(), stored.metric_type);
        self.family_of(header, stored.pushed_at, stored.series());
    }

    fn family_of<'a>(
        &mut self,
        (name, help, metric_type): (&str, Option<&Str>, MetricType),
        pushed_at: f64,
        series: impl ExactSizeIterator<Item = Series<'a>>,
    ) {
        self.string(name);
        match help {
            None => self.byte(0),
            Some(help) => {
                self.byte(1);
                self.string(help);
            }
        }
        // The type's index is its code: `MetricType::index` keeps it stable.
        self.byte(metric_type.index() as u8);
        self.f64(pushed_at);
        self.varint(series.len() as u64);
        for series in series {
            self.metric(series);
        }
    }

    fn metric(&mut self, series: Series<'_>) {
        self.labels(series.labels());
        match series.value() {
            ValueRef::Counter(v) => {
                self.byte(0);
                self.f64(v);
            }
            ValueRef::Gauge(v) => {
                self.byte(1);
                self.f64(v);
            }
            ValueRef::Untyped(v) => {
                self.byte(2);
                self.f64(v);
            }
            ValueRef::Summary(s) => {
                self.byte(3);
                self.varint(s.count);
                self.f64(s.sum);
                self.varint(s.quantiles.len() as u64);
                for q in &s.quantiles {
                    self.f64(q.quantile);
                    self.f64(q.value);
                }
            }
            ValueRef::Histogram(h) => {
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
        match series.timestamp_ms() {
            None => self.byte(0),
            Some(ts) => {
                self.byte(1);
                self.signed(ts);
            }
        }
        match series.extras() {
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

// === reading ===

/// The fewest bytes a series takes: its label count, value kind and one float, and the
/// timestamp and extras flags. A series count is checked against it, so that the room
/// reserved for a family's series is in proportion to the input.
const MIN_SERIES_BYTES: usize = 12;

impl Reader<'_> {
    pub(super) fn family(&mut self) -> Result<(MetricFamily, f64), CodecError> {
        let (name, help, metric_type, pushed_at) = self.family_header()?;
        let count = self.count_of(MIN_SERIES_BYTES)?;
        let mut metrics = Vec::with_capacity(count);
        for _ in 0..count {
            let labels = self.labels()?;
            let (value, extras) = self.sample()?;
            metrics.push(Metric {
                labels: labels.into_boxed_slice(),
                value,
                extras,
            });
        }
        let family = MetricFamily {
            name,
            help,
            metric_type,
            metrics,
        };
        Ok((family, pushed_at))
    }

    /// Reads a family of `group` straight into its packed form, without a metric per
    /// series on the way.
    pub(super) fn stored_family(
        &mut self,
        group: &Arc<GroupingKey>,
    ) -> Result<StoredFamily, CodecError> {
        let (name, help, metric_type, pushed_at) = self.family_header()?;
        let count = self.count_of(MIN_SERIES_BYTES)?;
        let mut packed = PackedBuilder::with_capacity(count);
        let mut labels = Vec::new();
        for _ in 0..count {
            self.label_indexes(&mut labels)?;
            self.drop_supplied(&mut labels, group);
            let (value, extras) = self.sample()?;
            let own = labels.iter().map(|&(name, value)| LabelRef {
                name: self.text(name),
                value: self.text(value),
            });
            packed.push(own, value, extras);
        }
        let packed = packed.finish();
        let group = group.clone();
        Ok(StoredFamily::from_packed(
            name,
            help,
            metric_type,
            pushed_at,
            group,
            packed,
        ))
    }

    fn family_header(&mut self) -> Result<(Str, Option<Str>, MetricType, f64), CodecError> {
        let name = self.string()?;
        let help = if self.flag()? {
            Some(self.string()?)
        } else {
            None
        };
        let metric_type = *MetricType::ALL
            .get(usize::from(self.byte()?))
            .ok_or_else(|| CodecError("unknown metric type".into()))?;
        let pushed_at = self.f64()?;
        Ok((name, help, metric_type, pushed_at))
    }

    /// A metric's value and extras (with its timestamp).
    fn sample(&mut self) -> Result<(Value, Option<Box<Extras>>), CodecError> {
        let value = match self.byte()? {
            0 => Value::Counter(self.f64()?),
            1 => Value::Gauge(self.f64()?),
            2 => Value::Untyped(self.f64()?),
            3 => {
                let count = self.varint()?;
                let sum = self.f64()?;
                let n = self.count()?;
                let mut quantiles = Vec::with_capacity(self.room::<Quantile>(n));
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
                let mut buckets = Vec::with_capacity(self.room::<Bucket>(n));
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
        let extras = Metric::extras_from(timestamp_ms, extras.map(|e| *e).unwrap_or_default());
        Ok((value, extras))
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
        let mut spans = Vec::with_capacity(self.room::<BucketSpan>(n));
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
        let mut bucket_exemplars = Vec::with_capacity(self.room::<Option<Exemplar>>(n));
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
                let mut deltas = Vec::with_capacity(self.room::<i64>(n));
                for _ in 0..n {
                    deltas.push(self.signed()?);
                }
                let n = self.count()?;
                let mut counts = Vec::with_capacity(self.room::<f64>(n));
                for _ in 0..n {
                    counts.push(self.f64()?);
                }
                sides.push((spans, deltas, counts));
            }
            let (positive_spans, positive_deltas, positive_counts) = sides
                .pop()
                .ok_or_else(|| CodecError("native histogram".into()))?;
            let (negative_spans, negative_deltas, negative_counts) = sides
                .pop()
                .ok_or_else(|| CodecError("native histogram".into()))?;
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
        let mut exemplars = Vec::with_capacity(self.room::<Exemplar>(n));
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
