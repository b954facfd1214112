//! Identity of a series for the duplicate check: a 128-bit hash of the metric name and its
//! sorted labels. At 128 bits a collision among even billions of series is negligible, and
//! the index stays at 16 bytes a series instead of a copy of every label.

use xxhash_rust::xxh3::Xxh3;

use crate::model::Label;

/// The identity of one series (name plus sorted labels).
pub type SeriesId = u128;

/// Hashes a metric name and its labels, which must be sorted by name.
pub fn series_id<'a>(name: &str, labels: impl IntoIterator<Item = &'a Label>) -> SeriesId {
    let mut hasher = Xxh3::new();
    // 0xff never occurs in UTF-8, so it separates fields unambiguously.
    hasher.update(name.as_bytes());
    hasher.update(&[0xff]);
    for label in labels {
        hasher.update(label.name.as_bytes());
        hasher.update(&[0xff]);
        hasher.update(label.value.as_bytes());
        hasher.update(&[0xff]);
    }
    hasher.digest128()
}

/// How often each series is stored. Almost every series is stored once (more only after
/// unchecked pushes), so the common case is a bare set of 16-byte keys, with the counts
/// above one on the side: half the memory of a map from a 128-bit id to a count, whose
/// entries the id's 16-byte alignment pads to 32 bytes.
#[derive(Debug, Default)]
pub struct SeriesIndex {
    once: std::collections::HashSet<[u64; 2]>,
    more: std::collections::HashMap<[u64; 2], u32>,
}

fn key(id: SeriesId) -> [u64; 2] {
    [id as u64, (id >> 64) as u64]
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

    /// How many copies are stored.
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

    #[test]
    fn field_boundaries_matter() {
        let a = series_id("m", &[Label::new("ab", "c")]);
        let b = series_id("m", &[Label::new("a", "bc")]);
        assert_ne!(a, b);
        assert_eq!(a, series_id("m", &[Label::new("ab", "c")]));
    }
}
