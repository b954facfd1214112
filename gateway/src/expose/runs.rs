//! One stored metric name's encoding as cached runs: each group's family is encoded on
//! its own (a "run", its series sorted) and kept until that family changes, so that a push
//! re-encodes only its own group's run and a scrape puts cached bytes side by side.
//!
//! Upstream orders a name's series across all groups at once (fewer labels first, then
//! label values in label-name order). Runs sorted by their first series can simply follow
//! one another when none starts before the previous one ends, which is the usual case when
//! the grouping labels sort before the series' own. Runs that do interleave are merged
//! series by series (a k-way merge, O(n log k)) into one piece, cached for the name's
//! version only.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Weak};

use bytes::Bytes;

use super::parallel::parallel_map;
use super::{encode_family_header, encode_metrics, ScrapeFormat};
use crate::model::{GroupingKey, MetricType, Series};
use crate::store::{NameSnapshot, StoredFamily};

/// A piece of a rendered exposition. `id` names its bytes for the gzip cache: a piece is
/// never given an id another piece had, and `None` means it is not worth caching.
#[derive(Debug, Clone)]
pub struct Piece {
    /// Identity of these bytes, for caching their compressed form.
    pub id: Option<u64>,
    /// The encoded bytes.
    pub bytes: Bytes,
}

/// The cached encoding of one name in one format.
#[derive(Default)]
pub(super) struct NameCache {
    /// The name's version the pieces are for.
    pub(super) version: u64,
    /// The whole encoding of the name at `version`, header first (shared: a scrape takes
    /// it while it holds the store's lock).
    pub(super) pieces: Arc<[Piece]>,
    /// Each group's run, while its family stays the same.
    pub(super) runs: HashMap<Arc<GroupingKey>, Arc<Run>>,
}

/// One group's family of the name, encoded with its series sorted.
pub(super) struct Run {
    /// The family it encodes. A weak handle keeps the allocation from being reused, so an
    /// equal address means the very same, unchanged family: the store never changes a
    /// family another handle refers to (`Arc::make_mut` moves it away from weak handles).
    family: Weak<StoredFamily>,
    /// Where its first and last series in exposition order are among the family's series
    /// (indices rather than copies: a run costs a few words whatever its labels).
    first: u32,
    last: u32,
    /// Its encoding, when it was needed (a run merged with others has none of its own).
    encoded: Option<Piece>,
}

impl Run {
    fn encodes(&self, family: &Arc<StoredFamily>) -> bool {
        std::ptr::eq(self.family.as_ptr(), Arc::as_ptr(family))
    }
}

/// Hands out piece ids.
pub(super) type Ids = std::sync::atomic::AtomicU64;

fn next_id(ids: &Ids) -> u64 {
    ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Upstream's order: fewer labels first, then label values in label-name order.
pub fn sort_metrics(metrics: &mut [Series<'_>]) {
    metrics.sort_by(cmp_series);
}

fn cmp_series(a: &Series<'_>, b: &Series<'_>) -> Ordering {
    a.labels().cmp_for_exposition(&b.labels())
}

/// A run being assembled: cached, or sorted just now.
struct Slot<'a> {
    /// Position of its family in grouping-key order (ties in the order go by it).
    position: usize,
    family: &'a Arc<StoredFamily>,
    run: Arc<Run>,
    /// Its first and last series in exposition order.
    first: Series<'a>,
    last: Series<'a>,
    /// Its series sorted, if they were sorted for this assembly.
    sorted: Option<Vec<Series<'a>>>,
}

/// The name's pieces (header first) for a consistent store, reusing `cache`'s runs of
/// unchanged families. Returns the pieces and the cache to keep for the name.
pub(super) fn assemble(
    format: ScrapeFormat,
    entry: &NameSnapshot,
    cached_runs: &HashMap<Arc<GroupingKey>, Arc<Run>>,
    ids: &Ids,
) -> NameCache {
    let mut slots: Vec<Slot> = Vec::with_capacity(entry.families.len());
    let mut stale = Vec::new();
    for (position, family) in entry.families.iter().enumerate() {
        let cached = cached_runs.get(&family.group).filter(|r| r.encodes(family));
        let boundaries = cached.and_then(|run| {
            let first = family.series().nth(run.first as usize)?;
            let last = family.series().nth(run.last as usize)?;
            Some((run.clone(), first, last))
        });
        match boundaries {
            Some((run, first, last)) => slots.push(Slot {
                position,
                family,
                run,
                first,
                last,
                sorted: None,
            }),
            None => stale.push((position, family)),
        }
    }
    // Sort the changed families' series (on every core when there are many).
    let sorted = parallel_map(
        stale,
        |(_, family)| family.len(),
        |(position, family)| (position, family, sorted_run(family)),
    );
    for (position, family, sorted) in sorted {
        let (Some(&first), Some(&last)) = (sorted.series.first(), sorted.series.last()) else {
            continue; // A family without metrics shows nothing.
        };
        let run = Arc::new(Run {
            family: Arc::downgrade(family),
            first: sorted.first,
            last: sorted.last,
            encoded: None,
        });
        slots.push(Slot {
            position,
            family,
            run,
            first,
            last,
            sorted: Some(sorted.series),
        });
    }
    slots.sort_by(|a, b| cmp_series(&a.first, &b.first).then(a.position.cmp(&b.position)));

    let clusters = overlapping(&slots);
    let tasks: Vec<Vec<Slot>> = {
        let mut slots = slots.into_iter();
        clusters
            .iter()
            .map(|&len| slots.by_ref().take(len).collect())
            .collect()
    };
    let name = &*entry.name;
    let metric_type = entry.metric_type;
    // Encode what has no encoding yet: lone runs on their own, overlapping ones merged.
    let encoded = parallel_map(
        tasks,
        |cluster| match cluster.as_slice() {
            [lone] if lone.run.encoded.is_some() => 0,
            cluster => cluster.iter().map(|s| s.family.len()).sum(),
        },
        |cluster| encode_cluster(format, name, metric_type, cluster, ids),
    );

    let mut pieces = Vec::with_capacity(encoded.len() + 1);
    let mut runs = HashMap::with_capacity(entry.families.len());
    for (piece, cluster_runs) in encoded {
        pieces.push(piece);
        for (group, run) in cluster_runs {
            runs.insert(group, run);
        }
    }
    if !pieces.is_empty() {
        let len = pieces.iter().map(|p| p.bytes.len()).sum();
        // Upstream takes the help of one of the groups when they disagree: ours is the
        // first group's in grouping-key order, so it is at least stable.
        let help = entry.families.first().and_then(|f| f.help.as_deref());
        let header = encode_family_header(format, name, help, metric_type, len);
        pieces.insert(
            0,
            Piece {
                id: Some(next_id(ids)),
                bytes: Bytes::from(header),
            },
        );
    }
    NameCache {
        version: entry.version,
        pieces: pieces.into(),
        runs,
    }
}

/// The lengths of the consecutive groups of `slots` (sorted by first series) whose series
/// ranges overlap; a group of one can be sent as it is.
fn overlapping(slots: &[Slot<'_>]) -> Vec<usize> {
    let mut clusters = Vec::new();
    let mut reach: Option<&Series> = None;
    for slot in slots {
        let starts_after = reach.is_none_or(|r| cmp_series(r, &slot.first).is_lt());
        if starts_after {
            clusters.push(1);
            reach = Some(&slot.last);
        } else {
            if let Some(len) = clusters.last_mut() {
                *len += 1;
            }
            if reach.is_none_or(|r| cmp_series(r, &slot.last).is_lt()) {
                reach = Some(&slot.last);
            }
        }
    }
    clusters
}

type ClusterRuns = Vec<(Arc<GroupingKey>, Arc<Run>)>;

/// The piece of one cluster of runs, and the runs to cache.
fn encode_cluster(
    format: ScrapeFormat,
    name: &str,
    metric_type: MetricType,
    cluster: Vec<Slot<'_>>,
    ids: &Ids,
) -> (Piece, ClusterRuns) {
    if let [slot] = cluster.as_slice() {
        if let Some(piece) = &slot.run.encoded {
            return (
                piece.clone(),
                vec![(slot.family.group.clone(), slot.run.clone())],
            );
        }
    }
    let mut cluster = cluster;
    if let [slot] = cluster.as_mut_slice() {
        let series = sorted_series(slot);
        let piece = Piece {
            id: Some(next_id(ids)),
            bytes: exact_bytes(encode_metrics(format, name, metric_type, &series)),
        };
        let run = Arc::new(Run {
            family: slot.run.family.clone(),
            first: slot.run.first,
            last: slot.run.last,
            encoded: Some(piece.clone()),
        });
        return (piece, vec![(slot.family.group.clone(), run)]);
    }
    // Ties (only possible after unchecked pushes) keep grouping-key order, as a stable
    // sort of all series would.
    cluster.sort_by_key(|slot| slot.position);
    let runs: Vec<Vec<Series>> = cluster.iter_mut().map(sorted_series).collect();
    let merged = merge_sorted(runs, cmp_series);
    let piece = Piece {
        id: Some(next_id(ids)),
        bytes: exact_bytes(encode_metrics(format, name, metric_type, &merged)),
    };
    // The runs stay cached without an encoding: their boundaries say where they go.
    let runs = cluster
        .into_iter()
        .map(|slot| (slot.family.group.clone(), slot.run))
        .collect();
    (piece, runs)
}

fn sorted_series<'a>(slot: &mut Slot<'a>) -> Vec<Series<'a>> {
    let family = slot.family;
    slot.sorted
        .take()
        .unwrap_or_else(|| sorted_run(family).series)
}

/// A family's series in exposition order, and where the first and last of them are among
/// its series.
struct Sorted<'a> {
    series: Vec<Series<'a>>,
    first: u32,
    last: u32,
}

/// A family's series in exposition order: the order a stored family keeps them in (packed
/// sorted, with an order of its own once aggregation appended series), so nothing is sorted
/// here and the run's first and last series are its first and last.
fn sorted_run(family: &StoredFamily) -> Sorted<'_> {
    let series: Vec<Series> = family.series().collect();
    debug_assert!(series.is_sorted_by(|a, b| cmp_series(a, b).is_le()));
    Sorted {
        first: 0,
        last: series.len().saturating_sub(1) as u32,
        series,
    }
}

/// Bytes that keep no spare capacity: a cached encoding grown by doubling would otherwise
/// hold up to twice its size for as long as it is cached.
pub(super) fn exact_bytes(mut encoded: Vec<u8>) -> Bytes {
    encoded.shrink_to_fit();
    Bytes::from(encoded)
}

/// Merges runs each sorted by `cmp` into one sorted sequence; equal items keep the order
/// of their runs (as a stable sort of the runs one after the other would).
pub fn merge_sorted<T: Copy>(runs: Vec<Vec<T>>, cmp: impl Fn(&T, &T) -> Ordering) -> Vec<T> {
    struct Head<T, C> {
        item: T,
        run: usize,
        at: usize,
        cmp: C,
    }
    impl<T, C: Fn(&T, &T) -> Ordering> Ord for Head<T, C> {
        fn cmp(&self, other: &Self) -> Ordering {
            (self.cmp)(&self.item, &other.item).then(self.run.cmp(&other.run))
        }
    }
    impl<T, C: Fn(&T, &T) -> Ordering> PartialOrd for Head<T, C> {
        fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
            Some(self.cmp(other))
        }
    }
    impl<T, C: Fn(&T, &T) -> Ordering> PartialEq for Head<T, C> {
        fn eq(&self, other: &Self) -> bool {
            self.cmp(other).is_eq()
        }
    }
    impl<T, C: Fn(&T, &T) -> Ordering> Eq for Head<T, C> {}

    let total = runs.iter().map(Vec::len).sum();
    let mut merged = Vec::with_capacity(total);
    let cmp = &cmp;
    let mut heap: BinaryHeap<Reverse<Head<T, _>>> = runs
        .iter()
        .enumerate()
        .filter_map(|(run, items)| {
            items.first().map(|&item| {
                Reverse(Head {
                    item,
                    run,
                    at: 0,
                    cmp,
                })
            })
        })
        .collect();
    while let Some(Reverse(mut head)) = heap.pop() {
        merged.push(head.item);
        head.at += 1;
        if let Some(&next) = runs[head.run].get(head.at) {
            head.item = next;
            heap.push(Reverse(head));
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Label, Metric, MetricFamily, Value};
    use crate::test_rng::Rng;

    /// Runs take a stored family's series as they come: that order is the general sort's
    /// (stable, duplicates from unchecked pushes included).
    #[test]
    fn a_stored_family_keeps_the_general_sort_order() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let group = Arc::new(GroupingKey::new(vec![
            Label::new("job", "j"),
            Label::new("c", "x"),
        ]));
        for _ in 0..200 {
            let metrics: Vec<Metric> = (0..rng.below(40))
                .map(|i| {
                    let names = if rng.below(5) == 0 {
                        ["a", "b", "e"]
                    } else {
                        ["a", "b", "d"]
                    };
                    let labels = names
                        .iter()
                        .map(|n| Label::new(*n, rng.below(4).to_string()))
                        .collect();
                    Metric::new(labels, Value::Gauge(i as f64))
                })
                .collect();
            let mut expected: Vec<Series> =
                metrics.iter().map(|m| Series::new(m, &group)).collect();
            sort_metrics(&mut expected);
            let family = MetricFamily {
                name: "m".into(),
                help: None,
                metric_type: MetricType::Gauge,
                metrics: metrics.clone(),
            };
            let stored = StoredFamily::new(family, 0.0, group.clone());
            let run = sorted_run(&stored);
            let plain = |s: &[Series]| {
                s.iter()
                    .map(|s| (s.labels().map(Label::from).collect::<Vec<_>>(), s.value()))
                    .map(|(labels, value)| (labels, format!("{value:?}")))
                    .collect::<Vec<_>>()
            };
            assert_eq!(plain(&run.series), plain(&expected));
        }
    }

    #[test]
    fn merging_sorted_runs_equals_a_stable_sort() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..500 {
            let runs: Vec<Vec<(usize, usize)>> = (0..rng.below(6))
                .map(|run| {
                    let mut items: Vec<(usize, usize)> =
                        (0..rng.below(20)).map(|_| (rng.below(30), run)).collect();
                    items.sort_by_key(|i| i.0);
                    items
                })
                .collect();
            let mut expected: Vec<(usize, usize)> = runs.concat();
            expected.sort_by_key(|i| i.0);
            assert_eq!(merge_sorted(runs, |a, b| a.0.cmp(&b.0)), expected);
        }
    }
}
