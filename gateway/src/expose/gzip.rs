//! gzip for scrapes without compressing the whole body each time: a gzip stream may be a
//! sequence of members (RFC 1952), which every client that reads gzip reads as one body.
//! The pieces of a rendered exposition are grouped into segments, each compressed into a
//! member of its own and cached under the ids of its pieces until one of them changes.
//!
//! A large piece (a big group's run) is a segment alone. Small pieces are grouped until a
//! segment is large enough to compress well, ending where a piece id's hash says so (or
//! at a size cap), so that a changed piece moves only the boundaries near it and the
//! segments further on are found again in the cache.

use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;

use bytes::Bytes;
use parking_lot::Mutex;

use super::parallel::parallel_map;
use super::runs::Piece;
use super::ScrapeFormat;

/// A piece this large is a member on its own.
const LONE_MEMBER_BYTES: usize = 64 * 1024;
/// Small pieces are grouped into segments of at least this many bytes ...
const SEGMENT_MIN_BYTES: usize = 16 * 1024;
/// ... and at most about this many, whatever the ids' hashes say.
const SEGMENT_MAX_BYTES: usize = 256 * 1024;
/// The compression level: within 5% of the reference's default-level gzip at a fraction of
/// the cost of the default level (see the README's gzip figures).
const LEVEL: u32 = 4;

/// The cached members, per format, by the ids of the pieces they hold.
#[derive(Default)]
pub struct GzipCache {
    members: Mutex<HashMap<ScrapeFormat, HashMap<Box<[u64]>, Bytes>>>,
}

/// A run of pieces compressed into one member; `key` is `None` when one of them is not
/// cacheable.
struct Segment {
    key: Option<Box<[u64]>>,
    pieces: Range<usize>,
}

impl GzipCache {
    /// The gzip members of `pieces` in order, reusing cached ones. Members that no longer
    /// occur are dropped from the cache.
    pub fn compress(&self, format: ScrapeFormat, pieces: &[Piece]) -> Vec<Bytes> {
        let segments = segments(pieces);
        let found: Vec<Option<Bytes>> = {
            let members = self.members.lock();
            let cached = members.get(&format);
            segments
                .iter()
                .map(|s| {
                    let key = s.key.as_ref()?;
                    cached?.get(key).cloned()
                })
                .collect()
        };
        let missing: Vec<(usize, &Segment)> = segments
            .iter()
            .enumerate()
            .filter(|(i, _)| found[*i].is_none())
            .collect();
        let compressed = parallel_map(
            missing,
            |(_, s)| pieces[s.pieces.clone()].iter().map(|p| p.bytes.len()).sum::<usize>() / 64,
            |(i, s)| (i, member(&pieces[s.pieces.clone()])),
        );
        let mut out = found;
        for (i, member) in compressed {
            out[i] = Some(member);
        }
        let mut out: Vec<Bytes> = out.into_iter().flatten().collect();
        if out.is_empty() {
            // An empty body is no gzip stream; an empty member is.
            out.push(member(&[]));
        }
        let mut members = self.members.lock();
        // (Zipped with the segments, the empty member of no segment is left out.)
        let kept: HashMap<Box<[u64]>, Bytes> = segments
            .into_iter()
            .zip(&out)
            .filter_map(|(s, m)| Some((s.key?, m.clone())))
            .collect();
        members.insert(format, kept);
        out
    }

    /// Drops the members of formats not scraped with gzip lately.
    pub fn retain(&self, keep: impl Fn(ScrapeFormat) -> bool) {
        self.members.lock().retain(|format, _| keep(*format));
    }
}

/// Splits the pieces into segments (see the module doc).
fn segments(pieces: &[Piece]) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    let mut cacheable = true;
    let mut flush = |end: usize, start: &mut usize, bytes: &mut usize, cacheable: bool| {
        if end > *start {
            let key = cacheable.then(|| {
                pieces[*start..end]
                    .iter()
                    .filter_map(|p| p.id)
                    .collect::<Box<[u64]>>()
            });
            segments.push(Segment {
                key,
                pieces: *start..end,
            });
        }
        *start = end;
        *bytes = 0;
    };
    for (i, piece) in pieces.iter().enumerate() {
        let len = piece.bytes.len();
        match piece.id {
            None => {
                if cacheable {
                    flush(i, &mut start, &mut bytes, true);
                }
                cacheable = false;
                bytes += len;
            }
            Some(id) => {
                if !cacheable || len >= LONE_MEMBER_BYTES {
                    flush(i, &mut start, &mut bytes, cacheable);
                }
                cacheable = true;
                bytes += len;
                let ends_here = len >= LONE_MEMBER_BYTES
                    || bytes >= SEGMENT_MAX_BYTES
                    || (bytes >= SEGMENT_MIN_BYTES && boundary_hash(id));
                if ends_here {
                    flush(i + 1, &mut start, &mut bytes, true);
                }
            }
        }
    }
    flush(pieces.len(), &mut start, &mut bytes, cacheable);
    segments
}

/// True for about one id in four, spread over the ids (which are handed out in order).
fn boundary_hash(id: u64) -> bool {
    id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 62 == 0
}

/// One gzip member holding `pieces`.
fn member(pieces: &[Piece]) -> Bytes {
    let size: usize = pieces.iter().map(|p| p.bytes.len()).sum();
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(size / 8 + 64),
        flate2::Compression::new(LEVEL),
    );
    for piece in pieces {
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(&piece.bytes);
    }
    encoder.finish().map(Bytes::from).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn piece(id: Option<u64>, len: usize, fill: u8) -> Piece {
        Piece {
            id,
            bytes: Bytes::from(vec![fill; len]),
        }
    }

    fn decode(members: &[Bytes]) -> Vec<u8> {
        let all: Vec<u8> = members.concat();
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&all[..])
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    #[test]
    fn members_decode_to_the_pieces_and_are_reused() {
        let pieces: Vec<Piece> = (0..200)
            .map(|i| match i % 50 {
                0 => piece(None, 100, b'o'),
                7 => piece(Some(i), 100_000, b'a' + (i % 26) as u8),
                _ => piece(Some(i), 3_000, b'a' + (i % 26) as u8),
            })
            .collect();
        let plain: Vec<u8> = pieces.iter().flat_map(|p| p.bytes.to_vec()).collect();
        let cache = GzipCache::default();
        let first = cache.compress(ScrapeFormat::TEXT, &pieces);
        assert!(first.len() > 10, "{} members", first.len());
        assert_eq!(decode(&first), plain);
        // Unchanged pieces give the very same (cached) members.
        let second = cache.compress(ScrapeFormat::TEXT, &pieces);
        assert_eq!(decode(&second), plain);
        let reused = first
            .iter()
            .zip(&second)
            .filter(|(a, b)| a.as_ptr() == b.as_ptr())
            .count();
        // Only the uncacheable ones are compressed again.
        assert_eq!(reused, first.len() - 4);
    }

    #[test]
    fn a_changed_piece_moves_only_nearby_boundaries() {
        let mut pieces: Vec<Piece> = (0..1000).map(|i| piece(Some(i), 2_000, b'x')).collect();
        let before: Vec<Box<[u64]>> = segments(&pieces).into_iter().flat_map(|s| s.key).collect();
        pieces[500] = piece(Some(5000), 7_000, b'y');
        let after: Vec<Box<[u64]>> = segments(&pieces).into_iter().flat_map(|s| s.key).collect();
        let same = after.iter().filter(|k| before.contains(k)).count();
        assert!(same + 4 >= after.len(), "{same} of {} kept", after.len());
    }
}
