//! What only Redis mode has: the snapshot the leader writes to Redis, how long a fresh
//! replica takes to catch up from it, and the memory Redis needs per stored series.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::Result;
use crate::process::{Gateway, RedisServer};
use crate::report;
use crate::Bin;

/// How long to wait for a snapshot covering the loaded store: the gateway's default
/// `--storage.redis.snapshot-interval` (1m) plus the write itself at 10M series.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(15 * 60);
/// How long a fresh replica may take to load the snapshot and the stream after it.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The Redis-mode figures of one size.
#[derive(Debug, Clone)]
pub struct RedisFigures {
    /// RSS of redis-server before loading.
    pub redis_rss_empty: u64,
    /// RSS of redis-server after loading, the measurements and one full snapshot.
    pub redis_rss_loaded: u64,
    /// The leader's log fields of the first snapshot written after the measurements.
    pub snapshot: Option<SnapshotWrite>,
    /// From the start of a fresh replica until it is ready (snapshot loaded, stream
    /// applied).
    pub catch_up: Option<Duration>,
    /// RSS of that replica once ready.
    pub fresh_rss: Option<u64>,
}

/// One snapshot write, as the leader logged it.
#[derive(Debug, Clone)]
pub struct SnapshotWrite {
    /// How long the encoding and the upload took.
    pub seconds: f64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its number of chunks.
    pub chunks: u64,
}

const SNAPSHOT_MESSAGE: &str = "wrote the snapshot to Redis";

/// Waits for the next snapshot `gw` writes, then times a fresh replica's catch-up.
pub async fn measure(
    name: &str,
    bin: Bin<'_>,
    gw: &Gateway,
    redis: &RedisServer,
    redis_rss_empty: u64,
    dir: &Path,
) -> Result<RedisFigures> {
    let written_before = snapshot_lines(gw).len();
    println!("  {name}: waiting for a snapshot of the whole store ...");
    let start = Instant::now();
    let snapshot = loop {
        if let Some(line) = snapshot_lines(gw).get(written_before) {
            break parse_snapshot_line(line);
        }
        if start.elapsed() > SNAPSHOT_WAIT {
            println!("  {name}: no snapshot written within {SNAPSHOT_WAIT:?}");
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if let Some(s) = &snapshot {
        println!(
            "  {name}: snapshot written in {} ({}, {} chunks)",
            report::dur(Duration::from_secs_f64(s.seconds)),
            report::bytes(s.bytes as f64),
            s.chunks
        );
    }
    let redis_rss_loaded = redis.rss_bytes()?;
    let started = Instant::now();
    let mut fresh = bin
        .start(&["--persistence.file=".to_string()], &dir.join("fresh.log"))
        .await?;
    let (catch_up, fresh_rss) = match fresh.wait_ready(CATCH_UP_TIMEOUT).await {
        Ok(()) => (Some(started.elapsed()), fresh.rss_bytes().ok()),
        Err(e) => {
            println!("  {name}: the fresh replica did not catch up: {e}");
            (None, None)
        }
    };
    if let Some(t) = catch_up {
        println!("  {name}: a fresh replica caught up in {}", report::dur(t));
    }
    let _ = fresh.terminate(Duration::from_secs(60)).await;
    Ok(RedisFigures {
        redis_rss_empty,
        redis_rss_loaded,
        snapshot,
        catch_up,
        fresh_rss,
    })
}

fn snapshot_lines(gw: &Gateway) -> Vec<String> {
    gw.log_lines()
        .into_iter()
        .filter(|l| l.contains(SNAPSHOT_MESSAGE))
        .collect()
}

/// `seconds=`, `bytes=` and `chunks=` of a logfmt line.
fn parse_snapshot_line(line: &str) -> Option<SnapshotWrite> {
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string())
    };
    Some(SnapshotWrite {
        seconds: field("seconds")?.parse().ok()?,
        bytes: field("bytes")?.parse().ok()?,
        chunks: field("chunks")?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_line_gives_its_figures() {
        let line = r#"time=2026-01-01T00:00:00Z level=info msg="wrote the snapshot to Redis" position=10 generation=2 chunks=3 bytes=1234 seconds=0.5"#;
        let s = parse_snapshot_line(line).expect("parsed");
        assert_eq!((s.seconds, s.bytes, s.chunks), (0.5, 1234, 3));
        assert!(parse_snapshot_line("msg=other").is_none());
    }
}
