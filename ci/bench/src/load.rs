//! Filling a gateway with N series before it is measured: through its persistence file
//! and a restart (timed), or with checked pushes into a gateway without persistence.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::Result;
use crate::process::Gateway;
use crate::{measure, report, Args, Bin};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const RESTORE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a gateway may take to stop (and persist) after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(300);

/// How long loading with checked pushes may take: it must be cheap for ours (a minute
/// per million series is generous), upstream's would take hours at 1M.
fn checked_load_timeout(n: usize) -> Duration {
    Duration::from_secs(180).max(Duration::from_secs(60 * n.div_ceil(1_000_000) as u64))
}

/// A loaded gateway, ready to be measured.
pub struct Loaded {
    /// The process to measure.
    pub gw: Gateway,
    /// Its RSS when it was empty (after one scrape).
    pub rss_empty: u64,
    /// How it was loaded, for the report.
    pub mode: String,
    /// From its exec to the end of the first scrape holding every series (when it was
    /// restarted from persistence).
    pub restart: Option<Duration>,
}

/// A gateway started empty: the process and its RSS after one scrape.
pub async fn start_empty(bin: Bin<'_>, args: &[String], log: &Path) -> Result<(Gateway, u64)> {
    let mut gw = bin.start(args, log).await?;
    gw.wait_ready(READY_TIMEOUT).await?;
    measure::scrape(gw.addr, 1, 1, Duration::ZERO).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss = gw.rss_bytes()?;
    Ok((gw, rss))
}

/// Bytes of everything in `dir` whose name starts with `prefix` (a persistence file
/// may come with side files or be a directory).
fn persisted_bytes(dir: &Path, prefix: &str) -> u64 {
    fn walk(p: &Path) -> u64 {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| walk(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// Loads without the consistency check, stops (persisting), restarts from the
/// persistence file with the check on. Returns the restarted gateway, the empty RSS
/// and a description.
pub async fn via_restore(args: &Args, bin: Bin<'_>, n: usize, dir: &Path) -> Result<Loaded> {
    let file = dir.join("store.data");
    // A previous run's persistence (and its side files) must not be restored.
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with("store.data") {
            let p = e.path();
            let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir_all(&p));
        }
    }
    let file_flag = format!("--persistence.file={}", file.display());
    let load_args = vec![
        file_flag.clone(),
        format!("--persistence.interval={}", args.load_persistence_interval),
        "--push.disable-consistency-check".to_string(),
    ];
    let (gw, rss_empty) = start_empty(bin, &load_args, &dir.join("load.log")).await?;
    let t0 = Instant::now();
    let load_time = measure::load(gw.addr, n, args.group_size, args.load_connections).await?;
    // Unchecked pushes may be answered (202) before they are applied: make sure the
    // store holds everything before it is persisted.
    let c = measure::wait_for_count(gw.addr, n, Duration::from_secs(30)).await?;
    if c.loaded != n {
        return Err(format!(
            "after unchecked loading, the scrape holds {} of {n} loaded series",
            c.loaded
        ));
    }
    let applied = t0.elapsed();
    let stop_time = gw.terminate(STOP_TIMEOUT).await?;
    let size = persisted_bytes(dir, "store.data");
    if size == 0 {
        return Err("no persistence written on SIGTERM".into());
    }
    // Restart: from exec to the end of the first scrape that holds every series.
    let t = Instant::now();
    let measure_args = vec![file_flag, "--persistence.interval=1h".to_string()];
    let mut gw = bin.start(&measure_args, &dir.join("measure.log")).await?;
    let restore_time = measure::until_complete(&mut gw, n, t, RESTORE_TIMEOUT)
        .await
        .map_err(|e| format!("restarted from persistence: {e}"))?;
    let mode = format!(
        "unchecked pushes ({}/group) in {} (all in the scrape after {}), SIGTERM+persist in {}, \
         restart (checked) from {} persisted in {}; measured with the persistence file \
         (interval 1h)",
        args.group_size,
        report::dur(load_time),
        report::dur(applied),
        report::dur(stop_time),
        report::bytes(size as f64),
        report::dur(restore_time)
    );
    Ok(Loaded {
        gw,
        rss_empty,
        mode,
        restart: Some(restore_time),
    })
}

/// Loads a gateway running with the consistency check directly with checked pushes;
/// `how` describes its storage for the report.
pub async fn checked(args: &Args, bin: Bin<'_>, n: usize, dir: &Path, how: &str) -> Result<Loaded> {
    let direct_args = vec!["--persistence.file=".to_string()];
    let (gw, rss_empty) = start_empty(bin, &direct_args, &dir.join("direct.log")).await?;
    let loading = measure::load(gw.addr, n, args.group_size, args.load_connections);
    let timeout = checked_load_timeout(n);
    let load_time = tokio::time::timeout(timeout, loading)
        .await
        .map_err(|_| format!("checked loading took longer than {timeout:?}; given up"))??;
    let c = measure::wait_for_count(gw.addr, n, Duration::from_secs(10)).await?;
    if c.loaded != n {
        return Err(format!(
            "after loading, the scrape holds {} of {n} loaded series",
            c.loaded
        ));
    }
    let mode = format!(
        "checked pushes ({}/group) into the measured process ({how}) in {}",
        args.group_size,
        report::dur(load_time)
    );
    Ok(Loaded {
        gw,
        rss_empty,
        mode,
        restart: None,
    })
}
