//! Identity of a series for the duplicate check: a 128-bit hash of the metric name and its
//! sorted labels. The index of stored series keeps only 64 bits of it (8 bytes a series
//! instead of a copy of every label); the check confirms a hit against the stored labels
//! before it refuses anything, so that a collision of 64-bit hashes costs a lookup, never
//! a wrong rejection.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::Xxh3;

use crate::model::LabelRef;

/// The identity of one series (name plus sorted labels).
pub type SeriesId = u128;

/// Hashes a metric name and its labels, which must be sorted by name.
pub fn series_id<'a, L: Into<LabelRef<'a>>>(
    name: &str,
    labels: impl IntoIterator<Item = L>,
) -> SeriesId {
    let mut hasher = Xxh3::new();
    // 0xff never occurs in UTF-8, so it separates fields unambiguously.
    hasher.update(name.as_bytes());
    hasher.update(&[0xff]);
    for label in labels {
        let label = label.into();
        hasher.update(label.name.as_bytes());
        hasher.update(&[0xff]);
        hasher.update(label.value.as_bytes());
        hasher.update(&[0xff]);
    }
    hasher.digest128()
}

/// How often each 64-bit series hash is stored. Almost every series is stored once (more
/// only after unchecked pushes or a collision of hashes), so the common case is a bare
/// set of 8-byte keys, with the counts above one on the side.
#[derive(Debug, Default)]
pub struct SeriesIndex {
    once: HashSet<u64, BuildHasherDefault<HashIsKey>>,
    more: HashMap<u64, u32, BuildHasherDefault<HashIsKey>>,
}

/// [`SeriesIndex::add_all`] sorts into at most 2^12 partitions of neighbouring slots.
const PARTITION_BITS: u32 = 12;

fn key(id: SeriesId) -> u64 {
    id as u64
}

/// The keys are hashes already: hashing them again would only cost time.
#[derive(Default)]
struct HashIsKey(u64);

impl Hasher for HashIsKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; anything else is folded in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
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
    pub fn add_all(&mut self, ids: &[SeriesId]) {
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
        for k in ordered {
            if !self.once.insert(k) {
                *self.more.entry(k).or_insert(1) += 1;
            }
        }
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
