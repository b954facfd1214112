//! Identity of a series for the duplicate check: a 128-bit hash of the metric name and its
//! sorted labels. The index of stored series keeps only 64 bits of it (8 bytes a series
//! instead of a copy of every label); the check confirms a hit against the stored labels
//! before it refuses anything, so that a collision of 64-bit hashes costs a lookup, never
//! a wrong rejection.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

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
