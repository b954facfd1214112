//! Counting what a scrape holds while its body streams in, frame by frame, without
//! joining the frames: the scrape time is meant to measure the gateway, not the
//! client's copies of a body of tens of MB.
//!
//! Text formats (0.0.4 and OpenMetrics) are counted by lines, delimited protobuf by the
//! metrics of each `MetricFamily`. A line or a message may be split across frames at
//! any byte; the counters keep only the few bytes they still need.

use std::io::Write;

use crate::client::Result;

/// Metric name of the loaded series; a scrape must hold exactly N of them.
pub const LOAD_METRIC: &str = "bench_load";

/// What one scrape held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeCount {
    /// Samples in all: sample lines of a text format, metrics of a protobuf body.
    pub samples: usize,
    /// Samples of [`LOAD_METRIC`].
    pub loaded: usize,
    /// Body size in bytes (as sent: compressed when gzip).
    pub bytes: usize,
}

/// Counts a body fed in frames.
pub trait Counter: Send {
    /// The next frame of the body.
    fn feed(&mut self, frame: &[u8]) -> Result<()>;
    /// The counts once the body ended.
    fn finish(self: Box<Self>) -> Result<ScrapeCount>;
}

/// The counter for a response of `content_type` (text unless it is protobuf).
pub fn for_content_type(content_type: &str) -> Box<dyn Counter> {
    if content_type.starts_with("application/vnd.google.protobuf") {
        Box::new(ProtobufCounter::default())
    } else {
        Box::new(TextCounter::default())
    }
}

/// Bytes of a line's start that classify it: the metric name and the byte after it.
const HEAD: usize = LOAD_METRIC.len() + 1;

/// Whether a sample line starting with `start` is one of [`LOAD_METRIC`] (compared as
/// a fixed-size array: no call per line, which matters at a million lines a scrape).
fn is_loaded(start: &[u8]) -> bool {
    const NAME: [u8; HEAD - 1] = *b"bench_load";
    const _: () = assert!(LOAD_METRIC.len() == NAME.len());
    match start.get(..HEAD) {
        Some(head) => head[..HEAD - 1] == NAME && matches!(head[HEAD - 1], b'{' | b' '),
        None => false,
    }
}

/// Counts the sample lines of text 0.0.4 or OpenMetrics: lines neither empty nor
/// comments (`#`), and among them those of [`LOAD_METRIC`].
#[derive(Debug, Default)]
pub struct TextCounter {
    count: ScrapeCount,
    /// The start (at most [`HEAD`] bytes) of a line whose end has not arrived yet.
    head: Vec<u8>,
}

impl TextCounter {
    fn line(&mut self, start: &[u8]) {
        match start.first() {
            None | Some(b'#') => {}
            Some(_) => {
                self.count.samples += 1;
                self.count.loaded += usize::from(is_loaded(start));
            }
        }
    }

    /// A line ended with `tail`: classify it, joined to its start from earlier frames.
    fn line_end(&mut self, tail: &[u8]) {
        if self.head.is_empty() {
            self.line(tail);
        } else {
            let more = HEAD.saturating_sub(self.head.len()).min(tail.len());
            self.head.extend_from_slice(&tail[..more]);
            let head = std::mem::take(&mut self.head);
            self.line(&head);
            self.head = head;
            self.head.clear();
        }
    }
}

impl Counter for TextCounter {
    fn feed(&mut self, frame: &[u8]) -> Result<()> {
        self.count.bytes += frame.len();
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', frame) {
            self.line_end(&frame[start..nl]);
            start = nl + 1;
        }
        let rest = &frame[start..];
        let more = HEAD.saturating_sub(self.head.len()).min(rest.len());
        self.head.extend_from_slice(&rest[..more]);
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<ScrapeCount> {
        // A last line without a newline.
        let head = std::mem::take(&mut self.head);
        self.line(&head);
        Ok(self.count)
    }
}

impl Write for TextCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.feed(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where the protobuf counter is in the body.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum PbState {
    /// Reading the length prefix of the next `MetricFamily`.
    #[default]
    FamilyLength,
    /// Reading a field's tag inside a family.
    Tag,
    /// Reading a varint field's value (skipped).
    VarintValue,
    /// Reading the length of a length-delimited field of number `field`.
    FieldLength { field: u64 },
    /// Collecting the family's name (field 1), `left` bytes to go.
    Name { left: u64 },
    /// Skipping `left` bytes of a field's value.
    Skip { left: u64 },
}

/// Counts the metrics of a delimited `io.prometheus.client.MetricFamily` stream (field
/// 1 = name, field 4 = metric), skipping everything else without decoding it.
#[derive(Debug, Default)]
pub struct ProtobufCounter {
    count: ScrapeCount,
    state: PbState,
    /// The varint being read and its shift.
    varint: (u64, u32),
    /// Bytes of the current family still to come.
    family_left: u64,
    /// The current family's name (its first [`LOAD_METRIC`]`.len() + 1` bytes at most).
    name: Vec<u8>,
    /// Metrics of the current family.
    metrics: usize,
}

impl ProtobufCounter {
    /// Feeds one byte to the varint in progress; `Some(value)` when it is complete.
    fn varint_byte(&mut self, b: u8) -> Result<Option<u64>> {
        let (value, shift) = self.varint;
        if shift >= 64 {
            return Err("protobuf scrape: varint longer than 10 bytes".into());
        }
        let value = value | u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            self.varint = (0, 0);
            Ok(Some(value))
        } else {
            self.varint = (value, shift + 7);
            Ok(None)
        }
    }

    /// The current family ended: add its metrics.
    fn end_family(&mut self) {
        self.count.samples += self.metrics;
        if self.name == LOAD_METRIC.as_bytes() {
            self.count.loaded += self.metrics;
        }
        self.metrics = 0;
        self.name.clear();
        self.state = PbState::FamilyLength;
    }

    /// After a field ended inside the family: the next tag, or the next family.
    fn next_field(&mut self) {
        if self.family_left == 0 {
            self.end_family();
        } else {
            self.state = PbState::Tag;
        }
    }

    /// Takes `n` bytes of the family (a value's bytes or a varint byte).
    fn consume(&mut self, n: u64) -> Result<()> {
        self.family_left = self
            .family_left
            .checked_sub(n)
            .ok_or("protobuf scrape: a field runs past its family")?;
        Ok(())
    }
}

impl Counter for ProtobufCounter {
    fn feed(&mut self, frame: &[u8]) -> Result<()> {
        self.count.bytes += frame.len();
        let mut i = 0;
        while i < frame.len() {
            match self.state {
                PbState::Skip { left } | PbState::Name { left } => {
                    let take = left.min((frame.len() - i) as u64);
                    let bytes = &frame[i..i + take as usize];
                    if matches!(self.state, PbState::Name { .. }) {
                        let room = HEAD.saturating_sub(self.name.len()).min(bytes.len());
                        self.name.extend_from_slice(&bytes[..room]);
                    }
                    i += take as usize;
                    self.consume(take)?;
                    let left = left - take;
                    if left == 0 {
                        self.next_field();
                    } else if let PbState::Skip { left: l } | PbState::Name { left: l } =
                        &mut self.state
                    {
                        *l = left;
                    }
                }
                PbState::FamilyLength => {
                    let b = frame[i];
                    i += 1;
                    if let Some(len) = self.varint_byte(b)? {
                        self.family_left = len;
                        // An empty family has no fields (and no metrics).
                        self.next_field();
                    }
                }
                PbState::Tag => {
                    let b = frame[i];
                    i += 1;
                    self.consume(1)?;
                    if let Some(tag) = self.varint_byte(b)? {
                        let field = tag >> 3;
                        self.state = match tag & 7 {
                            0 => PbState::VarintValue,
                            1 => PbState::Skip { left: 8 },
                            2 => PbState::FieldLength { field },
                            5 => PbState::Skip { left: 4 },
                            w => return Err(format!("protobuf scrape: wire type {w}")),
                        };
                    }
                }
                PbState::VarintValue => {
                    let b = frame[i];
                    i += 1;
                    self.consume(1)?;
                    if self.varint_byte(b)?.is_some() {
                        self.next_field();
                    }
                }
                PbState::FieldLength { field } => {
                    let b = frame[i];
                    i += 1;
                    self.consume(1)?;
                    if let Some(len) = self.varint_byte(b)? {
                        if field == 4 {
                            self.metrics += 1;
                        }
                        self.state = if field == 1 {
                            PbState::Name { left: len }
                        } else {
                            PbState::Skip { left: len }
                        };
                        if len == 0 {
                            self.next_field();
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<ScrapeCount> {
        if self.state != PbState::FamilyLength || self.varint != (0, 0) {
            return Err("protobuf scrape: the body ends inside a family".into());
        }
        Ok(self.count)
    }
}

/// Counts only the bytes (a gzip body, timed without decompressing it).
#[derive(Debug, Default)]
pub struct SizeCounter(usize);

impl Counter for SizeCounter {
    fn feed(&mut self, frame: &[u8]) -> Result<()> {
        self.0 += frame.len();
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<ScrapeCount> {
        Ok(ScrapeCount {
            bytes: self.0,
            ..ScrapeCount::default()
        })
    }
}

/// Decompresses a gzip body (any number of members) as it streams in and counts its
/// text lines; `bytes` is the compressed size.
pub struct GzipTextCounter {
    decoder: flate2::write::MultiGzDecoder<TextCounter>,
    compressed: usize,
}

impl Default for GzipTextCounter {
    fn default() -> Self {
        GzipTextCounter {
            decoder: flate2::write::MultiGzDecoder::new(TextCounter::default()),
            compressed: 0,
        }
    }
}

impl Counter for GzipTextCounter {
    fn feed(&mut self, frame: &[u8]) -> Result<()> {
        self.compressed += frame.len();
        self.decoder
            .write_all(frame)
            .map_err(|e| format!("gzip scrape: {e}"))
    }

    fn finish(self: Box<Self>) -> Result<ScrapeCount> {
        let text = self
            .decoder
            .finish()
            .map_err(|e| format!("gzip scrape: {e}"))?;
        let mut c = Box::new(text).finish()?;
        c.bytes = self.compressed;
        Ok(c)
    }
}

/// Counts a whole text body in one frame.
#[cfg(test)]
fn count_text(body: &[u8]) -> ScrapeCount {
    let mut c = Box::new(TextCounter::default());
    // Text counting cannot fail.
    let _ = c.feed(body);
    c.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` split at every pair of positions (three frames) and checks that the
    /// counts never depend on where the frames end.
    fn split_everywhere(body: &[u8], make: fn() -> Box<dyn Counter>) -> ScrapeCount {
        let mut whole = make();
        whole.feed(body).unwrap();
        let expected = whole.finish().unwrap();
        for a in 0..=body.len() {
            for b in a..=body.len() {
                let mut c = make();
                for frame in [&body[..a], &body[a..b], &body[b..]] {
                    c.feed(frame).unwrap();
                }
                assert_eq!(c.finish().unwrap(), expected, "frames split at {a} and {b}");
            }
        }
        expected
    }

    #[test]
    fn text_lines_are_counted_wherever_the_frames_split() {
        let body = b"# HELP bench_load x\n# TYPE bench_load gauge\nbench_load{series=\"0\"} 1\n\
                     bench_load 2\nbench_loader{a=\"b\"} 3\nbench_lo 4\n\nup 1\nbench_load{x=\"1\"} 5";
        let c = split_everywhere(body, || Box::new(TextCounter::default()));
        assert_eq!(
            c,
            ScrapeCount {
                samples: 6,
                loaded: 3,
                bytes: body.len()
            }
        );
    }

    #[test]
    fn openmetrics_eof_is_a_comment() {
        let c = count_text(b"# TYPE bench_load unknown\nbench_load{series=\"0\"} 1.0\n# EOF\n");
        assert_eq!((c.samples, c.loaded), (1, 1));
    }

    fn pb_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
        out.push(field << 3 | 2);
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }

    /// A delimited family of `metrics` empty metrics, with a help and a type.
    fn pb_family(name: &str, metrics: usize) -> Vec<u8> {
        let mut f = Vec::new();
        pb_field(&mut f, 1, name.as_bytes());
        pb_field(&mut f, 2, b"help text");
        f.extend_from_slice(&[0x18, 0x01]);
        for j in 0..metrics {
            // A label pair and a gauge (a fixed64 inside), opaque to the counter.
            let mut m = Vec::new();
            pb_field(&mut m, 1, format!("\x0a\x06series\x12\x01{j}").as_bytes());
            pb_field(&mut m, 2, &[0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
            pb_field(&mut f, 4, &m);
        }
        let mut out = vec![f.len() as u8];
        out.extend_from_slice(&f);
        out
    }

    #[test]
    fn protobuf_metrics_are_counted_wherever_the_frames_split() {
        let mut body = pb_family("bench_load", 3);
        body.extend(pb_family("bench_loader", 2));
        body.extend(pb_family("up", 1));
        body.push(0); // an empty family
        body.extend(pb_family("bench_load", 1));
        let c = split_everywhere(&body, || Box::new(ProtobufCounter::default()));
        assert_eq!(
            c,
            ScrapeCount {
                samples: 7,
                loaded: 4,
                bytes: body.len()
            }
        );
    }

    #[test]
    fn protobuf_cut_short_or_overrunning_is_an_error() {
        let body = pb_family("bench_load", 2);
        let mut c = Box::new(ProtobufCounter::default());
        c.feed(&body[..body.len() - 1]).unwrap();
        assert!(c.finish().is_err());
        // A metric claiming more bytes than its family holds.
        let mut bad = body.clone();
        bad[0] -= 3;
        let mut c = Box::new(ProtobufCounter::default());
        assert!(c.feed(&bad).is_err());
    }

    #[test]
    fn gzip_members_are_decompressed_and_counted() {
        use flate2::write::GzEncoder;
        let mut body = Vec::new();
        for part in [
            "bench_load{series=\"0\"} 1\nup ",
            "1\nbench_load{series=\"1\"} 2\n",
        ] {
            let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part.as_bytes()).unwrap();
            body.extend(e.finish().unwrap());
        }
        let c = split_everywhere(&body, || Box::new(GzipTextCounter::default()));
        assert_eq!((c.samples, c.loaded, c.bytes), (3, 2, body.len()));
    }
}
