//! The series of one stored family packed into a few flat allocations instead of one (or
//! four) per series: millions of series stay at tens of bytes each.
//!
//! - Own labels (those the group does not supply, sorted by name) go into one text arena:
//!   per label, the index of its name in the family's name table and the value's length
//!   (both as 6-bit ASCII digits, so that the arena stays valid UTF-8 and reading a value
//!   back is a slice, not a validation), then the value. Each series' labels start at an
//!   offset.
//! - Values are a column: plain `f64`s while every value is the same number kind (the
//!   common case), the full [`Value`]s otherwise.
//! - Extras (timestamps, exemplars, native buckets) are sparse, by series index.

use std::collections::HashMap;

use super::borrowed::{LabelRef, ValueRef};
use super::{Extras, Label, Metric, MetricType, Str, Value, INSTANCE_LABEL};

/// Arena offsets are `u32` (4 bytes a series); an arena past 4 GiB records where the
/// offsets wrapped instead of widening every offset.
const WRAP: u64 = 1 << 32;

/// The series of one family: own labels, values and extras, by series index.
#[derive(Clone, Debug, Default)]
pub struct PackedSeries {
    /// The distinct label names of the family, indexed from the arena.
    names: Vec<Str>,
    /// Per label: name index and value length (see [`put_number`]), then the value.
    arena: String,
    /// The index of `instance` in `names`, if any series has an own instance label.
    instance: Option<u32>,
    /// Where each series' labels start in the arena (modulo 2^32), plus the end.
    starts: Vec<u32>,
    /// The series indices at which `starts` wrapped past 2^32, ascending (almost always
    /// empty).
    wraps: Vec<u32>,
    values: Values,
    /// Extras of the series that have any, sorted by series index.
    extras: Vec<(u32, Box<Extras>)>,
}

/// The values of a family.
#[derive(Clone, Debug)]
enum Values {
    /// Every value is a number of this kind.
    Numbers(NumberKind, Vec<f64>),
    /// Anything else.
    Any(Vec<Value>),
}

impl Default for Values {
    fn default() -> Self {
        Values::Any(Vec::new())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NumberKind {
    Counter,
    Gauge,
    Untyped,
}

impl NumberKind {
    fn of(value: &Value) -> Option<(NumberKind, f64)> {
        match *value {
            Value::Counter(v) => Some((NumberKind::Counter, v)),
            Value::Gauge(v) => Some((NumberKind::Gauge, v)),
            Value::Untyped(v) => Some((NumberKind::Untyped, v)),
            _ => None,
        }
    }

    fn value_ref<'a>(self, v: f64) -> ValueRef<'a> {
        match self {
            NumberKind::Counter => ValueRef::Counter(v),
            NumberKind::Gauge => ValueRef::Gauge(v),
            NumberKind::Untyped => ValueRef::Untyped(v),
        }
    }
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Numbers(_, v) => v.len(),
            Values::Any(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> Option<ValueRef<'_>> {
        match self {
            Values::Numbers(kind, v) => v.get(i).map(|&v| kind.value_ref(v)),
            Values::Any(v) => v.get(i).map(ValueRef::from),
        }
    }

    fn push(&mut self, value: Value) {
        if let Values::Any(all) = self {
            if all.is_empty() {
                if let Some((kind, _)) = NumberKind::of(&value) {
                    *self = Values::Numbers(kind, Vec::with_capacity(all.capacity()));
                }
            }
        }
        match (self.number_slot(&value), NumberKind::of(&value)) {
            (Some(numbers), Some((_, v))) => numbers.push(v),
            _ => self.any().push(value),
        }
    }

    fn set(&mut self, i: usize, value: Value) {
        match (self.number_slot(&value), NumberKind::of(&value)) {
            (Some(numbers), Some((_, v))) => {
                if let Some(slot) = numbers.get_mut(i) {
                    *slot = v;
                }
            }
            _ => {
                if let Some(slot) = self.any().get_mut(i) {
                    *slot = value;
                }
            }
        }
    }

    /// The number column, if `value` fits it.
    fn number_slot(&mut self, value: &Value) -> Option<&mut Vec<f64>> {
        match (self, NumberKind::of(value)) {
            (Values::Numbers(kind, numbers), Some((k, _))) if *kind == k => Some(numbers),
            _ => None,
        }
    }

    /// The general column, converting the number column if needed.
    fn any(&mut self) -> &mut Vec<Value> {
        if let Values::Numbers(kind, numbers) = self {
            let kind = *kind;
            let all = numbers
                .iter()
                .map(|&v| match kind {
                    NumberKind::Counter => Value::Counter(v),
                    NumberKind::Gauge => Value::Gauge(v),
                    NumberKind::Untyped => Value::Untyped(v),
                })
                .collect();
            *self = Values::Any(all);
        }
        match self {
            Values::Any(all) => all,
            Values::Numbers(..) => unreachable!("converted above"),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            Values::Numbers(_, v) => v.shrink_to_fit(),
            Values::Any(v) => v.shrink_to_fit(),
        }
    }
}

impl PackedSeries {
    /// Packs metrics whose labels are already the series' own (sorted by name).
    pub fn from_metrics(metrics: impl ExactSizeIterator<Item = Metric>) -> PackedSeries {
        let mut builder = PackedBuilder::with_capacity(metrics.len());
        for metric in metrics {
            builder.push(
                metric.labels.iter().map(LabelRef::from),
                metric.value,
                metric.extras,
            );
        }
        builder.finish()
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there is no series.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The own labels of series `i` (none past the end), sorted by name.
    pub fn labels(&self, i: usize) -> PackedLabels<'_> {
        let text = match (self.start(i), self.start(i + 1)) {
            (Some(start), Some(end)) => self.arena.get(start..end).unwrap_or_default(),
            _ => "",
        };
        PackedLabels {
            names: &self.names,
            text,
            instance: self.instance,
        }
    }

    fn start(&self, i: usize) -> Option<usize> {
        let low = u64::from(*self.starts.get(i)?);
        let wrapped = self.wraps.partition_point(|&w| w as usize <= i) as u64;
        usize::try_from(low + wrapped * WRAP).ok()
    }

    /// The value of series `i`.
    pub fn value(&self, i: usize) -> Option<ValueRef<'_>> {
        self.values.get(i)
    }

    /// The extras of series `i`, if it has any.
    pub fn extras(&self, i: usize) -> Option<&Extras> {
        let i = u32::try_from(i).ok()?;
        let at = self.extras.binary_search_by_key(&i, |(at, _)| *at).ok()?;
        Some(&self.extras[at].1)
    }

    /// Whether every value is of a kind a family of `family_type` shows (one look when they
    /// are a column of numbers).
    pub fn values_fit(&self, family_type: MetricType) -> bool {
        match &self.values {
            Values::Numbers(kind, _) => kind.value_ref(0.0).fits(family_type),
            Values::Any(all) => all.iter().all(|v| ValueRef::from(v).fits(family_type)),
        }
    }

    /// The distinct names of the series' own labels.
    pub fn label_names(&self) -> &[Str] {
        &self.names
    }

    /// Replaces the value and extras of series `i` (its labels stay).
    pub fn set(&mut self, i: usize, value: Value, extras: Option<Box<Extras>>) {
        if i >= self.len() {
            return;
        }
        self.values.set(i, value);
        let Ok(index) = u32::try_from(i) else {
            return;
        };
        match (
            self.extras.binary_search_by_key(&index, |(at, _)| *at),
            extras,
        ) {
            (Ok(at), Some(extras)) => self.extras[at].1 = extras,
            (Ok(at), None) => {
                self.extras.remove(at);
            }
            (Err(at), Some(extras)) => self.extras.insert(at, (index, extras)),
            (Err(_), None) => {}
        }
    }

    /// Series `i` as a metric with its own labels.
    pub fn metric(&self, i: usize) -> Option<Metric> {
        Some(Metric {
            labels: self.labels(i).map(Label::from).collect(),
            value: self.value(i)?.to_value(),
            extras: self.extras(i).map(|e| Box::new(e.clone())),
        })
    }

    /// A builder holding these series, to append more.
    pub fn into_builder(self) -> PackedBuilder {
        let name_index = if self.names.len() > LINEAR_NAMES {
            self.names
                .iter()
                .enumerate()
                .map(|(i, name)| (name.clone(), i as u32))
                .collect()
        } else {
            HashMap::new()
        };
        let end = self.start(self.len()).unwrap_or(0);
        PackedBuilder {
            series: self,
            name_index,
            end: end as u64,
        }
    }

    /// The series reordered by `order` (a permutation of the indices).
    fn permuted(&self, order: &[usize]) -> PackedSeries {
        let mut builder = PackedBuilder::with_capacity(order.len());
        for &i in order {
            if let Some(value) = self.value(i) {
                builder.push(
                    self.labels(i),
                    value.to_value(),
                    self.extras(i).map(|e| Box::new(e.clone())),
                );
            }
        }
        builder.finish()
    }

    /// Sorts the series by `cmp(self, a, b)` over their indices (stable; nothing is
    /// copied when they are sorted already).
    pub fn sort_by(
        &mut self,
        mut cmp: impl FnMut(&PackedSeries, usize, usize) -> std::cmp::Ordering,
    ) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if order.is_sorted_by(|&a, &b| cmp(self, a, b).is_le()) {
            return;
        }
        order.sort_by(|&a, &b| cmp(self, a, b));
        *self = self.permuted(&order);
    }
}

impl PartialEq for PackedSeries {
    fn eq(&self, other: &PackedSeries) -> bool {
        self.len() == other.len()
            && (0..self.len()).all(|i| {
                self.labels(i).eq(other.labels(i))
                    && self.value(i) == other.value(i)
                    && self.extras(i) == other.extras(i)
            })
    }
}

/// Up to this many label names a family's names are searched in order; past it, hashed.
const LINEAR_NAMES: usize = 8;

/// Builds a [`PackedSeries`] series by series.
#[derive(Debug)]
pub struct PackedBuilder {
    series: PackedSeries,
    /// The names by index, once there are more than [`LINEAR_NAMES`].
    name_index: HashMap<Str, u32>,
    /// The arena's length as a full number (the offsets keep it modulo 2^32).
    end: u64,
}

impl PackedBuilder {
    /// A builder for about `capacity` series.
    pub fn with_capacity(capacity: usize) -> PackedBuilder {
        let mut series = PackedSeries {
            values: Values::Any(Vec::with_capacity(capacity)),
            ..PackedSeries::default()
        };
        series.starts.reserve_exact(capacity + 1);
        series.starts.push(0);
        PackedBuilder {
            series,
            name_index: HashMap::new(),
            end: 0,
        }
    }

    /// Appends a series: its own labels (sorted by name), value and extras.
    pub fn push<'a>(
        &mut self,
        labels: impl IntoIterator<Item = LabelRef<'a>>,
        value: Value,
        extras: Option<Box<Extras>>,
    ) {
        let series = &mut self.series;
        if series.starts.is_empty() {
            series.starts.push(0);
        }
        let before = series.arena.len();
        for label in labels {
            let known = if series.names.len() > LINEAR_NAMES {
                self.name_index.get(label.name).copied()
            } else {
                series
                    .names
                    .iter()
                    .position(|n| n.as_str() == label.name)
                    .map(|i| i as u32)
            };
            let index = match known {
                Some(index) => index,
                None => {
                    let index = series.names.len() as u32;
                    series.names.push(Str::from(label.name));
                    if series.names.len() > LINEAR_NAMES {
                        if self.name_index.is_empty() {
                            let names = series.names.iter().cloned();
                            self.name_index = names.zip(0..).collect();
                        } else {
                            self.name_index.insert(Str::from(label.name), index);
                        }
                    }
                    if label.name == INSTANCE_LABEL {
                        series.instance = Some(index);
                    }
                    index
                }
            };
            put_number(&mut series.arena, u64::from(index));
            put_number(&mut series.arena, label.value.len() as u64);
            series.arena.push_str(label.value);
        }
        let index = series.values.len();
        let old_end = self.end;
        self.end += (series.arena.len() - before) as u64;
        for _ in old_end / WRAP..self.end / WRAP {
            // The end of this series is past a wrap: so is the start of the next one.
            series.wraps.push(index as u32 + 1);
        }
        series.starts.push((self.end % WRAP) as u32);
        series.values.push(value);
        if let Some(extras) = extras {
            series.extras.push((index as u32, extras));
        }
    }

    /// The packed series as grown, with room to append more later (aggregation).
    pub fn into_grown(self) -> PackedSeries {
        self.series
    }

    /// The packed series, their allocations trimmed to size.
    pub fn finish(mut self) -> PackedSeries {
        let series = &mut self.series;
        series.names.shrink_to_fit();
        series.arena.shrink_to_fit();
        series.starts.shrink_to_fit();
        series.values.shrink_to_fit();
        series.extras.shrink_to_fit();
        self.series
    }
}

/// The own labels of one packed series, in name order.
#[derive(Clone, Debug)]
pub struct PackedLabels<'a> {
    names: &'a [Str],
    text: &'a str,
    instance: Option<u32>,
}

impl PackedLabels<'_> {
    /// Whether one of the labels is `instance` (without reading the values).
    pub fn has_instance(&self) -> bool {
        let Some(instance) = self.instance else {
            return false;
        };
        let mut rest = self.text;
        while !rest.is_empty() {
            let (Some(name), Some(len)) = (take_number(&mut rest), take_number(&mut rest)) else {
                return false;
            };
            if name == u64::from(instance) {
                return true;
            }
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            rest = rest.get(len..).unwrap_or_default();
        }
        false
    }
}

impl<'a> Iterator for PackedLabels<'a> {
    type Item = LabelRef<'a>;

    fn next(&mut self) -> Option<LabelRef<'a>> {
        if self.text.is_empty() {
            return None;
        }
        let name = take_number(&mut self.text)?;
        let len = usize::try_from(take_number(&mut self.text)?).ok()?;
        // Cut where it was written, so always at a character boundary.
        let value = self.text.get(..len)?;
        self.text = &self.text[len..];
        let name = usize::try_from(name)
            .ok()
            .and_then(|i| self.names.get(i))
            .map_or("", |n| n.as_str());
        Some(LabelRef { name, value })
    }
}

/// Appends `n` as ASCII: six bits a byte, least significant first, `0x40` on every byte
/// but the last. ASCII keeps the arena a `String` (a value is read back by slicing it),
/// and most indexes and lengths (below 64) take one byte.
fn put_number(out: &mut String, mut n: u64) {
    while n >= 0x40 {
        out.push(char::from(0x40 | (n & 0x3f) as u8));
        n >>= 6;
    }
    out.push(char::from(n as u8));
}

/// Reads what [`put_number`] wrote from the front of `text`.
fn take_number(text: &mut &str) -> Option<u64> {
    let mut n = 0u64;
    for (i, byte) in text.bytes().enumerate().take(11) {
        n |= u64::from(byte & 0x3f) << (6 * i);
        if byte & 0x40 == 0 {
            *text = text.get(i + 1..)?;
            return Some(n);
        }
    }
    None
}

#[cfg(test)]
mod tests;
