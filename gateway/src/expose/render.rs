//! Merging the store's families and the gateway's own into one exposition, from cached
//! pieces: each stored name's encoding per format and version, made of each group's run
//! (see [`runs`](super::runs)), and the groups' timestamps per times version.
//!
//! Order follows upstream's gatherer: families by name; within a family, fewer labels
//! first, then label values in label-name order. After pushes with the consistency check
//! disabled, whatever would make the exposition invalid is left out and counted instead of
//! failing the scrape: families of another type than the first group's, repeated series
//! (as the format writes their label names), series with a label name they may not have,
//! and names that clash with a summary's or histogram's own series. Such a store renders
//! each changed name whole, as runs cannot tell which of their series another run repeats.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use super::gzip::GzipCache;
use super::parallel::parallel_map;
use super::runs::{assemble, exact_bytes, sort_metrics, Ids, NameCache, Piece};
use super::{encode_family, Encoding, ScrapeFormat};
use crate::model::{is_unescaped, Metric, MetricFamily, MetricType, Series, Str, Value};
use crate::store::{
    escaped_series_id, is_misfit_label_name, series_id, GroupTimes, NameSnapshot, Snapshot, Store,
    StoredFamily, PUSH_FAILURE_TIME_HELP, PUSH_FAILURE_TIME_METRIC, PUSH_TIME_HELP,
    PUSH_TIME_METRIC,
};

/// A format nobody scraped for this long loses its cached encodings.
const IDLE_FORMAT_EVICTION: Duration = Duration::from_secs(15 * 60);

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
    /// The format rendered.
    pub format: ScrapeFormat,
    /// The exposition, in order.
    pub pieces: Vec<Piece>,
    /// Series left out because they contradicted others (only after unchecked pushes).
    pub dropped_series: u64,
}

impl RenderedChunks {
    /// The exposition's bytes, in order.
    pub fn into_chunks(self) -> Vec<Bytes> {
        self.pieces.into_iter().map(|p| p.bytes).collect()
    }
}

type TimesPieces = (u64, Piece, Piece);

/// Renders scrapes, caching each stored name's encoding per format (as runs per group)
/// and the gzip members of what it sent.
#[derive(Default)]
pub struct Renderer {
    names: Mutex<HashMap<ScrapeFormat, HashMap<Str, NameCache>>>,
    times: Mutex<HashMap<ScrapeFormat, TimesPieces>>,
    last_scraped: Mutex<HashMap<(ScrapeFormat, bool), Instant>>,
    ids: Ids,
    gzip: GzipCache,
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
        let dropped_series = rendered.dropped_series;
        let chunks = rendered.into_chunks();
        let mut body = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
        for chunk in &chunks {
            body.extend_from_slice(chunk);
        }
        Rendered {
            body,
            dropped_series,
        }
    }

    /// The rendered exposition as gzip members (one gzip stream), reusing the members of
    /// pieces compressed before.
    pub fn gzip(&self, rendered: &RenderedChunks) -> Vec<Bytes> {
        self.note_scrape(rendered.format, true);
        self.gzip.compress(rendered.format, &rendered.pieces)
    }

    /// Renders the whole exposition as a list of pieces.
    pub fn render_chunks(
        &self,
        store: &Store,
        own: &[MetricFamily],
        format: ScrapeFormat,
    ) -> RenderedChunks {
        self.note_scrape(format, false);
        let own_names: HashSet<&str> = own.iter().map(|f| &*f.name).collect();
        let mut cached_times = None;
        // The pieces of names the cache holds at the version the store has.
        let fresh: RefCell<HashMap<Str, Arc<[Piece]>>> = RefCell::default();
        let snapshot = {
            let names = self.names.lock();
            let cached = names.get(&format);
            store.snapshot(
                |name, version| {
                    let Some(entry) = cached
                        .and_then(|c| c.get(name))
                        .filter(|e| e.version == version)
                    else {
                        return false;
                    };
                    // Taken out now: a concurrent scrape may replace the entry meanwhile.
                    fresh
                        .borrow_mut()
                        .insert(Str::from(name), entry.pieces.clone());
                    true
                },
                |version| {
                    let times = self.times.lock();
                    cached_times = times
                        .get(&format)
                        .filter(|(v, _, _)| *v == version)
                        .map(|(_, push, failure)| (push.clone(), failure.clone()));
                    cached_times.is_some()
                },
            )
        };
        let mut fresh = fresh.into_inner();
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
        let mut shown: Vec<(&str, &Item)> = Vec::with_capacity(items.len());
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
                if clashes.contains(*name) {
                    dropped_series += 1;
                    continue;
                }
            }
            shown.push((name, item));
        }

        // Every changed name is encoded now, on all cores when there is much to do.
        let changed: Vec<&NameSnapshot> = shown
            .iter()
            .filter_map(|(_, item)| match item {
                Item::Stored(entry) if !entry.families.is_empty() => Some(*entry),
                _ => None,
            })
            .collect();
        let any_changed = !changed.is_empty();
        let rendered = self.render_names(format, changed, snapshot.maybe_inconsistent);

        let mut pieces: Vec<Piece> = Vec::with_capacity(items.len() + 1);
        for (name, item) in shown {
            match item {
                Item::Own(family) => pieces.push(Piece {
                    id: None,
                    bytes: Bytes::from(encode_own(format, family)),
                }),
                Item::Stored(_) => {
                    if let Some((name_pieces, dropped)) = rendered.get(name) {
                        pieces.extend(name_pieces.iter().cloned());
                        dropped_series += dropped;
                    } else if let Some(name_pieces) = fresh.remove(name) {
                        pieces.extend(name_pieces.iter().cloned());
                    }
                }
                Item::PushTimes => pieces.extend(times.as_ref().map(|t| t.0.clone())),
                Item::FailureTimes => pieces.extend(times.as_ref().map(|t| t.1.clone())),
            }
        }
        if format.encoding == Encoding::OpenMetrics {
            pieces.push(Piece {
                id: None,
                bytes: Bytes::from_static(b"# EOF\n"),
            });
        }
        self.evict_missing(format, &snapshot, any_changed);
        RenderedChunks {
            format,
            pieces,
            dropped_series,
        }
    }

    /// Encodes the changed names and caches them; returns each one's pieces and drops.
    fn render_names<'a>(
        &self,
        format: ScrapeFormat,
        changed: Vec<&'a NameSnapshot>,
        maybe_inconsistent: bool,
    ) -> HashMap<&'a str, (Arc<[Piece]>, u64)> {
        let cached_runs: Vec<_> = {
            let names = self.names.lock();
            let cached = names.get(&format);
            changed
                .iter()
                .map(|entry| {
                    cached
                        .and_then(|c| c.get(&entry.name))
                        .map(|c| c.runs.clone())
                        .unwrap_or_default()
                })
                .collect()
        };
        let work: Vec<_> = changed.into_iter().zip(cached_runs).collect();
        let results = parallel_map(
            work,
            |(entry, _)| series_count(entry),
            |(entry, runs)| {
                if maybe_inconsistent {
                    let (cache, dropped) = self.render_whole(format, entry);
                    (entry, cache, dropped)
                } else {
                    (entry, assemble(format, entry, &runs, &self.ids), 0)
                }
            },
        );
        let mut names = self.names.lock();
        let cached = names.entry(format).or_default();
        let mut out = HashMap::with_capacity(results.len());
        for (entry, cache, dropped) in results {
            out.insert(&*entry.name, (cache.pieces.clone(), dropped));
            // A render that dropped series is not cached, so the drop is counted every
            // scrape; nor is one older than what a concurrent scrape cached meanwhile.
            let newer = cached
                .get(&entry.name)
                .is_some_and(|c| c.version > cache.version);
            if dropped == 0 && !newer {
                cached.insert(entry.name.clone(), cache);
            }
        }
        out
    }

    /// A name rendered whole, for a store that unchecked pushes may have made
    /// inconsistent: the series that do not fit are left out and counted.
    fn render_whole(&self, format: ScrapeFormat, entry: &NameSnapshot) -> (NameCache, u64) {
        // Upstream takes the help of one of the groups when they disagree: ours is the
        // first group's in grouping-key order, so it is at least stable.
        let help = entry.families.first().and_then(|f| f.help.as_deref());
        let (mut metrics, dropped) = consistent_metrics(&entry.families, entry.metric_type, format);
        sort_metrics(&mut metrics);
        let bytes = encode_family(format, &entry.name, help, entry.metric_type, &metrics);
        let pieces = if bytes.is_empty() {
            Vec::new()
        } else {
            vec![Piece {
                id: Some(self.ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
                bytes: exact_bytes(bytes),
            }]
        };
        let cache = NameCache {
            version: entry.version,
            pieces: pieces.into(),
            runs: HashMap::new(),
        };
        (cache, dropped)
    }

    /// Encodes both timestamp families and caches them by the store's times version.
    fn encode_and_cache_times(&self, format: ScrapeFormat, snapshot: &Snapshot) -> (Piece, Piece) {
        let piece = |bytes: Vec<u8>| Piece {
            id: Some(self.ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
            bytes: exact_bytes(bytes),
        };
        let push = piece(encode_times(
            format,
            &snapshot.times,
            PUSH_TIME_METRIC,
            PUSH_TIME_HELP,
            |t| t.push_time,
        ));
        let failure = piece(encode_times(
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

    /// Drops the cached names (with their runs) that the store no longer has: looked for
    /// when a name changed, or when the cache holds more names than the store.
    fn evict_missing(&self, format: ScrapeFormat, snapshot: &Snapshot, any_changed: bool) {
        let mut names = self.names.lock();
        if let Some(cached) = names.get_mut(&format) {
            if any_changed || cached.len() > snapshot.names.len() {
                let present: HashSet<&str> = snapshot.names.iter().map(|n| &*n.name).collect();
                cached.retain(|name, _| present.contains(&**name));
            }
        }
    }

    /// Notes a scrape of `format` (compressed or not), and drops the caches of formats
    /// nobody scraped for [`IDLE_FORMAT_EVICTION`]: one odd scrape must not keep a second
    /// copy of the exposition for good.
    fn note_scrape(&self, format: ScrapeFormat, gzip: bool) {
        let now = Instant::now();
        let mut last = self.last_scraped.lock();
        last.insert((format, gzip), now);
        let idle = |key: &(ScrapeFormat, bool)| {
            last.get(key)
                .is_none_or(|t| now.duration_since(*t) >= IDLE_FORMAT_EVICTION)
        };
        let stale: Vec<(ScrapeFormat, bool)> = last.keys().copied().filter(|k| idle(k)).collect();
        if stale.is_empty() {
            return;
        }
        for key in &stale {
            last.remove(key);
        }
        let plain_idle = |format: ScrapeFormat| !last.contains_key(&(format, false));
        self.names.lock().retain(|format, _| !plain_idle(*format));
        self.times.lock().retain(|format, _| !plain_idle(*format));
        self.gzip
            .retain(|format| last.contains_key(&(format, true)));
    }
}

/// The number of series of a name's families in a snapshot.
fn series_count(entry: &NameSnapshot) -> usize {
    entry.families.iter().map(|f| f.len()).sum()
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
/// series as `format` writes them (label names escaped), nor a label twice in one, nor an
/// empty or reserved label name or the label the type's samples carry. Only after
/// unchecked pushes can anything be left out.
fn consistent_metrics(
    families: &[Arc<StoredFamily>],
    metric_type: MetricType,
    format: ScrapeFormat,
) -> (Vec<Series<'_>>, u64) {
    let mut metrics = Vec::new();
    let mut dropped = 0;
    let mut seen = HashSet::new();
    let sample_label = metric_type.sample_label();
    for stored in families {
        let family = &**stored;
        // A series whose names are all classic is written as it is stored.
        let escaped = !format.utf8_names() && family.label_names().any(|n| !is_unescaped(n, true));
        for series in stored.series() {
            let fits = family.metric_type == metric_type
                && series.value().fits(metric_type)
                && series
                    .labels()
                    .all(|l| !is_misfit_label_name(l.name, sample_label));
            let id = if escaped {
                escaped_series_id(&family.name, series.labels(), |n| {
                    super::exposed_name(format, n, true)
                })
            } else {
                Some(series_id(&family.name, series.labels()))
            };
            if fits && id.is_some_and(|id| seen.insert(id)) {
                metrics.push(series);
            } else {
                dropped += 1;
            }
        }
    }
    (metrics, dropped)
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

#[cfg(test)]
mod tests;
