//! `--aggregate`: aggregating pushes, ours (`/aggregate/metrics/job/...`) side by side with
//! gravel-gateway (`/metrics/job/...`, which sums by default), each started empty on
//! loopback, one after the other:
//!
//! - pushes per second into one group: `--connections` workers POST the same 10 counter
//!   series to one group back to back for `--throughput-secs` (the scraped sum is checked);
//! - pushes per second into 10k groups: the same, each push to the next of 10,000 groups;
//! - the scrape at `--aggregate-series` aggregated series (default 1M): loaded by
//!   aggregating pushes of `--group-size` series, one group each, for at most
//!   `--aggregate-load-budget-secs`, then full scrapes timed (at what was loaded).
//!
//! Ours runs in memory (no persistence), as gravel does; `--ours-arg` adds flags.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;

use crate::client::{Conn, Result};
use crate::measure::{self, Scrape, Throughput};
use crate::process::{Gateway, PortReport};
use crate::Args;

/// The aggregated counter's name.
const METRIC: &str = "bench_agg_total";
/// Groups of the many-groups run.
const MANY_GROUPS: usize = 10_000;
/// Series in each push of the throughput runs.
const SERIES_PER_PUSH: usize = 10;

/// One side of the comparison.
struct Side {
    name: &'static str,
    /// The push path's prefix: `/aggregate` for ours, nothing for gravel.
    prefix: &'static str,
    bin: PathBuf,
    args: Vec<String>,
    report: PortReport,
}

/// What was measured for one side.
#[derive(Default)]
struct Figures {
    one_group: Option<(Throughput, Duration)>,
    one_group_sum_ok: bool,
    many_groups: Option<(Throughput, Duration)>,
    load: Option<(Duration, usize)>,
    scrape: Option<Scrape>,
    rss_per_series: Option<f64>,
}

/// A text body of `count` counter series, each with value 1.
fn body(first: usize, count: usize) -> Bytes {
    let mut s = format!("# TYPE {METRIC} counter\n");
    for j in first..first + count {
        let _ = writeln!(s, "{METRIC}{{series=\"{j}\"}} 1");
    }
    Bytes::from(s)
}

async fn post_ok(conn: &mut Conn, path: &str, body: Bytes) -> Result<()> {
    let (status, resp) = conn.request(Method::POST, path, body).await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "POST {path}: {status}: {}",
            String::from_utf8_lossy(&resp[..resp.len().min(300)]).trim()
        ))
    }
}

/// `connections` workers POST 10 series back to back for `duration`; `group(n)` names the
/// group of the n-th push overall. Returns the pushes and the gateway's CPU time.
async fn throughput(
    gw: &Gateway,
    side: &Side,
    connections: usize,
    duration: Duration,
    group: fn(usize) -> usize,
) -> Result<(Throughput, Duration)> {
    let cpu_before = gw.cpu_time()?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (addr, prefix, next) = (gw.addr, side.prefix, next.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let (mut ok, mut errors, mut first_error) = (0usize, 0usize, None);
            let payload = body(0, SERIES_PER_PUSH);
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let path = format!("{prefix}/metrics/job/bench/group/g{}", group(n));
                match post_ok(&mut conn, &path, payload.clone()).await {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (ok, errors, first_error)
        }));
    }
    let mut result = Throughput {
        pushes: 0,
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (ok, errors, first_error) = task.await.map_err(|e| e.to_string())?;
        result.pushes += ok;
        result.errors += errors;
        if let Some(e) = first_error {
            eprintln!("    ! {errors} pushes failed, first: {e}");
        }
    }
    result.elapsed = start.elapsed();
    let cpu = gw.cpu_time()?.saturating_sub(cpu_before);
    Ok((result, cpu))
}

/// The scraped value of the first series of group `g0`, to check the sum.
async fn first_sum(gw: &Gateway) -> Result<Option<f64>> {
    let text = Conn::new(gw.addr).get_ok("/metrics").await?;
    let text = String::from_utf8_lossy(&text);
    Ok(text
        .lines()
        .filter(|l| l.starts_with(&format!("{METRIC}{{")))
        .filter(|l| l.contains("series=\"0\"") && l.contains("group=\"g0\""))
        .find_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok())))
}

/// Loads `n` series by aggregating pushes of `group_size`, one group each, for at most
/// `budget` (a gateway whose cost grows with what it stores may not get there). Returns the
/// time it took and the series loaded.
async fn load(
    gw: &Gateway,
    side: &Side,
    n: usize,
    group_size: usize,
    concurrency: usize,
    budget: Duration,
) -> Result<(Duration, usize)> {
    let groups = n.div_ceil(group_size);
    let next = Arc::new(AtomicUsize::new(0));
    let loaded = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + budget;
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (addr, prefix) = (gw.addr, side.prefix);
        let (next, loaded) = (next.clone(), loaded.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            loop {
                let g = next.fetch_add(1, Ordering::Relaxed);
                if g >= groups || Instant::now() > deadline {
                    return Ok::<_, String>(());
                }
                let count = group_size.min(n - g * group_size);
                let path = format!("{prefix}/metrics/job/bench/group/load-{g}");
                post_ok(&mut conn, &path, body(0, count)).await?;
                loaded.fetch_add(count, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok((start.elapsed(), loaded.load(Ordering::Relaxed)))
}

async fn measure_side(args: &Args, side: &Side, work: &Path) -> Result<Figures> {
    let mut figures = Figures::default();
    let log = work.join(format!("aggregate-{}.log", side.name));
    let mut gw = Gateway::start_program(&side.bin, side.report, &side.args, &log).await?;
    gw.wait_ready(Duration::from_secs(60)).await?;
    let duration = Duration::from_secs(args.throughput_secs);

    let one = throughput(&gw, side, args.connections, duration, |_| 0).await?;
    let sum = first_sum(&gw).await?;
    figures.one_group_sum_ok = sum == Some(one.0.pushes as f64);
    println!(
        "  {:<8} one group:  {:>9.0} pushes/s, {:.3} ms CPU/push, sum {}",
        side.name,
        one.0.per_sec(),
        one.1.as_secs_f64() * 1e3 / one.0.pushes.max(1) as f64,
        if figures.one_group_sum_ok {
            "ok"
        } else {
            "WRONG"
        }
    );
    figures.one_group = Some(one);

    let many = throughput(&gw, side, args.connections, duration, |n| n % MANY_GROUPS).await?;
    println!(
        "  {:<8} 10k groups: {:>9.0} pushes/s, {:.3} ms CPU/push",
        side.name,
        many.0.per_sec(),
        many.1.as_secs_f64() * 1e3 / many.0.pushes.max(1) as f64
    );
    figures.many_groups = Some(many);
    drop(gw);

    // A fresh gateway for the scrape at N aggregated series.
    let mut gw = Gateway::start_program(&side.bin, side.report, &side.args, &log).await?;
    gw.wait_ready(Duration::from_secs(60)).await?;
    measure::scrape(gw.addr, 1, 1, Duration::ZERO).await?;
    let rss_empty = gw.rss_bytes()?;
    let n = args.aggregate_series;
    let load_budget = Duration::from_secs(args.aggregate_load_budget_secs);
    let (took, loaded) = load(
        &gw,
        side,
        n,
        args.group_size,
        args.load_connections,
        load_budget,
    )
    .await?;
    figures.load = Some((took, loaded));
    let budget = Duration::from_secs(args.scrape_budget_secs);
    let scrape = measure::scrape(gw.addr, args.scrapes, 3, budget).await?;
    figures.rss_per_series =
        Some((gw.rss_bytes()? as f64 - rss_empty as f64) / loaded.max(1) as f64);
    println!(
        "  {:<8} {} of {} series loaded in {:.1} s; scrape {:.0} ms median, {} series, {:.1} MB",
        side.name,
        loaded,
        crate::size_label(n),
        took.as_secs_f64(),
        scrape.median.as_secs_f64() * 1e3,
        scrape.series,
        scrape.bytes as f64 / 1e6
    );
    figures.scrape = Some(scrape);
    Ok(figures)
}

/// Runs ours and gravel-gateway and prints the table (also written next to `--out`).
pub async fn run(args: &Args, work: &Path) -> Result<()> {
    let gravel = args
        .gravel
        .clone()
        .ok_or("--gravel names the gravel-gateway binary (ci/bench/run --aggregate installs it)")?;
    let mut ours_args = vec!["--web.listen-address=127.0.0.1:0".to_string()];
    ours_args.extend(args.ours_arg.iter().cloned());
    let sides = [
        Side {
            name: "ours",
            prefix: "/aggregate",
            bin: args.ours.clone(),
            args: ours_args,
            report: PortReport::Proc,
        },
        Side {
            name: "gravel",
            prefix: "",
            bin: gravel,
            args: vec!["-l".into(), "127.0.0.1:0".into()],
            report: PortReport::Proc,
        },
    ];
    println!(
        "aggregate benchmark: {} vs {} (load average {})",
        args.ours.display(),
        sides[1].bin.display(),
        crate::loadavg()
    );
    let mut results = Vec::new();
    for side in &sides {
        match measure_side(args, side, work).await {
            Ok(f) => results.push((side.name, f)),
            Err(e) => {
                println!("  {}: FAILED: {e}", side.name);
                results.push((side.name, Figures::default()));
            }
        }
    }
    let md = markdown(args, &results);
    println!("\n{md}");
    let out = args.out.with_file_name("aggregate.md");
    if let Some(parent) = out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&out, &md).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("written to {}", out.display());
    Ok(())
}

fn markdown(args: &Args, results: &[(&str, Figures)]) -> String {
    let rate = |t: &Option<(Throughput, Duration)>| {
        t.as_ref().map_or("failed".into(), |(t, cpu)| {
            format!(
                "{:.0}/s ({:.3} ms CPU each)",
                t.per_sec(),
                cpu.as_secs_f64() * 1e3 / t.pushes.max(1) as f64
            )
        })
    };
    let mut md = format!(
        "| gateway | pushes into one group | sum right | pushes into 10k groups | load {} series | scrape at {} series | scrape size | RSS per series |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
        crate::size_label(args.aggregate_series),
        crate::size_label(args.aggregate_series)
    );
    for (name, f) in results {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            rate(&f.one_group),
            if f.one_group_sum_ok { "yes" } else { "no" },
            rate(&f.many_groups),
            f.load.map_or("failed".into(), |(d, loaded)| {
                if loaded < args.aggregate_series {
                    format!(
                        "{} series in {:.0} s (budget spent)",
                        loaded,
                        d.as_secs_f64()
                    )
                } else {
                    format!("{:.1} s", d.as_secs_f64())
                }
            }),
            f.scrape.as_ref().map_or("failed".into(), |s| format!(
                "{:.0} ms ({} series)",
                s.median.as_secs_f64() * 1e3,
                s.series
            )),
            f.scrape
                .as_ref()
                .map_or("-".into(), |s| format!("{:.1} MB", s.bytes as f64 / 1e6)),
            f.rss_per_series.map_or("-".into(), |r| format!("{r:.0} B")),
        );
    }
    let _ = writeln!(
        md,
        "\n{} connections, {} series per push, {} s per throughput run; {} series per loading push. Ours in memory, no persistence (as gravel).",
        args.connections, SERIES_PER_PUSH, args.throughput_secs, args.group_size
    );
    md
}
