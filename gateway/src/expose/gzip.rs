//! gzip for scrapes without compressing the whole body each time. The pieces of a
//! rendered exposition are grouped into segments, and each segment is deflated on its own
//! into whole, byte-aligned deflate blocks (ending in a sync flush, as pigz does), cached
//! under the ids of its pieces until one of them changes. A scrape then sends one gzip
//! member: a header, the segments' blocks one after the other, an empty final block, and
//! the CRC-32 combined from the segments' own CRCs.
//!
//! Each segment is deflated with the 32 KiB of plain text before it as its dictionary,
//! which is exactly the window a reader has at that point: back-references may reach
//! into the previous segment, so the output is as small as one stream's. The dictionary's
//! pieces are part of the segment's key, so a changed piece invalidates its own segment
//! and the one after it.
//!
//! A large piece (a big group's run) is a segment alone. Small pieces are grouped until a
//! segment is large enough to compress well, ending where a piece id's hash says so (or
//! at a size cap), so that a changed piece moves only the boundaries near it and the
//! segments further on are found again in the cache.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};
use parking_lot::Mutex;

use super::parallel::parallel_map;
use super::runs::Piece;
use super::ScrapeFormat;

/// A piece this large is a segment on its own.
const LONE_SEGMENT_BYTES: usize = 64 * 1024;
/// Small pieces are grouped into segments of at least this many bytes (a segment's
/// dictionary costs about as much as compressing this much) ...
const SEGMENT_MIN_BYTES: usize = 16 * 1024;
/// ... ending after about this many more on average ...
const BOUNDARY_SPACING_BYTES: usize = 32 * 1024;
/// ... and at most about this many, whatever the ids' hashes say.
const SEGMENT_MAX_BYTES: usize = 256 * 1024;
/// Deflate's window: the most a back-reference reaches.
const WINDOW_BYTES: usize = 32 * 1024;
/// The compression level (zlib's default). With the bench's 1M series it gives 2.64 MiB
/// against the reference's ~2.55 MiB (level 1: 2.84 MiB, level 9: 2.54 MiB at three times
/// the cost); a segment is compressed once, not per scrape.
const LEVEL: u32 = 6;
/// A gzip header: deflate, no name, no time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// An empty final deflate block (fixed Huffman codes, end of block only).
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];
/// Separates a segment key's dictionary ids from its own (no piece gets this id).
const KEY_SEPARATOR: u64 = u64::MAX;

/// A segment's deflate blocks with the CRC-32 and length of its plain text.
struct Deflated {
    blocks: Bytes,
    crc: u32,
    len: u64,
}

/// Deflated segments by the ids of their dictionaries' and own pieces.
type Segments = HashMap<Box<[u64]>, Arc<Deflated>>;

/// The cached segments, per format.
#[derive(Default)]
pub struct GzipCache {
    segments: Mutex<HashMap<ScrapeFormat, Segments>>,
}

/// A run of pieces deflated together; `key` is `None` when one of them is not cacheable.
struct Segment {
    key: Option<Box<[u64]>>,
    pieces: Range<usize>,
    /// The pieces whose end is its dictionary, and how many bytes of them it takes.
    dictionary: (Range<usize>, usize),
}

impl GzipCache {
    /// `pieces` as one gzip stream, in chunks, reusing cached segments. Segments that no
    /// longer occur are dropped from the cache.
    pub fn compress(&self, format: ScrapeFormat, pieces: &[Piece]) -> Vec<Bytes> {
        let segments = segments(pieces);
        let found: Vec<Option<Arc<Deflated>>> = {
            let cache = self.segments.lock();
            let cached = cache.get(&format);
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
        let deflated = parallel_map(
            missing,
            |(_, s)| plain_len(&pieces[s.pieces.clone()]) / 64,
            |(i, s)| (i, Arc::new(deflate(pieces, s))),
        );
        let mut all = found;
        for (i, segment) in deflated {
            all[i] = Some(segment);
        }
        let all: Vec<Arc<Deflated>> = all.into_iter().flatten().collect();

        let mut crc = crc32fast::Hasher::new();
        let mut len: u64 = 0;
        let mut chunks = Vec::with_capacity(all.len() + 2);
        chunks.push(Bytes::from_static(&GZIP_HEADER));
        for segment in &all {
            crc.combine(&crc32fast::Hasher::new_with_initial_len(
                segment.crc,
                segment.len,
            ));
            len += segment.len;
            chunks.push(segment.blocks.clone());
        }
        let mut trailer = Vec::with_capacity(10);
        trailer.extend_from_slice(&FINAL_BLOCK);
        trailer.extend_from_slice(&crc.finalize().to_le_bytes());
        // ISIZE is the length modulo 2^32.
        trailer.extend_from_slice(&(len as u32).to_le_bytes());
        chunks.push(Bytes::from(trailer));

        let kept: Segments = segments
            .into_iter()
            .zip(all)
            .filter_map(|(s, d)| Some((s.key?, d)))
            .collect();
        self.segments.lock().insert(format, kept);
        chunks
    }

    /// Drops the segments of formats not scraped with gzip lately.
    pub fn retain(&self, keep: impl Fn(ScrapeFormat) -> bool) {
        self.segments.lock().retain(|format, _| keep(*format));
    }
}

fn plain_len(pieces: &[Piece]) -> usize {
    pieces.iter().map(|p| p.bytes.len()).sum()
}

/// Deflates a segment's pieces into byte-aligned, non-final blocks, with its dictionary.
fn deflate(pieces: &[Piece], segment: &Segment) -> Deflated {
    let own = &pieces[segment.pieces.clone()];
    let mut compress = Compress::new(Compression::new(LEVEL), false);
    let (dictionary_pieces, dictionary_len) = &segment.dictionary;
    if *dictionary_len > 0 {
        let mut dictionary = Vec::with_capacity(*dictionary_len);
        for piece in &pieces[dictionary_pieces.clone()] {
            dictionary.extend_from_slice(&piece.bytes);
        }
        // A failure only costs compression: without a dictionary, nothing refers back.
        if compress
            .set_dictionary(&dictionary[dictionary.len() - dictionary_len..])
            .is_err()
        {
            compress = Compress::new(Compression::new(LEVEL), false);
        }
    }
    let mut out = Vec::with_capacity(plain_len(own) / 8 + 64);
    let mut crc = crc32fast::Hasher::new();
    for (i, piece) in own.iter().enumerate() {
        crc.update(&piece.bytes);
        let flush = if i + 1 == own.len() {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        feed(&mut compress, &piece.bytes, &mut out, flush);
    }
    Deflated {
        blocks: Bytes::from(out),
        crc: crc.finalize(),
        len: plain_len(own) as u64,
    }
}

/// Compresses all of `input` into `out`, growing it as needed, then flushes as asked.
fn feed(compress: &mut Compress, mut input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) {
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let before = compress.total_in();
        let status = compress.compress_vec(input, out, flush);
        input = &input[(compress.total_in() - before) as usize..];
        // Done once the input is used up and the flush left output space unused.
        if status.is_err() || (input.is_empty() && out.len() < out.capacity()) {
            return;
        }
    }
}

/// Splits the pieces into segments (see the module doc).
fn segments(pieces: &[Piece]) -> Vec<Segment> {
    let mut ranges: Vec<(Range<usize>, bool)> = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    let mut cacheable = true;
    let mut flush = |end: usize, start: &mut usize, bytes: &mut usize, cacheable: bool| {
        if end > *start {
            ranges.push((*start..end, cacheable));
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
                if !cacheable || len >= LONE_SEGMENT_BYTES {
                    flush(i, &mut start, &mut bytes, cacheable);
                }
                cacheable = true;
                bytes += len;
                let ends_here = len >= LONE_SEGMENT_BYTES
                    || bytes >= SEGMENT_MAX_BYTES
                    || (bytes >= SEGMENT_MIN_BYTES && boundary_hash(id, len));
                if ends_here {
                    flush(i + 1, &mut start, &mut bytes, true);
                }
            }
        }
    }
    flush(pieces.len(), &mut start, &mut bytes, cacheable);
    ranges
        .into_iter()
        .map(|(range, cacheable)| {
            let dictionary = dictionary(pieces, range.start, cacheable);
            let key = cacheable.then(|| {
                let ids = |r: Range<usize>| pieces[r].iter().filter_map(|p| p.id);
                ids(dictionary.0.clone())
                    .chain([KEY_SEPARATOR])
                    .chain(ids(range.clone()))
                    .collect()
            });
            Segment {
                key,
                pieces: range,
                dictionary,
            }
        })
        .collect()
}

/// The pieces before `start` whose last bytes (up to a window) are a segment's
/// dictionary, and how many bytes that is. A cacheable segment's dictionary holds only
/// cacheable pieces (it is part of the segment's key).
fn dictionary(pieces: &[Piece], start: usize, cacheable: bool) -> (Range<usize>, usize) {
    let mut from = start;
    let mut len = 0;
    while from > 0 && len < WINDOW_BYTES {
        let before = &pieces[from - 1];
        if cacheable && before.id.is_none() {
            break;
        }
        from -= 1;
        len += before.bytes.len();
    }
    (from..start, len.min(WINDOW_BYTES))
}

/// Whether a segment may end after a piece: true for about one piece in every
/// [`BOUNDARY_SPACING_BYTES`] of text, spread over the ids (which are handed out in
/// order). Measured in bytes rather than pieces, boundaries lie further apart than the
/// minimum segment size, so that segmentations starting at different pieces meet again.
fn boundary_hash(id: u64, len: usize) -> bool {
    let mixed = id.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    let threshold = (len as u64).saturating_mul(u64::MAX / BOUNDARY_SPACING_BYTES as u64);
    mixed < threshold
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// A piece of sample lines like a group's run (text that refers back a lot).
    fn piece(id: Option<u64>, lines: u64) -> Piece {
        let seed = id.unwrap_or(7);
        let text: String = (0..lines)
            .map(|j: u64| format!("m{{group=\"g{seed}\",series=\"{j}\"}} {}\n", j * seed % 97))
            .collect();
        Piece {
            id,
            bytes: Bytes::from(text),
        }
    }

    /// Decodes as a single-member gzip stream, checking the CRC and length.
    fn decode(chunks: &[Bytes]) -> Vec<u8> {
        let all: Vec<u8> = chunks.concat();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&all[..])
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    fn plain(pieces: &[Piece]) -> Vec<u8> {
        pieces.iter().flat_map(|p| p.bytes.to_vec()).collect()
    }

    #[test]
    fn segments_decode_as_one_stream_and_are_reused() {
        let mut pieces: Vec<Piece> = (0..200)
            .map(|i| match i % 50 {
                0 => piece(None, 3),
                7 => piece(Some(i), 3000),
                _ => piece(Some(i), 100),
            })
            .collect();
        let cache = GzipCache::default();
        let first = cache.compress(ScrapeFormat::TEXT, &pieces);
        assert!(first.len() > 10, "{} chunks", first.len());
        assert_eq!(decode(&first), plain(&pieces));
        // Unchanged pieces give the very same (cached) segments: only the uncacheable
        // ones and the trailer are new.
        let second = cache.compress(ScrapeFormat::TEXT, &pieces);
        assert_eq!(decode(&second), plain(&pieces));
        let reused = first
            .iter()
            .zip(&second)
            .filter(|(a, b)| a.as_ptr() == b.as_ptr())
            .count();
        assert_eq!(reused, first.len() - 5);
        // A changed piece: its segment and the next (whose dictionary it is) are new.
        pieces[120] = piece(Some(1000), 50);
        let third = cache.compress(ScrapeFormat::TEXT, &pieces);
        assert_eq!(decode(&third), plain(&pieces));
        let no_pieces = cache.compress(ScrapeFormat::TEXT, &[]);
        assert!(decode(&no_pieces).is_empty());
    }

    #[test]
    fn a_changed_piece_moves_only_nearby_boundaries() {
        let mut pieces: Vec<Piece> = (0..1000).map(|i| piece(Some(i), 40)).collect();
        let keys = |pieces: &[Piece]| -> Vec<Box<[u64]>> {
            segments(pieces).into_iter().flat_map(|s| s.key).collect()
        };
        let before = keys(&pieces);
        pieces[500] = piece(Some(5000), 150);
        let after = keys(&pieces);
        let same = after.iter().filter(|k| before.contains(k)).count();
        assert!(same + 6 >= after.len(), "{same} of {} kept", after.len());
    }
}
