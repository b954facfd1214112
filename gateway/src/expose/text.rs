//! Text format 0.0.4 encoding with a per-name cache.
//!
//! ```
//! use gateway::expose::text::write_family;
//! use gateway::model::*;
//! let family = MetricFamily {
//!     name: "jobs".into(), help: Some("Jobs run.".into()), metric_type: MetricType::Counter,
//!     metrics: vec![Metric { labels: vec![Label::new("job", "a")], value: Value::Counter(1e6), timestamp_ms: None }],
//! };
//! let mut out = String::new();
//! write_family(&mut out, &family.name, family.help.as_deref(), family.metric_type, &family.metrics.iter().collect::<Vec<_>>());
//! assert_eq!(out, "# HELP jobs Jobs run.\n# TYPE jobs counter\njobs{job=\"a\"} 1e+06\n");
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::model::{
    is_legacy_label_name, is_legacy_metric_name, Label, Metric, MetricFamily, MetricType, Str,
    Value, BUCKET_LABEL, INSTANCE_LABEL, QUANTILE_LABEL,
};
use crate::store::{
    series_id, GroupTimes, NameSnapshot, Snapshot, Store, PUSH_FAILURE_TIME_HELP,
    PUSH_FAILURE_TIME_METRIC, PUSH_TIME_HELP, PUSH_TIME_METRIC,
};

use super::number::write_float;

/// The result of one render.
#[derive(Debug)]
pub struct Rendered {
    /// The exposition body.
    pub body: Vec<u8>,
    /// Series left out because they contradicted others (only after unchecked pushes).
    pub dropped_series: u64,
}

/// Renders scrapes, caching each metric name's text by its store version.
#[derive(Default)]
pub struct TextRenderer {
    cache: Mutex<HashMap<Str, (u64, Bytes)>>,
    times: Mutex<Option<(u64, Bytes, Bytes)>>,
}

/// One entry of the merged, name-ordered exposition.
enum Item<'a> {
    Own(&'a MetricFamily),
    Stored(&'a NameSnapshot),
    PushTimes,
    FailureTimes,
}

impl TextRenderer {
    /// A renderer with an empty cache.
    pub fn new() -> TextRenderer {
        TextRenderer::default()
    }

    /// Renders the whole exposition: the store's families and the gateway's own.
    pub fn render(&self, store: &Store, own: &[MetricFamily]) -> Rendered {
        let own_names: HashSet<&str> = own.iter().map(|f| &*f.name).collect();
        let snapshot = {
            let cache = self.cache.lock();
            store.snapshot(|name, version| {
                !own_names.contains(name) && cache.get(name).is_some_and(|(v, _)| *v == version)
            })
        };
        let mut dropped_series = 0;
        let mut items: BTreeMap<&str, Item> = BTreeMap::new();
        for family in own {
            items.insert(&family.name, Item::Own(family));
        }
        for name in &snapshot.names {
            // Only unchecked pushes can store one of our own names; ours wins.
            if own_names.contains(&*name.name) {
                dropped_series += name
                    .families
                    .iter()
                    .map(|f| f.family.metrics.len() as u64)
                    .sum::<u64>();
                continue;
            }
            items.insert(&name.name, Item::Stored(name));
        }
        if !snapshot.times.is_empty() {
            items.insert(PUSH_TIME_METRIC, Item::PushTimes);
            items.insert(PUSH_FAILURE_TIME_METRIC, Item::FailureTimes);
        }
        let suffix_clashes = if snapshot.maybe_inconsistent {
            suffix_clashes(&snapshot)
        } else {
            HashSet::new()
        };

        let mut chunks: Vec<Bytes> = Vec::with_capacity(items.len());
        for (name, item) in &items {
            let chunk = match item {
                Item::Own(family) => Bytes::from(encode_family(family)),
                Item::Stored(_) if suffix_clashes.contains(*name) => {
                    dropped_series += 1;
                    continue;
                }
                Item::Stored(entry) => {
                    let (chunk, dropped) = self.stored_chunk(entry, snapshot.maybe_inconsistent);
                    dropped_series += dropped;
                    chunk
                }
                Item::PushTimes => self.times_chunks(&snapshot).0,
                Item::FailureTimes => self.times_chunks(&snapshot).1,
            };
            chunks.push(chunk);
        }
        self.evict_missing(&snapshot);
        let mut body = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
        for chunk in chunks {
            body.extend_from_slice(&chunk);
        }
        Rendered {
            body,
            dropped_series,
        }
    }

    /// The cached text of a stored name, rendered now if the cache is stale.
    fn stored_chunk(&self, entry: &NameSnapshot, maybe_inconsistent: bool) -> (Bytes, u64) {
        if entry.families.is_empty() {
            if let Some((_, chunk)) = self.cache.lock().get(&entry.name) {
                return (chunk.clone(), 0);
            }
        }
        let Some(first) = entry.families.first() else {
            return (Bytes::new(), 0);
        };
        let families: Vec<&MetricFamily> = entry.families.iter().map(|f| &f.family).collect();
        let (mut metrics, dropped) =
            consistent_metrics(&families, entry.metric_type, maybe_inconsistent);
        sort_metrics(&mut metrics);
        let mut out = String::new();
        write_family(
            &mut out,
            &entry.name,
            first.family.help.as_deref(),
            entry.metric_type,
            &metrics,
        );
        let chunk = Bytes::from(out);
        // A render with dropped series is not cached, so the drop is counted every scrape.
        if dropped == 0 {
            self.cache
                .lock()
                .insert(entry.name.clone(), (entry.version, chunk.clone()));
        }
        (chunk, dropped)
    }

    fn times_chunks(&self, snapshot: &Snapshot) -> (Bytes, Bytes) {
        let mut cached = self.times.lock();
        if let Some((version, push, failure)) = &*cached {
            if *version == snapshot.times_version {
                return (push.clone(), failure.clone());
            }
        }
        let push = Bytes::from(encode_times(
            &snapshot.times,
            PUSH_TIME_METRIC,
            PUSH_TIME_HELP,
            |t| t.push_time,
        ));
        let failure = Bytes::from(encode_times(
            &snapshot.times,
            PUSH_FAILURE_TIME_METRIC,
            PUSH_FAILURE_TIME_HELP,
            |t| t.failure_time,
        ));
        *cached = Some((snapshot.times_version, push.clone(), failure.clone()));
        (push, failure)
    }

    fn evict_missing(&self, snapshot: &Snapshot) {
        let mut cache = self.cache.lock();
        if cache.len() > snapshot.names.len() {
            let present: HashSet<&str> = snapshot.names.iter().map(|n| &*n.name).collect();
            cache.retain(|name, _| present.contains(&**name));
        }
    }
}

/// Names that collide with the `_count`/`_sum`/`_bucket` series of a stored summary or
/// histogram; only unchecked pushes can store such a pair, and the later name is left out.
fn suffix_clashes(snapshot: &Snapshot) -> HashSet<String> {
    let types: HashMap<&str, MetricType> = snapshot
        .names
        .iter()
        .map(|n| (&*n.name, n.metric_type))
        .collect();
    let mut clashes = HashSet::new();
    for name in types.keys() {
        for (suffix, summary_too) in [("_count", true), ("_sum", true), ("_bucket", false)] {
            if let Some(base) = name.strip_suffix(suffix) {
                match types.get(base) {
                    Some(MetricType::Summary) if summary_too => {
                        clashes.insert(name.to_string());
                    }
                    Some(t) if t.is_histogram_like() => {
                        clashes.insert(name.to_string());
                    }
                    _ => {}
                }
            }
        }
    }
    clashes
}

/// The metrics of all families of one name that fit the exposed type, without duplicate
/// series. Only after unchecked pushes can anything be left out.
fn consistent_metrics<'a>(
    families: &[&'a MetricFamily],
    metric_type: MetricType,
    maybe_inconsistent: bool,
) -> (Vec<&'a Metric>, u64) {
    let mut metrics = Vec::new();
    let mut dropped = 0;
    if !maybe_inconsistent {
        for family in families {
            metrics.extend(family.metrics.iter());
        }
        return (metrics, 0);
    }
    let mut seen = HashSet::new();
    for family in families {
        for metric in &family.metrics {
            let fits = family.metric_type == metric_type && metric.value.fits(metric_type);
            if fits && seen.insert(series_id(&family.name, &metric.labels)) {
                metrics.push(metric);
            } else {
                dropped += 1;
            }
        }
    }
    (metrics, dropped)
}

/// Upstream's order: fewer labels first, then label values in label-name order.
fn sort_metrics(metrics: &mut [&Metric]) {
    metrics.sort_by(|a, b| {
        a.labels.len().cmp(&b.labels.len()).then_with(|| {
            a.labels
                .iter()
                .zip(&b.labels)
                .map(|(x, y)| x.value.cmp(&y.value))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    });
}

fn encode_family(family: &MetricFamily) -> String {
    let mut metrics: Vec<&Metric> = family.metrics.iter().collect();
    sort_metrics(&mut metrics);
    let mut out = String::new();
    write_family(
        &mut out,
        &family.name,
        family.help.as_deref(),
        family.metric_type,
        &metrics,
    );
    out
}

fn encode_times(
    times: &[GroupTimes],
    name: &str,
    help: &str,
    value: impl Fn(&GroupTimes) -> f64,
) -> String {
    let instance: Str = INSTANCE_LABEL.into();
    let metrics: Vec<Metric> = times
        .iter()
        .map(|t| {
            let mut labels = t.key.labels().to_vec();
            if !labels.iter().any(|l| l.name == instance) {
                labels.push(Label::new(instance.clone(), ""));
                labels.sort_by(|a, b| a.name.cmp(&b.name));
            }
            Metric {
                labels,
                value: Value::Gauge(value(t)),
                timestamp_ms: None,
            }
        })
        .collect();
    let mut refs: Vec<&Metric> = metrics.iter().collect();
    sort_metrics(&mut refs);
    // Two groups can share timestamp labels only after unchecked pushes; keep the first.
    refs.dedup_by(|a, b| a.labels == b.labels);
    let mut out = String::new();
    write_family(&mut out, name, Some(help), MetricType::Gauge, &refs);
    out
}

/// Writes one family: `# HELP` (if any), `# TYPE`, then its samples.
pub fn write_family(
    out: &mut String,
    name: &str,
    help: Option<&str>,
    metric_type: MetricType,
    metrics: &[&Metric],
) {
    if metrics.is_empty() {
        return;
    }
    if let Some(help) = help {
        out.push_str("# HELP ");
        write_name(out, name);
        out.push(' ');
        escape_into(out, help, false);
        out.push('\n');
    }
    out.push_str("# TYPE ");
    write_name(out, name);
    out.push(' ');
    out.push_str(metric_type.as_str());
    out.push('\n');
    for metric in metrics {
        write_metric(out, name, metric);
    }
}

fn write_metric(out: &mut String, name: &str, metric: &Metric) {
    match &metric.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
            write_sample(out, name, "", &metric.labels, None, *v)
        }
        Value::Summary(summary) => {
            for q in &summary.quantiles {
                write_sample(
                    out,
                    name,
                    "",
                    &metric.labels,
                    Some((QUANTILE_LABEL, q.quantile)),
                    q.value,
                );
            }
            write_sample(out, name, "_sum", &metric.labels, None, summary.sum);
            write_sample(
                out,
                name,
                "_count",
                &metric.labels,
                None,
                summary.count as f64,
            );
        }
        Value::Histogram(histogram) => {
            let mut saw_infinity = false;
            for bucket in &histogram.buckets {
                write_sample(
                    out,
                    name,
                    "_bucket",
                    &metric.labels,
                    Some((BUCKET_LABEL, bucket.upper_bound)),
                    bucket.count,
                );
                saw_infinity |= bucket.upper_bound == f64::INFINITY;
            }
            // Upstream adds the +Inf bucket when it was not pushed.
            if !saw_infinity {
                write_sample(
                    out,
                    name,
                    "_bucket",
                    &metric.labels,
                    Some((BUCKET_LABEL, f64::INFINITY)),
                    histogram.count,
                );
            }
            write_sample(out, name, "_sum", &metric.labels, None, histogram.sum);
            write_sample(out, name, "_count", &metric.labels, None, histogram.count);
        }
    }
}

fn write_sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[Label],
    extra: Option<(&str, f64)>,
    value: f64,
) {
    let full_name_owned;
    let full_name = if suffix.is_empty() {
        name
    } else {
        full_name_owned = format!("{name}{suffix}");
        &full_name_owned
    };
    let quoted_name = !is_legacy_metric_name(full_name);
    let mut first = true;
    if quoted_name {
        out.push_str("{\"");
        escape_into(out, full_name, true);
        out.push('"');
        first = false;
    } else {
        out.push_str(full_name);
        if !labels.is_empty() || extra.is_some() {
            out.push('{');
        }
    }
    for label in labels {
        if !first {
            out.push(',');
        }
        first = false;
        write_label_name(out, &label.name);
        out.push_str("=\"");
        escape_into(out, &label.value, true);
        out.push('"');
    }
    if let Some((label, bound)) = extra {
        if !first {
            out.push(',');
        }
        out.push_str(label);
        out.push_str("=\"");
        write_float(out, bound);
        out.push('"');
    }
    if quoted_name || !labels.is_empty() || extra.is_some() {
        out.push('}');
    }
    out.push(' ');
    write_float(out, value);
    out.push('\n');
}

fn write_name(out: &mut String, name: &str) {
    if is_legacy_metric_name(name) {
        out.push_str(name);
    } else {
        out.push('"');
        escape_into(out, name, true);
        out.push('"');
    }
}

fn write_label_name(out: &mut String, name: &str) {
    if is_legacy_label_name(name) {
        out.push_str(name);
    } else {
        out.push('"');
        escape_into(out, name, true);
        out.push('"');
    }
}

/// Escapes `\` and newline, and `"` too inside quotes (label values, quoted names).
fn escape_into(out: &mut String, text: &str, quotes: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            other => out.push(other),
        }
    }
}
