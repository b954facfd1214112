//! The workloads: loading the store, the latency of one small PUT, concurrent push
//! throughput, and scrapes.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::{BodySink, Conn, Result};
pub use crate::count::LOAD_METRIC;
use crate::count::{self, Counter, GzipTextCounter, ScrapeCount, SizeCounter};
use crate::process::Gateway;

/// Text-format body of `count` series of `metric`, every line ending in `\n`.
pub fn body(metric: &str, first: usize, count: usize, value: u64) -> Bytes {
    let mut s = String::with_capacity(count * 40);
    for j in first..first + count {
        let _ = writeln!(s, "{metric}{{series=\"{j}\"}} {value}");
    }
    Bytes::from(s)
}

/// Loads `n` series in groups of `group_size` (one PUT per group, `concurrency`
/// pushes in flight). Returns the time it took.
pub async fn load(
    addr: SocketAddr,
    n: usize,
    group_size: usize,
    concurrency: usize,
) -> Result<Duration> {
    let groups = n.div_ceil(group_size);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            loop {
                let g = next.fetch_add(1, Ordering::Relaxed);
                if g >= groups {
                    return Ok::<_, String>(());
                }
                let first = g * group_size;
                let count = group_size.min(n - first);
                let path = format!("/metrics/job/bench/group/load-{g}");
                conn.put_ok(&path, body(LOAD_METRIC, first, count, g as u64))
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(start.elapsed())
}

/// Scrapes until the store holds `n` loaded series, or until the count has not
/// grown for `stall` (a gateway may apply accepted pushes later, or serve before it
/// finished restoring). Returns the last count.
pub async fn wait_for_count(addr: SocketAddr, n: usize, stall: Duration) -> Result<ScrapeCount> {
    let mut conn = Conn::new(addr);
    let mut best = 0;
    let mut since = Instant::now();
    loop {
        let c = scrape_once(&mut conn, ScrapeFormat::Text).await?.count;
        if c.loaded > best {
            best = c.loaded;
            since = Instant::now();
        }
        if c.loaded == n || since.elapsed() >= stall {
            return Ok(c);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Scrapes `gw` (retrying every 10 ms while it does not answer yet) until a scrape
/// holds `n` loaded series; the time from `since` to the end of that scrape's body.
/// Gives up after `timeout`, or when the gateway exits.
pub async fn until_complete(
    gw: &mut Gateway,
    n: usize,
    since: Instant,
    timeout: Duration,
) -> Result<Duration> {
    let mut conn = Conn::new(gw.addr);
    let mut last = String::from("no answer");
    while since.elapsed() < timeout {
        if let Some(e) = gw.exited() {
            return Err(e);
        }
        match scrape_once(&mut conn, ScrapeFormat::Text).await {
            Ok(s) if s.count.loaded == n => return Ok(since.elapsed()),
            Ok(s) => last = format!("{} of {n} loaded series", s.count.loaded),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!(
        "no scrape held all {n} series within {timeout:?} (last: {last})"
    ))
}

/// Latency figures of sequential PUTs.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// PUTs measured.
    pub samples: usize,
    /// Median.
    pub median: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
}

/// Nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Times up to `max` sequential 10-series PUTs replacing one group, stopping early
/// once `budget` is spent (at least `min` are made). Three warm-up PUTs are not
/// counted.
pub async fn put_latency(
    addr: SocketAddr,
    max: usize,
    min: usize,
    budget: Duration,
) -> Result<Latency> {
    let mut conn = Conn::new(addr);
    let path = "/metrics/job/bench/group/probe";
    for i in 0..3 {
        conn.put_ok(path, body("bench_probe", 0, 10, i)).await?;
    }
    let mut times = Vec::with_capacity(max);
    let start = Instant::now();
    for i in 0..max {
        if i >= min && start.elapsed() > budget {
            break;
        }
        let b = body("bench_probe", 0, 10, 1000 + i as u64);
        let t = Instant::now();
        conn.put_ok(path, b).await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(Latency {
        samples: times.len(),
        median: percentile(&times, 50.0),
        p99: percentile(&times, 99.0),
    })
}

/// Content type of delimited protobuf pushes.
pub const PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// A delimited `io.prometheus.client.MetricFamily` of `count` gauges labelled `series`,
/// encoded by hand (the schema's field numbers) so the benchmark needs no protobuf crate.
pub fn protobuf_body(metric: &str, count: usize, value: u64) -> Bytes {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
        out.push(tag);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    let mut family = Vec::new();
    field(&mut family, 0x0a, metric.as_bytes()); // name = 1
    family.extend_from_slice(&[0x18, 0x01]); // type = 3: GAUGE
    for j in 0..count {
        let mut label = Vec::new();
        field(&mut label, 0x0a, b"series"); // name = 1
        field(&mut label, 0x12, j.to_string().as_bytes()); // value = 2
        let mut gauge = vec![0x09]; // value = 1, double
        gauge.extend_from_slice(&(value as f64).to_le_bytes());
        let mut m = Vec::new();
        field(&mut m, 0x0a, &label); // label = 1
        field(&mut m, 0x12, &gauge); // gauge = 2
        field(&mut family, 0x22, &m); // metric = 4
    }
    let mut out = Vec::new();
    varint(&mut out, family.len() as u64);
    out.extend_from_slice(&family);
    Bytes::from(out)
}

/// Like [`put_latency`], with 10-series delimited protobuf bodies.
pub async fn put_latency_protobuf(
    addr: SocketAddr,
    max: usize,
    min: usize,
    budget: Duration,
) -> Result<Latency> {
    let mut conn = Conn::new(addr);
    let path = "/metrics/job/bench/group/probe-protobuf";
    let headers = [("content-type", PROTOBUF)];
    let mut times = Vec::with_capacity(max);
    let start = Instant::now();
    for i in 0..max + 3 {
        if i >= min + 3 && start.elapsed() > budget {
            break;
        }
        let b = protobuf_body("bench_probe_protobuf", 10, i as u64);
        let t = Instant::now();
        let (status, _) = conn
            .request_with(hyper::Method::PUT, path, b, &headers)
            .await?;
        if !status.is_success() {
            return Err(format!("protobuf PUT {path}: {status}"));
        }
        // The first three are warm-up.
        if i >= 3 {
            times.push(t.elapsed());
        }
    }
    times.sort();
    Ok(Latency {
        samples: times.len(),
        median: percentile(&times, 50.0),
        p99: percentile(&times, 99.0),
    })
}

/// Concurrent push figures.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Successful pushes.
    pub pushes: usize,
    /// Failed pushes.
    pub errors: usize,
    /// From the start until the last in-flight push answered.
    pub elapsed: Duration,
}

impl Throughput {
    /// Successful pushes per second.
    pub fn per_sec(&self) -> f64 {
        self.pushes as f64 / self.elapsed.as_secs_f64()
    }
}

/// How long pushes still in flight at the end of a throughput run are awaited.
pub const MAX_DRAIN: Duration = Duration::from_secs(120);

/// `connections` workers, each on its own connection and its own group, PUT 10
/// series back to back until `duration` has passed; pushes still in flight then
/// are awaited (at most [`MAX_DRAIN`]) and counted, and so is the time they took.
pub async fn throughput(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
) -> Result<Throughput> {
    let start = Instant::now();
    let deadline = start + duration;
    let hard_deadline = deadline + MAX_DRAIN;
    let mut tasks = Vec::new();
    for w in 0..connections {
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let path = format!("/metrics/job/bench/group/tp-{w}");
            let (mut ok, mut errors) = (0usize, 0usize);
            let mut first_error = None;
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let push = conn.put_ok(&path, body("bench_tp", 0, 10, i));
                match tokio::time::timeout_at(hard_deadline.into(), push).await {
                    Ok(Ok(())) => ok += 1,
                    Ok(Err(e)) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                    Err(_) => {
                        errors += 1;
                        first_error.get_or_insert(format!(
                            "no answer within {MAX_DRAIN:?} after the end of the run"
                        ));
                    }
                }
            }
            (ok, errors, first_error)
        }));
    }
    let mut r = Throughput {
        pushes: 0,
        errors: 0,
        elapsed: Duration::ZERO,
    };
    let mut first_error = None;
    for t in tasks {
        let (ok, errors, e) = t.await.map_err(|e| e.to_string())?;
        r.pushes += ok;
        r.errors += errors;
        if first_error.is_none() {
            first_error = e;
        }
    }
    r.elapsed = start.elapsed();
    if let Some(e) = first_error {
        eprintln!("    ! {} pushes failed, first: {e}", r.errors);
    }
    Ok(r)
}

/// What a scrape asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrapeFormat {
    /// Text 0.0.4.
    Text,
    /// Text 0.0.4 with `Accept-Encoding: gzip`; timed without decompressing.
    Gzip,
    /// Delimited protobuf.
    Protobuf,
    /// OpenMetrics 1.0.0 (ours serves it with `--web.enable-openmetrics`; the reference
    /// answers text 0.0.4).
    OpenMetrics,
}

/// `Accept` of protobuf scrapes (as Prometheus sends it).
pub const PROTOBUF_ACCEPT: &str =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
/// `Accept` of OpenMetrics scrapes.
pub const OPENMETRICS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0";

impl ScrapeFormat {
    /// The request headers that ask for this format.
    fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ScrapeFormat::Text => &[],
            ScrapeFormat::Gzip => &[("accept-encoding", "gzip")],
            ScrapeFormat::Protobuf => &[("accept", PROTOBUF_ACCEPT)],
            ScrapeFormat::OpenMetrics => &[("accept", OPENMETRICS_ACCEPT)],
        }
    }

    /// Whether a response with `content_type` is in the format asked for.
    pub fn negotiated(self, content_type: &str) -> bool {
        match self {
            ScrapeFormat::Text | ScrapeFormat::Gzip => content_type.starts_with("text/plain"),
            ScrapeFormat::Protobuf => content_type.starts_with("application/vnd.google.protobuf"),
            ScrapeFormat::OpenMetrics => content_type.starts_with("application/openmetrics-text"),
        }
    }
}

/// Counts a scrape's body as it streams in, by the format the gateway answered with.
struct CountingSink {
    status: hyper::StatusCode,
    content_type: String,
    gzipped: bool,
    /// gzip: count only the bytes (timed scrapes), or also decompress and count lines.
    gzip: Option<GzipCount>,
    counter: Option<Box<dyn Counter>>,
}

/// How a gzip body is counted.
#[derive(Clone, Copy, PartialEq)]
enum GzipCount {
    Size,
    Lines,
}

impl BodySink for CountingSink {
    fn head(&mut self, status: hyper::StatusCode, content_type: &str, content_encoding: &str) {
        self.status = status;
        self.content_type = content_type.to_string();
        let gzipped = content_encoding.eq_ignore_ascii_case("gzip");
        self.gzipped = gzipped;
        self.counter = Some(match self.gzip {
            Some(GzipCount::Size) => Box::new(SizeCounter::default()),
            Some(GzipCount::Lines) if gzipped => Box::new(GzipTextCounter::default()),
            _ => count::for_content_type(content_type),
        });
    }

    fn frame(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.counter {
            Some(c) => c.feed(data),
            None => Err("a body before the head".into()),
        }
    }
}

/// One scrape's outcome.
pub struct Scraped {
    /// What it held.
    pub count: ScrapeCount,
    /// Its `Content-Type`.
    pub content_type: String,
}

/// One full `GET /metrics` in `format`, counted as it streams in.
pub async fn scrape_once(conn: &mut Conn, format: ScrapeFormat) -> Result<Scraped> {
    scrape_counted(
        conn,
        format,
        (format == ScrapeFormat::Gzip).then_some(GzipCount::Lines),
    )
    .await
}

async fn scrape_counted(
    conn: &mut Conn,
    format: ScrapeFormat,
    gzip: Option<GzipCount>,
) -> Result<Scraped> {
    let mut sink = CountingSink {
        status: hyper::StatusCode::OK,
        content_type: String::new(),
        gzipped: false,
        gzip,
        counter: None,
    };
    conn.stream_with(
        hyper::Method::GET,
        "/metrics",
        Bytes::new(),
        format.headers(),
        &mut sink,
    )
    .await?;
    if sink.status != hyper::StatusCode::OK {
        return Err(format!("GET /metrics ({format:?}): {}", sink.status));
    }
    let counter = sink.counter.ok_or("GET /metrics: no response")?;
    if gzip.is_some() && !sink.gzipped {
        return Err("asked for gzip, answered without Content-Encoding: gzip".into());
    }
    Ok(Scraped {
        count: counter.finish()?,
        content_type: sink.content_type,
    })
}

/// Scrape figures.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// Scrapes made.
    pub samples: usize,
    /// Median time to the end of the body.
    pub median: Duration,
    /// Body size of the last scrape (compressed when gzip).
    pub bytes: usize,
    /// Samples of the last scrape: sample lines of a text format, metrics of protobuf
    /// (for gzip: of the decompressed check scrape).
    pub series: usize,
    /// Loaded series ([`count::LOAD_METRIC`]) in the last scrape (for gzip: in the
    /// decompressed check scrape).
    pub loaded: usize,
    /// `Content-Type` of the answers.
    pub content_type: String,
}

impl Scrape {
    /// Whether the gateway answered in the format asked for.
    pub fn negotiated(&self, format: ScrapeFormat) -> bool {
        format.negotiated(&self.content_type)
    }
}

/// Up to `max` sequential full text `GET /metrics` (at least `min`, then stopping once
/// `budget` is spent).
pub async fn scrape(addr: SocketAddr, max: usize, min: usize, budget: Duration) -> Result<Scrape> {
    scrape_as(addr, ScrapeFormat::Text, max, min, budget).await
}

/// Like [`scrape`], in `format`. Each body is counted while it streams in (a gzip body
/// only by its size: one more scrape, untimed, decompresses it to count its series).
pub async fn scrape_as(
    addr: SocketAddr,
    format: ScrapeFormat,
    max: usize,
    min: usize,
    budget: Duration,
) -> Result<Scrape> {
    let mut conn = Conn::new(addr);
    let gzip = (format == ScrapeFormat::Gzip).then_some(GzipCount::Size);
    let mut times = Vec::new();
    let mut last = None;
    let start = Instant::now();
    for i in 0..max.max(1) {
        if i >= min && start.elapsed() > budget {
            break;
        }
        let t = Instant::now();
        let s = scrape_counted(&mut conn, format, gzip).await?;
        times.push(t.elapsed());
        last = Some(s);
    }
    let last = last.ok_or("no scrape made")?;
    let counted = match format {
        ScrapeFormat::Gzip => scrape_once(&mut conn, format).await?.count,
        _ => last.count,
    };
    times.sort();
    Ok(Scrape {
        samples: times.len(),
        median: percentile(&times, 50.0),
        bytes: last.count.bytes,
        series: counted.samples,
        loaded: counted.loaded,
        content_type: last.content_type,
    })
}
