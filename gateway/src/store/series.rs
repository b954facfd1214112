//! Identity of a series for the duplicate check: a 128-bit hash of the metric name and its
//! sorted labels. The index of stored series keeps only 64 bits of it (8 bytes a series
//! instead of a copy of every label); the check confirms a hit against the stored labels
//! before it refuses anything, so that a collision of 64-bit hashes costs a lookup, never
//! a wrong rejection.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

use xxhash_rust::xxh3::xxh3_128;

use crate::model::LabelRef;

/// The identity of one series (name plus sorted labels).
pub type SeriesId = u128;

/// Hashes a metric name and its labels, which must be sorted by name.
pub fn series_id<'a, L: Into<LabelRef<'a>>>(
    name: &str,
    labels: impl IntoIterator<Item = L>,
) -> SeriesId {
    // The fields are laid out in a buffer and hashed in one call: xxh3's one-shot path is
    // several times faster than its streaming one on inputs as short as a series' labels,
    // and gives the same hash. Restore hashes every stored series.
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        // 0xff never occurs in UTF-8, so it separates fields unambiguously.
        buffer.extend_from_slice(name.as_bytes());
        buffer.push(0xff);
        for label in labels {
            let label = label.into();
            buffer.extend_from_slice(label.name.as_bytes());
            buffer.push(0xff);
            buffer.extend_from_slice(label.value.as_bytes());
            buffer.push(0xff);
        }
        let id = xxh3_128(buffer);
        if buffer.capacity() > MAX_KEPT_BUFFER {
            // A rare huge label set does not keep its buffer for the thread's lifetime.
            *buffer = Vec::new();
        }
        id
    })
}

/// Largest hashing buffer a thread keeps between series.
const MAX_KEPT_BUFFER: usize = 1 << 16;

/// The identity of a series as a scrape that writes label names as `escape` makes them
/// (`a.b` as `a_b`): `None` when two of its names come out alike, which that scrape would
/// show as one label twice.
pub fn escaped_series_id<'a>(
    name: &str,
    labels: impl IntoIterator<Item = LabelRef<'a>>,
    escape: impl Fn(&'a str) -> Cow<'a, str>,
) -> Option<SeriesId> {
    let mut escaped: Vec<(Cow<'a, str>, &'a str)> = labels
        .into_iter()
        .map(|l| (escape(l.name), l.value))
        .collect();
    escaped.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if escaped.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    Some(series_id(
        name,
        escaped.iter().map(|(name, value)| LabelRef { name, value }),
    ))
}

/// How often each 64-bit series hash is stored. Almost every series is stored once (more
/// only after unchecked pushes or a collision of hashes), so the common case is a bare
/// set of 8-byte keys, with the counts above one on the side.
#[derive(Debug, Default)]
pub struct SeriesIndex {
    once: HashSet<u64, KeyedMix>,
    more: HashMap<u64, u32, KeyedMix>,
}

/// The series [`SeriesIndex::add_all`] found counted already (almost always none).
pub struct Repeated(Vec<u64>);

/// [`SeriesIndex::add_all`] sorts into at most 2^12 partitions of neighbouring slots.
const PARTITION_BITS: u32 = 12;

fn key(id: SeriesId) -> u64 {
    id as u64
}

/// Places a key (a 64-bit series hash) in the table. The series hash is unkeyed, so a
/// client could search for label values whose hashes share their low bits and pile its
/// series onto one probe sequence; a folded multiply with a per-process random key (as
/// foldhash does) spreads them again, at a few cycles instead of a second full hash.
#[derive(Clone, Copy)]
struct KeyedMix {
    seed: u64,
    multiplier: u64,
}

impl Default for KeyedMix {
    fn default() -> Self {
        use std::sync::OnceLock;
        static KEYS: OnceLock<(u64, u64)> = OnceLock::new();
        let &(seed, multiplier) = KEYS.get_or_init(|| {
            let random = std::collections::hash_map::RandomState::new();
            // An odd multiplier keeps the multiply a bijection of its 64-bit input.
            (random.hash_one(1u64), random.hash_one(2u64) | 1)
        });
        KeyedMix { seed, multiplier }
    }
}

impl BuildHasher for KeyedMix {
    type Hasher = MixHasher;

    fn build_hasher(&self) -> MixHasher {
        MixHasher {
            keys: *self,
            state: 0,
        }
    }
}

struct MixHasher {
    keys: KeyedMix,
    state: u64,
}

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        let product = u128::from(self.state ^ self.keys.seed) * u128::from(self.keys.multiplier);
        (product as u64) ^ ((product >> 64) as u64)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; anything else is folded in.
        for &b in bytes {
            self.state = self.state.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.state = n;
    }
}

impl SeriesIndex {
    /// Counts one more copy of a series.
    pub fn add(&mut self, id: SeriesId) {
        let k = key(id);
        if !self.once.insert(k) {
            *self.more.entry(k).or_insert(1) += 1;
        }
    }

    /// Makes room for `additional` more series (restore knows how many it brings).
    pub fn reserve(&mut self, additional: usize) {
        self.once.reserve(additional);
    }

    /// Counts one more copy of each of `ids`, as [`SeriesIndex::add`] one by one would,
    /// but in the order of the table's slots: in a table far larger than the caches (tens
    /// of millions of series at a restore), inserting in random order costs a cache and TLB
    /// miss per series, in slot order the memory is swept once. The order is only a hint
    /// (it assumes the table's bucket count from its capacity): any order gives the same
    /// counts.
    /// Returns the series it counted more than once, for [`SeriesIndex::any_repeated`].
    pub fn add_all(&mut self, ids: &[SeriesId]) -> Repeated {
        self.once.reserve(ids.len());
        // The table has a power of two of buckets, 8 for every 7 of capacity; a probe starts
        // at the hash's low bits.
        let buckets = (self.once.capacity() / 7 * 8).next_power_of_two().max(1);
        let shift = buckets.trailing_zeros().saturating_sub(PARTITION_BITS);
        let partitions = (buckets >> shift).max(1);
        let hasher = self.once.hasher();
        let partition = |k: &u64| ((hasher.hash_one(k) as usize) & (buckets - 1)) >> shift;
        // A counting sort into partitions of neighbouring slots: small enough to stay in
        // the caches while they fill, without the cost of sorting completely.
        let mut starts = vec![0usize; partitions + 1];
        let keys: Vec<(u64, usize)> = ids
            .iter()
            .map(|&id| {
                let k = key(id);
                let p = partition(&k);
                starts[p + 1] += 1;
                (k, p)
            })
            .collect();
        for p in 0..partitions {
            starts[p + 1] += starts[p];
        }
        let mut ordered = vec![0u64; keys.len()];
        for (k, p) in keys {
            ordered[starts[p]] = k;
            starts[p] += 1;
        }
        let mut repeated = Vec::new();
        for k in ordered {
            if !self.once.insert(k) {
                *self.more.entry(k).or_insert(1) += 1;
                repeated.push(k);
            }
        }
        Repeated(repeated)
    }

    /// Whether any of `repeated` is still counted more than once.
    pub fn any_repeated(&self, repeated: &Repeated) -> bool {
        repeated.0.iter().any(|k| self.more.contains_key(k))
    }

    /// Counts one copy fewer.
    pub fn remove(&mut self, id: SeriesId) {
        let k = key(id);
        match self.more.get_mut(&k) {
            Some(count) => {
                *count -= 1;
                if *count == 1 {
                    self.more.remove(&k);
                }
            }
            None => {
                self.once.remove(&k);
            }
        }
    }

    /// Every 64-bit key with its count (for tests that recount the store).
    #[cfg(test)]
    pub(super) fn counts(&self) -> HashMap<u64, u32> {
        let counts = self
            .once
            .iter()
            .map(|&k| (k, self.more.get(&k).copied().unwrap_or(1)));
        counts.collect()
    }

    /// How many stored series share the 64-bit hash of `id` (a count above zero may be a
    /// collision: confirm it against the stored labels).
    pub fn count(&self, id: SeriesId) -> u32 {
        let k = key(id);
        if self.once.contains(&k) {
            self.more.get(&k).copied().unwrap_or(1)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_counts_copies() {
        let mut index = super::SeriesIndex::default();
        let id = super::series_id("m", &[] as &[Label]);
        assert_eq!(index.count(id), 0);
        for expected in 1..=3 {
            index.add(id);
            assert_eq!(index.count(id), expected);
        }
        for expected in (0..3).rev() {
            index.remove(id);
            assert_eq!(index.count(id), expected);
        }
        index.remove(id);
        assert_eq!(index.count(id), 0);
    }

    #[test]
    fn adding_all_at_once_counts_as_adding_one_by_one() {
        let ids: Vec<super::SeriesId> = (0..50_000u32)
            .map(|i| super::series_id("m", &[Label::new("i", (i % 40_000).to_string())]))
            .collect();
        let mut bulk = super::SeriesIndex::default();
        bulk.add(ids[7]);
        bulk.add_all(&ids[..30_000]);
        bulk.add_all(&ids[30_000..]);
        bulk.add_all(&[]);
        let mut single = super::SeriesIndex::default();
        single.add(ids[7]);
        for &id in &ids {
            single.add(id);
        }
        for &id in &ids {
            assert_eq!(bulk.count(id), single.count(id));
        }
        assert_eq!(bulk.count(ids[7]), 3);
        assert_eq!(bulk.count(ids[45_000]), 2);
        assert_eq!(bulk.count(ids[39_999]), 1);
    }

    #[test]
    fn hashes_sharing_their_low_bits_spread_over_the_table() {
        // Keys a client could produce by searching label values: 64-bit series hashes that
        // agree in their low 32 bits would all start probing at the same slot if the
        // table used them as they are.
        let mix = KeyedMix::default();
        let slots: std::collections::HashSet<u64> = (0..10_000u64)
            .map(|i| mix.hash_one((i << 32) | 0x5eed) & 0xffff)
            .collect();
        // 10k keys over 65536 slots: about 9,300 distinct when spread at random.
        assert!(slots.len() > 8_500, "{} distinct slots", slots.len());
    }

    use super::*;
    use crate::model::Label;

    #[test]
    fn field_boundaries_matter() {
        let a = series_id("m", &[Label::new("ab", "c")]);
        let b = series_id("m", &[Label::new("a", "bc")]);
        assert_ne!(a, b);
        assert_eq!(a, series_id("m", &[Label::new("ab", "c")]));
    }
}
