//! Merging the store's families and the gateway's own into one exposition, with a cache of
//! each name's encoded bytes per format and store version.
//!
//! Order follows upstream's gatherer: families by name; within a family, fewer labels
//! first, then label values in label-name order. After pushes with the consistency check
//! disabled, whatever would make the exposition invalid is left out and counted instead of
//! failing the scrape: families of another type than the first group's, repeated series,
//! and names that clash with a summary's or histogram's own series.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{encode_family, Encoding, ScrapeFormat};
use crate::model::{Metric, MetricFamily, MetricType, Series, Str, Value};
use crate::store::{
    series_id, GroupTimes, NameSnapshot, Snapshot, Store, StoredFamily, PUSH_FAILURE_TIME_HELP,
    PUSH_FAILURE_TIME_METRIC, PUSH_TIME_HELP, PUSH_TIME_METRIC,
};

/// The result of one render.
#[derive(Debug)]
pub struct Rendered {
    /// The exposition body.
    pub body: Vec<u8>,
    /// Series left out because they contradicted others (only after unchecked pushes).
    pub dropped_series: u64,
}

/// The result of one render as the cached pieces it is made of, to be sent without
/// copying them into one buffer (a copy that, at a million series, is tens of megabytes
/// the allocator tends to keep).
#[derive(Debug)]
pub struct RenderedChunks {
    /// The exposition, in order.
    pub chunks: Vec<Bytes>,
    /// Series left out because they contradicted others (only after unchecked pushes).
    pub dropped_series: u64,
}

type TimesChunks = (u64, Bytes, Bytes);

/// Renders scrapes, caching each metric name's encoding by format and store version.
#[derive(Default)]
pub struct Renderer {
    cache: Mutex<HashMap<(ScrapeFormat, Str), (u64, Bytes)>>,
    times: Mutex<HashMap<ScrapeFormat, TimesChunks>>,
}

/// One entry of the merged, name-ordered exposition.
enum Item<'a> {
    Own(&'a MetricFamily),
    Stored(&'a NameSnapshot),
    PushTimes,
    FailureTimes,
}

impl Renderer {
    /// A renderer with an empty cache.
    pub fn new() -> Renderer {
        Renderer::default()
    }

    /// Renders the whole exposition in `format`: the store's families and the gateway's own.
    pub fn render(&self, store: &Store, own: &[MetricFamily], format: ScrapeFormat) -> Rendered {
        let rendered = self.render_chunks(store, own, format);
        let mut body = Vec::with_capacity(rendered.chunks.iter().map(Bytes::len).sum());
        for chunk in &rendered.chunks {
            body.extend_from_slice(chunk);
        }
        Rendered {
            body,
            dropped_series: rendered.dropped_series,
        }
    }

    /// Renders the whole exposition as a list of pieces.
    pub fn render_chunks(
        &self,
        store: &Store,
        own: &[MetricFamily],
        format: ScrapeFormat,
    ) -> RenderedChunks {
        let own_names: HashSet<&str> = own.iter().map(|f| &*f.name).collect();
        let mut cached_times = None;
        let snapshot = {
            let cache = self.cache.lock();
            store.snapshot(
                |name, version| {
                    cache
                        .get(&(format, Str::from(name)))
                        .is_some_and(|(v, _)| *v == version)
                },
                |version| {
                    // Taken out now: a concurrent scrape may replace the entry meanwhile.
                    let times = self.times.lock();
                    cached_times = times
                        .get(&format)
                        .filter(|(v, _, _)| *v == version)
                        .map(|(_, push, failure)| (push.clone(), failure.clone()));
                    cached_times.is_some()
                },
            )
        };
        let mut dropped_series = 0;
        let mut items: BTreeMap<&str, Item> = BTreeMap::new();
        for family in own {
            items.insert(&family.name, Item::Own(family));
        }
        for name in &snapshot.names {
            // Only unchecked pushes can store one of our own names; ours wins.
            if own_names.contains(&*name.name) {
                dropped_series += name.families.iter().map(|f| f.len() as u64).sum::<u64>();
                continue;
            }
            items.insert(&name.name, Item::Stored(name));
        }
        let times = (snapshot.groups > 0).then(|| {
            items.insert(PUSH_TIME_METRIC, Item::PushTimes);
            items.insert(PUSH_FAILURE_TIME_METRIC, Item::FailureTimes);
            cached_times
                .take()
                .unwrap_or_else(|| self.encode_and_cache_times(format, &snapshot))
        });
        let clashes = if snapshot.maybe_inconsistent {
            suffix_clashes(&snapshot)
        } else {
            HashSet::new()
        };

        let mut chunks: Vec<Bytes> = Vec::with_capacity(items.len() + 1);
        // Escaped names can coincide (`a.b` and `a_b` both become `a_b`, `a.bucket` and a
        // histogram `a`'s buckets both `a_bucket`); the first family keeps its sample names,
        // later ones that would reuse any of them are left out, so the exposition stays
        // valid. The gateway's own names are taken first.
        let mut exposed: HashSet<String> = HashSet::new();
        for (name, item) in &items {
            match item {
                Item::Own(family) => exposed.extend(sample_names(format, name, family.metric_type)),
                Item::PushTimes | Item::FailureTimes => {
                    exposed.insert(name.to_string());
                }
                Item::Stored(_) => {}
            }
        }
        for (name, item) in &items {
            if let Item::Stored(entry) = item {
                // OpenMetrics declares a counter `x_total` as family `x`, which may be
                // another family's name even with UTF-8 names.
                let checked = !format.utf8_names() || format.encoding == Encoding::OpenMetrics;
                let taken = checked && {
                    let escaped = super::exposed_name(format, name, false);
                    let names = sample_names(format, &escaped, entry.metric_type);
                    let taken = names.iter().any(|n| exposed.contains(n));
                    if !taken {
                        exposed.extend(names);
                    }
                    taken
                };
                if taken {
                    dropped_series += entry
                        .families
                        .iter()
                        .map(|f| f.len() as u64)
                        .sum::<u64>()
                        .max(1);
                    continue;
                }
            }
            let chunk = match item {
                Item::Own(family) => Bytes::from(encode_own(format, family)),
                Item::Stored(_) if clashes.contains(*name) => {
                    dropped_series += 1;
                    continue;
                }
                Item::Stored(entry) => {
                    let (chunk, dropped) =
                        self.stored_chunk(format, entry, snapshot.maybe_inconsistent);
                    dropped_series += dropped;
                    chunk
                }
                Item::PushTimes => times.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
                Item::FailureTimes => times.as_ref().map(|t| t.1.clone()).unwrap_or_default(),
            };
            chunks.push(chunk);
        }
        if format.encoding == Encoding::OpenMetrics {
            chunks.push(Bytes::from_static(b"# EOF\n"));
        }
        self.evict_missing(&snapshot);
        RenderedChunks {
            chunks,
            dropped_series,
        }
    }

    /// The cached encoding of a stored name, encoded now if the cache is stale.
    fn stored_chunk(
        &self,
        format: ScrapeFormat,
        entry: &NameSnapshot,
        maybe_inconsistent: bool,
    ) -> (Bytes, u64) {
        let key = (format, entry.name.clone());
        if entry.families.is_empty() {
            if let Some((_, chunk)) = self.cache.lock().get(&key) {
                return (chunk.clone(), 0);
            }
        }
        // Upstream takes the help of one of the groups when they disagree: ours is the
        // first group's in grouping-key order, so it is at least stable.
        let help = entry.families.first().and_then(|f| f.help.as_deref());
        let (mut metrics, dropped) =
            consistent_metrics(&entry.families, entry.metric_type, maybe_inconsistent);
        sort_metrics(&mut metrics);
        let chunk = Bytes::from(encode_family(
            format,
            &entry.name,
            help,
            entry.metric_type,
            &metrics,
        ));
        // A render that dropped series is not cached, so the drop is counted every scrape.
        if dropped == 0 {
            self.cache
                .lock()
                .insert(key, (entry.version, chunk.clone()));
        }
        (chunk, dropped)
    }

    /// Encodes both timestamp families and caches them by the store's times version.
    fn encode_and_cache_times(&self, format: ScrapeFormat, snapshot: &Snapshot) -> (Bytes, Bytes) {
        let push = Bytes::from(encode_times(
            format,
            &snapshot.times,
            PUSH_TIME_METRIC,
            PUSH_TIME_HELP,
            |t| t.push_time,
        ));
        let failure = Bytes::from(encode_times(
            format,
            &snapshot.times,
            PUSH_FAILURE_TIME_METRIC,
            PUSH_FAILURE_TIME_HELP,
            |t| t.failure_time,
        ));
        self.times.lock().insert(
            format,
            (snapshot.times_version, push.clone(), failure.clone()),
        );
        (push, failure)
    }

    fn evict_missing(&self, snapshot: &Snapshot) {
        let mut cache = self.cache.lock();
        if cache.len() > 3 * snapshot.names.len() {
            let present: HashSet<&str> = snapshot.names.iter().map(|n| &*n.name).collect();
            cache.retain(|(_, name), _| present.contains(&**name));
        }
    }
}

/// Every sample name a family of `name` and `metric_type` is exposed with in `format`.
fn sample_names(format: ScrapeFormat, name: &str, metric_type: MetricType) -> Vec<String> {
    let suffixes: &[&str] = match metric_type {
        MetricType::Summary => &["", "_sum", "_count"],
        MetricType::GaugeHistogram if format.encoding == Encoding::OpenMetrics => {
            &["", "_bucket", "_gsum", "_gcount"]
        }
        MetricType::Histogram | MetricType::GaugeHistogram => &["", "_bucket", "_sum", "_count"],
        _ => &[""],
    };
    let mut names: Vec<String> = suffixes.iter().map(|s| format!("{name}{s}")).collect();
    // OpenMetrics declares a counter `x_total` as the family `x`: that name is taken too.
    if format.encoding == Encoding::OpenMetrics && metric_type == MetricType::Counter {
        if let Some(base) = name.strip_suffix("_total") {
            names.push(base.to_string());
        }
    }
    names
}

/// Names that collide with the `_count`/`_sum`/`_bucket` series of a stored summary or
/// histogram; only unchecked pushes can store such a pair, and the derived-looking name is
/// left out.
fn suffix_clashes(snapshot: &Snapshot) -> HashSet<String> {
    let types: HashMap<&str, MetricType> = snapshot
        .names
        .iter()
        .map(|n| (&*n.name, n.metric_type))
        .collect();
    let mut clashes = HashSet::new();
    for name in types.keys() {
        for (suffix, summary_too) in [("_count", true), ("_sum", true), ("_bucket", false)] {
            let Some(base) = name.strip_suffix(suffix) else {
                continue;
            };
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
    clashes
}

/// The metrics of all families of one name that fit the exposed type, without repeated
/// series. Only after unchecked pushes can anything be left out.
fn consistent_metrics(
    families: &[Arc<StoredFamily>],
    metric_type: MetricType,
    maybe_inconsistent: bool,
) -> (Vec<Series<'_>>, u64) {
    let mut metrics = Vec::new();
    if !maybe_inconsistent {
        metrics.reserve_exact(families.iter().map(|f| f.len()).sum());
        for family in families {
            metrics.extend(family.series());
        }
        return (metrics, 0);
    }
    let mut dropped = 0;
    let mut seen = HashSet::new();
    for stored in families {
        let family = &**stored;
        for series in stored.series() {
            let fits = family.metric_type == metric_type
                && series.value().fits(metric_type)
                && series.labels().all(|l| !l.name.is_empty());
            if fits && seen.insert(series_id(&family.name, series.labels())) {
                metrics.push(series);
            } else {
                dropped += 1;
            }
        }
    }
    (metrics, dropped)
}

/// Upstream's order: fewer labels first, then label values in label-name order.
pub fn sort_metrics(metrics: &mut [Series<'_>]) {
    metrics.sort_by(|a, b| a.labels().cmp_for_exposition(&b.labels()));
}

fn encode_own(format: ScrapeFormat, family: &MetricFamily) -> Vec<u8> {
    let mut metrics: Vec<Series> = family.metrics.iter().map(Series::alone).collect();
    sort_metrics(&mut metrics);
    encode_family(
        format,
        &family.name,
        family.help.as_deref(),
        family.metric_type,
        &metrics,
    )
}

fn encode_times(
    format: ScrapeFormat,
    times: &[GroupTimes],
    name: &str,
    help: &str,
    value: impl Fn(&GroupTimes) -> f64,
) -> Vec<u8> {
    // Each group's series has exactly the group's labels (with `instance=""` if unset).
    let metrics: Vec<Metric> = times
        .iter()
        .map(|t| Metric::new(Vec::new(), Value::Gauge(value(t))))
        .collect();
    let mut series: Vec<Series> = metrics
        .iter()
        .zip(times)
        .map(|(metric, t)| Series::new(metric, &t.key))
        .collect();
    sort_metrics(&mut series);
    // Two groups can share timestamp labels only after unchecked pushes; keep the first.
    series.dedup_by(|a, b| a.labels().eq(b.labels()));
    encode_family(format, name, Some(help), MetricType::Gauge, &series)
}
