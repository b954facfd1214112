//! Identity of a series for the duplicate check: a 128-bit hash of the metric name and its
//! sorted labels. At 128 bits a collision among even billions of series is negligible, and
//! the index stays at 16 bytes a series instead of a copy of every label.

use xxhash_rust::xxh3::Xxh3;

use crate::model::Label;

/// The identity of one series (name plus sorted labels).
pub type SeriesId = u128;

/// Hashes a metric name and its labels, which must be sorted by name.
pub fn series_id(name: &str, labels: &[Label]) -> SeriesId {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_matter() {
        let a = series_id("m", &[Label::new("ab", "c")]);
        let b = series_id("m", &[Label::new("a", "bc")]);
        assert_ne!(a, b);
        assert_eq!(a, series_id("m", &[Label::new("ab", "c")]));
    }
}
