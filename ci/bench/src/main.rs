//! Side-by-side benchmark of our Pushgateway and the upstream reference.
//!
//! For each stored size N (10k, 100k, 1M, 10M series) and each gateway it loads N
//! series, then measures on loopback: the latency of a 10-series PUT to one group
//! (sequential), concurrent push throughput (10-series PUTs, one group per
//! connection), scrape time and size in text, gzip, protobuf and OpenMetrics (each
//! body counted as it streams in, `count`), the restart from persistence, and resident
//! memory per stored series. It prints the figures with the ratio ours/reference,
//! checks them against the targets at 1M and issue #22's at 1M and 10M (`scale`), and
//! writes a markdown table to `ci/artifacts/bench.md`. Above 1M the reference is not
//! run (its smaller figures are shown for scale) and ours is measured in memory mode
//! too (`ours-memory`).
//!
//! Loading: upstream re-checks the whole store on every checked push, so N series
//! are first pushed with `--push.disable-consistency-check` in large groups into a
//! gateway with a persistence file, which is then stopped (SIGTERM writes the file)
//! and restarted from it with the check enabled; the measurements run on that
//! restarted process. When ours cannot do this (e.g. no persistence), or with
//! `--ours-load checked`, ours is loaded directly with checked pushes into a gateway
//! without persistence instead; the report says which was done.
//!
//! `ours-redis` is ours in replicated mode (`--storage=redis`) against a redis-server
//! the benchmark starts for it at each size (append-only file on, `--appendfsync`
//! from `--redis-appendfsync`); it is loaded with checked pushes and measured like the
//! others, and reported in a section of its own with the ratios to ours in memory
//! mode and to the reference, plus what only Redis mode has (`redis_mode`): the
//! snapshot write, a fresh replica's catch-up, and redis-server's memory per series.
//!
//! Run it with `ci/bench/run` (builds both binaries); it is a benchmark, not a test.

mod aggregate;
mod attack;
mod attack_otlp;
mod client;
mod count;
mod load;
mod matcher;
mod measure;
mod process;
mod procnet;
mod quotas;
mod redis_mode;
mod report;
mod scale;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{CommandFactory, FromArgMatches, Parser};

use client::Result;
use measure::{Latency, Scrape, ScrapeFormat, Throughput};
use process::{Gateway, PortReport, RedisServer};

/// Command-line flags.
#[derive(Parser, Debug, Clone)]
#[command(about = "Side-by-side benchmark: our pushgateway vs the upstream reference")]
pub struct Args {
    /// Our gateway binary (any binary with upstream's flags works, e.g. the reference
    /// itself to try the benchmark out).
    #[arg(long)]
    pub ours: PathBuf,
    /// The upstream reference binary (not needed with `--attack`, `--matcher-delete`,
    /// `--quotas` or `--aggregate`).
    #[arg(long, required_unless_present_any = ["attack", "matcher_delete", "quotas", "aggregate"])]
    pub reference: Option<PathBuf>,
    /// Instead of the comparison: the CPU cost of hostile requests to ours at its
    /// default limits, next to a normal push (see `attack.rs`).
    #[arg(long)]
    pub attack: bool,
    /// Instead of the comparison: a matcher delete of a tenth of the groups of ours loaded
    /// with the largest `--sizes` total, next to the same groups deleted one by one (see
    /// `matcher.rs`).
    #[arg(long)]
    pub matcher_delete: bool,
    /// Instead of the comparison: the latency of pushes to ours with 100 quota rules in
    /// place, next to none (see `quotas.rs`).
    #[arg(long)]
    pub quotas: bool,
    /// Instead of the comparison: aggregating pushes side by side with gravel-gateway
    /// (see `aggregate.rs`).
    #[arg(long)]
    pub aggregate: bool,
    /// The gravel-gateway binary of `--aggregate`.
    #[arg(long)]
    pub gravel: Option<PathBuf>,
    /// Aggregated series stored for the scrape of `--aggregate` (10k, 100k, 1M, ...).
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    pub aggregate_series: usize,
    /// Seconds `--aggregate` may spend loading them into one gateway; the scrape is then
    /// timed at what was loaded.
    #[arg(long, default_value_t = 300)]
    pub aggregate_load_budget_secs: u64,
    /// Stored totals to measure at, comma-separated: 10k, 100k, 1M (or 1m), 10M, or plain
    /// numbers; run smallest first. Above 1M the reference is not run (its figures at
    /// the largest size up to 1M are shown for scale) and ours runs in memory mode too.
    #[arg(long, default_value = "10k,100k", value_delimiter = ',', value_parser = parse_size)]
    pub sizes: Vec<usize>,
    /// Which gateways to run, comma-separated: ours, reference, ours-redis (ours with
    /// `--storage=redis` against a redis-server of its own, started per size),
    /// ours-memory (ours without persistence, loaded with checked pushes, measured for
    /// #22's memory-mode figures only; added by itself above 1M). Above 1M ours-redis runs
    /// only when named here.
    #[arg(
        long,
        default_value = "ours,reference,ours-redis",
        value_delimiter = ','
    )]
    pub gateways: Vec<String>,
    /// Whether `--gateways` was given (not a flag: set from the command line).
    #[arg(skip)]
    pub gateways_given: bool,
    /// The redis-server binary of `ours-redis` (Debian redis-server).
    #[arg(long, default_value = "redis-server")]
    pub redis_server: PathBuf,
    /// `--appendfsync` of that redis-server (its append-only file is on, RDB snapshots
    /// off); `everysec` is the chart's default, `always` fsyncs every push.
    #[arg(long, default_value = "everysec", value_parser = ["always", "everysec", "no"])]
    pub redis_appendfsync: String,
    /// Sequential 10-series PUTs timed per size (at most).
    #[arg(long, default_value_t = 300)]
    pub put_samples: usize,
    /// Time budget of the sequential PUTs in seconds (at least 10 PUTs are made).
    #[arg(long, default_value_t = 30)]
    pub put_budget_secs: u64,
    /// Concurrent connections of the throughput run.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Duration of the throughput run in seconds (pushes in flight are awaited).
    #[arg(long, default_value_t = 5)]
    pub throughput_secs: u64,
    /// Scrapes timed per size (at most).
    #[arg(long, default_value_t = 7)]
    pub scrapes: usize,
    /// Time budget of the scrapes in seconds (at least 3 are made).
    #[arg(long, default_value_t = 30)]
    pub scrape_budget_secs: u64,
    /// Series per group when loading.
    #[arg(long, default_value_t = 1000)]
    pub group_size: usize,
    /// Concurrent connections when loading.
    #[arg(long, default_value_t = 4)]
    pub load_connections: usize,
    /// What ours was built from, for the report (default: the checked-out commit when
    /// ours lies inside this checkout).
    #[arg(long)]
    pub ours_rev: Option<String>,
    /// How ours is loaded: `restore` (like the reference: unchecked pushes, SIGTERM,
    /// restart from the persistence file, falling back to `checked` when that fails)
    /// or `checked` (checked pushes into a gateway without persistence).
    #[arg(long, default_value = "restore", value_parser = ["restore", "checked"])]
    pub ours_load: String,
    /// A flag added to every start of ours, e.g. `--ours-arg=--persistence.fsync=interval`
    /// (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    pub ours_arg: Vec<String>,
    /// Threads of the benchmark client (its pushes and scrapes); 1 leaves the other
    /// CPU of a 2-CPU machine to the gateway.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// `--persistence.interval` while loading. Short intervals make upstream re-write
    /// the whole file again and again while it loads (SIGTERM writes it anyway).
    #[arg(long, default_value = "1h")]
    pub load_persistence_interval: String,
    /// Where the markdown table is written.
    #[arg(long, default_value = "ci/artifacts/bench.md")]
    pub out: PathBuf,
    /// Directory for persistence files and gateway logs (default: a fresh temporary
    /// directory, removed at the end).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

/// Parses `10k`, `100k`, `1M`, `250000` (the suffix in either case: `1m` is `1M`).
fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000),
        _ => (t, 1),
    };
    let n: usize = num
        .parse()
        .map_err(|_| format!("not a size: {s:?} (use e.g. 10k, 100k, 1M)"))?;
    if n == 0 {
        return Err("size must be positive".into());
    }
    n.checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

/// `10k`, `1M` or the plain number.
pub fn size_label(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// Everything measured for one gateway at one size.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// How the store was loaded.
    pub load_mode: String,
    /// RSS of the empty gateway, in bytes.
    pub rss_empty: u64,
    /// RSS after loading (and one verification scrape), in bytes.
    pub rss_loaded: u64,
    /// Series stored.
    pub n: usize,
    /// Sequential 10-series PUTs.
    pub latency: Latency,
    /// Concurrent pushes, and the CPU time the gateway spent during them.
    pub throughput: Option<(Throughput, Duration)>,
    /// Full text scrapes.
    pub scrape: Scrape,
    /// Sequential 10-series protobuf PUTs.
    pub protobuf_latency: Option<Latency>,
    /// Full scrapes with gzip.
    pub gzip_scrape: Option<Scrape>,
    /// Full scrapes asking for delimited protobuf.
    pub protobuf_scrape: Option<Scrape>,
    /// Full scrapes asking for OpenMetrics.
    pub openmetrics_scrape: Option<Scrape>,
    /// From exec to the end of the first scrape holding every series, restarted from the
    /// persistence file (when loaded that way).
    pub restart: Option<Duration>,
    /// The 1-minute load average at the start and at the end of this run.
    pub load: (String, String),
    /// CPU time redis-server spent during the throughput run (`ours-redis` only).
    pub redis_cpu: Option<Duration>,
    /// Snapshot, catch-up and Redis memory (`ours-redis` only).
    pub redis_figures: Option<redis_mode::RedisFigures>,
}

impl RunResult {
    /// Gateway CPU time per successful push of the throughput run.
    pub fn cpu_per_push(&self) -> Option<f64> {
        let (t, cpu) = self.throughput.as_ref()?;
        Some(cpu.as_secs_f64() / t.pushes.max(1) as f64)
    }

    /// redis-server CPU time per successful push of the throughput run.
    pub fn redis_cpu_per_push(&self) -> Option<f64> {
        let (t, _) = self.throughput.as_ref()?;
        Some(self.redis_cpu?.as_secs_f64() / t.pushes.max(1) as f64)
    }

    /// Resident bytes per stored series.
    pub fn rss_per_series(&self) -> f64 {
        (self.rss_loaded as f64 - self.rss_empty as f64) / self.n as f64
    }

    /// redis-server's resident bytes per stored series (after loading and a snapshot).
    pub fn redis_rss_per_series(&self) -> Option<f64> {
        let r = self.redis_figures.as_ref()?;
        Some((r.redis_rss_loaded as f64 - r.redis_rss_empty as f64) / self.n as f64)
    }

    /// Seconds the leader took to write a snapshot of the whole store.
    pub fn snapshot_seconds(&self) -> Option<f64> {
        Some(self.redis_figures.as_ref()?.snapshot.as_ref()?.seconds)
    }

    /// Bytes of that snapshot.
    pub fn snapshot_bytes(&self) -> Option<f64> {
        Some(self.redis_figures.as_ref()?.snapshot.as_ref()?.bytes as f64)
    }

    /// Seconds from a fresh replica's start until it is ready.
    pub fn catch_up_seconds(&self) -> Option<f64> {
        Some(self.redis_figures.as_ref()?.catch_up?.as_secs_f64())
    }

    /// The fresh replica's resident bytes per stored series (minus the empty gateway's).
    pub fn fresh_rss_per_series(&self) -> Option<f64> {
        let rss = self.redis_figures.as_ref()?.fresh_rss?;
        Some((rss as f64 - self.rss_empty as f64) / self.n as f64)
    }
}

/// A gateway binary and the flags added to every start of it.
#[derive(Clone, Copy)]
pub struct Bin<'a> {
    path: &'a Path,
    extra: &'a [String],
    report: PortReport,
}

impl Bin<'_> {
    /// Starts the binary with `args` and the flags of every start, logging to `log`.
    pub async fn start(&self, args: &[String], log: &Path) -> Result<Gateway> {
        let all: Vec<String> = args.iter().chain(self.extra).cloned().collect();
        Gateway::start(self.path, self.report, &all, log).await
    }
}

/// Which workloads a run measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Workloads {
    /// Every figure of the main table.
    All,
    /// Only what #22 asks of memory mode at 10M: PUT latency, the text scrape, RSS.
    Scale,
}

/// Loads `n` series into `bin` and measures it.
async fn run_one(
    args: &Args,
    name: &str,
    bin: Bin<'_>,
    n: usize,
    work: &Path,
    workloads: Workloads,
) -> Result<RunResult> {
    let load_start = loadavg();
    let dir = work.join(format!("{name}-{}", size_label(n)));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // Declared before the gateway, so that it is dropped (killed) after it.
    let redis = if name == "ours-redis" {
        let r = RedisServer::start(&args.redis_server, &args.redis_appendfsync, &dir).await?;
        println!(
            "  {name}: redis-server on port {} (appendfsync {})",
            r.port, args.redis_appendfsync
        );
        Some(r)
    } else {
        None
    };
    let redis_rss_empty = redis.as_ref().map(RedisServer::rss_bytes).transpose()?;
    let redis_extra: Vec<String>;
    let bin = match &redis {
        Some(r) => {
            redis_extra = [
                "--storage=redis".to_string(),
                format!("--storage.redis.url={}", r.url()),
            ]
            .into_iter()
            .chain(bin.extra.iter().cloned())
            .collect();
            Bin {
                path: bin.path,
                extra: &redis_extra,
                report: bin.report,
            }
        }
        None => bin,
    };
    println!(
        "  {name}: loading {} series (load average {load_start}) ...",
        size_label(n)
    );
    let restore = if redis.is_some() {
        // The state lives in Redis: there is no persistence file to restart from.
        Err("skipped (Redis mode)".to_string())
    } else if name == "ours-memory" {
        Err("skipped (memory mode)".to_string())
    } else if name == "ours" && args.ours_load == "checked" {
        Err("skipped (--ours-load checked)".to_string())
    } else {
        load::via_restore(args, bin, n, &dir).await
    };
    let loaded = match restore {
        Ok(r) => r,
        // Checked loading is hopeless for upstream at large N (each push re-checks
        // the whole store): only ours falls back to it.
        Err(e) if name == "reference" => return Err(e),
        Err(_) if redis.is_some() => {
            let how = format!(
                "--storage=redis, redis-server with appendfsync {}, no persistence file",
                args.redis_appendfsync
            );
            load::checked(args, bin, n, &dir, &how).await?
        }
        Err(_) if name == "ours-memory" => {
            load::checked(args, bin, n, &dir, "memory mode: no persistence").await?
        }
        Err(e) => {
            println!("  {name}: load via persistence+restart not possible: {e}");
            println!("  {name}: loading directly with checked pushes instead");
            load::checked(args, bin, n, &dir, "no persistence").await?
        }
    };
    let load::Loaded {
        gw,
        rss_empty,
        mode: load_mode,
        restart,
    } = loaded;
    println!("  {name}: loaded: {load_mode}");
    let c = measure::wait_for_count(gw.addr, n, Duration::ZERO).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_loaded = gw.rss_bytes()?;
    println!(
        "  {name}: scrape holds {} samples ({} loaded + {} of the gateway's own); RSS {} -> {}",
        c.samples,
        c.loaded,
        c.samples - c.loaded,
        report::bytes(rss_empty as f64),
        report::bytes(rss_loaded as f64)
    );

    let latency = measure::put_latency(
        gw.addr,
        args.put_samples,
        10,
        Duration::from_secs(args.put_budget_secs),
    )
    .await?;
    println!(
        "  {name}: PUT 10 series: median {}, p99 {} ({} PUTs)",
        report::dur(latency.median),
        report::dur(latency.p99),
        latency.samples
    );
    let mut throughput = None;
    let mut redis_cpu = None;
    if workloads == Workloads::All {
        let cpu_before = gw.cpu_time()?;
        let redis_before = redis.as_ref().map(RedisServer::cpu_time).transpose()?;
        let t = measure::throughput(
            gw.addr,
            args.connections,
            Duration::from_secs(args.throughput_secs),
        )
        .await?;
        let cpu = gw.cpu_time()?.saturating_sub(cpu_before);
        redis_cpu = match (&redis, redis_before) {
            (Some(r), Some(before)) => Some(r.cpu_time()?.saturating_sub(before)),
            _ => None,
        };
        println!(
            "  {name}: throughput: {} pushes/s ({} pushes, {} failed, {} connections, {}; \
             gateway CPU {})",
            report::rate(t.per_sec()),
            t.pushes,
            t.errors,
            args.connections,
            report::dur(t.elapsed),
            report::dur(cpu)
        );
        if let Some(c) = redis_cpu {
            println!(
                "  {name}: redis-server CPU in the throughput run: {}",
                report::dur(c)
            );
        }
        throughput = Some((t, cpu));
    }
    let scrape = timed_scrape(args, name, &gw, n, ScrapeFormat::Text)
        .await
        .ok_or("the text scrape failed")?;
    let mut protobuf_latency = None;
    let (mut gzip_scrape, mut protobuf_scrape, mut openmetrics_scrape) = (None, None, None);
    if workloads == Workloads::All {
        let l = measure::put_latency_protobuf(
            gw.addr,
            args.put_samples,
            10,
            Duration::from_secs(args.put_budget_secs),
        )
        .await?;
        println!(
            "  {name}: protobuf PUT 10 series: median {}, p99 {}",
            report::dur(l.median),
            report::dur(l.p99)
        );
        protobuf_latency = Some(l);
        gzip_scrape = timed_scrape(args, name, &gw, n, ScrapeFormat::Gzip).await;
        protobuf_scrape = timed_scrape(args, name, &gw, n, ScrapeFormat::Protobuf).await;
        openmetrics_scrape = timed_scrape(args, name, &gw, n, ScrapeFormat::OpenMetrics).await;
    }
    let redis_figures = match (&redis, redis_rss_empty) {
        (Some(r), Some(empty)) => Some(redis_mode::measure(name, bin, &gw, r, empty, &dir).await?),
        _ => None,
    };
    if let Err(e) = gw.terminate(load::STOP_TIMEOUT).await {
        println!("  {name}: {e}");
    }
    Ok(RunResult {
        redis_figures,
        protobuf_latency,
        gzip_scrape,
        protobuf_scrape,
        openmetrics_scrape,
        restart,
        load_mode,
        rss_empty,
        rss_loaded,
        n,
        latency,
        throughput,
        scrape,
        redis_cpu,
        load: (load_start, loadavg()),
    })
}

/// Times scrapes of `gw` in `format` and checks that they hold all `n` loaded series;
/// prints the figures, or why there are none.
async fn timed_scrape(
    args: &Args,
    name: &str,
    gw: &Gateway,
    n: usize,
    format: ScrapeFormat,
) -> Option<Scrape> {
    let budget = Duration::from_secs(args.scrape_budget_secs);
    let what = report::format_name(format);
    match measure::scrape_as(gw.addr, format, args.scrapes, 3, budget).await {
        Ok(s) if s.loaded == n => {
            println!(
                "  {name}: {what} scrape: median {}, {} ({} samples, {} scrapes; {})",
                report::dur(s.median),
                report::bytes(s.bytes as f64),
                s.series,
                s.samples,
                s.content_type
            );
            Some(s)
        }
        Ok(s) => {
            println!(
                "  {name}: {what} scrape FAILED: it held {} of the {n} loaded series ({})",
                s.loaded, s.content_type
            );
            None
        }
        Err(e) => {
            println!("  {name}: {what} scrape FAILED: {e}");
            None
        }
    }
}

/// The checked-out commit, with `+changes` when `gateway/` has uncommitted changes.
fn checkout() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(sha) => match git(&["status", "--porcelain", "--", "gateway"]) {
            Some(st) if !st.is_empty() => format!("{sha}+changes"),
            _ => sha,
        },
        None => "unknown".into(),
    }
}

/// Whether `bin` lies inside the current directory (the checkout).
fn built_here(bin: &Path) -> bool {
    match (bin.canonicalize(), std::env::current_dir()) {
        (Ok(b), Ok(cwd)) => b.starts_with(cwd),
        _ => false,
    }
}

/// Every gateway `--gateways` may name.
const GATEWAYS: [&str; 4] = ["ours", "reference", "ours-redis", "ours-memory"];

/// Above this size the reference is not run: its pushes and scrapes are so slow that
/// filling and measuring it would take far longer than the bench's budget (and about
/// 1 KB of memory per series). Its figures at the largest size up to this one are shown
/// beside ours instead, for scale.
pub const COMPARED_UP_TO: usize = 1_000_000;

/// The gateways run at size `n`, in order: those of `--gateways`, without the reference
/// above [`COMPARED_UP_TO`], and there with ours in memory mode after ours (as #22
/// measures 10M in both modes) and without ours-redis unless `--gateways` named it.
fn gateways_at(args: &Args, n: usize) -> Vec<&'static str> {
    let named = |g: &str| args.gateways.iter().any(|x| x == g);
    let large = n > COMPARED_UP_TO;
    let mut out = Vec::new();
    for g in GATEWAYS {
        let run = match g {
            "reference" => named(g) && !large,
            "ours-redis" => named(g) && (!large || args.gateways_given),
            // Ours loaded with `--ours-load checked` already is memory mode.
            "ours-memory" => named(g) || (large && named("ours") && args.ours_load == "restore"),
            _ => named(g),
        };
        if run {
            out.push(g);
        }
    }
    out
}

/// The flags of every start of ours: `--ours-arg`s, and `--web.enable-openmetrics` when
/// ours has it (it serves OpenMetrics only with it; a binary with only upstream's flags
/// would refuse it).
fn ours_flags(args: &Args) -> Vec<String> {
    let mut flags = args.ours_arg.clone();
    let om = "--web.enable-openmetrics";
    if !flags.iter().any(|f| f.starts_with(om)) && process::supports_flag(&args.ours, om) {
        flags.push(om.to_string());
    }
    flags
}

/// The 1-minute load average.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// First line a binary prints for `--version` (it is killed after 5 s).
fn version_of(bin: &Path) -> String {
    let Ok(mut child) = std::process::Command::new(bin)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        return "unknown".into();
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    match child.wait_with_output() {
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            text.lines()
                .next()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| "unknown".into())
        }
        Err(_) => "unknown".into(),
    }
}

/// The temporary directory used when `--work-dir` is not given.
fn default_work_dir() -> PathBuf {
    std::env::temp_dir().join(format!("pushgateway-bench-{}", std::process::id()))
}

async fn run(args: Args) -> Result<()> {
    for g in &args.gateways {
        if !GATEWAYS.contains(&g.as_str()) {
            return Err(format!("unknown gateway {g:?} ({})", GATEWAYS.join(", ")));
        }
    }
    let work = match &args.work_dir {
        Some(d) => d.clone(),
        None => default_work_dir(),
    };
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    if args.attack {
        return attack::run(&args, &work).await;
    }
    if args.matcher_delete {
        return matcher::run(&args, &work).await;
    }
    if args.quotas {
        return quotas::run(&args, &work).await;
    }
    if args.aggregate {
        return aggregate::run(&args, &work).await;
    }
    let reference_bin = args.reference.clone().ok_or(
        "--reference is required without --attack, --matcher-delete, --quotas or --aggregate",
    )?;
    let started = Instant::now();
    let mut env = report::Env {
        ours: version_of(&args.ours),
        reference: version_of(&reference_bin),
        redis: if args.gateways.iter().any(|g| g == "ours-redis") {
            version_of(&args.redis_server)
        } else {
            String::new()
        },
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        checkout: match &args.ours_rev {
            Some(rev) => rev.clone(),
            None if built_here(&args.ours) => checkout(),
            None => "unknown: a binary from outside this checkout".into(),
        },
        ..Default::default()
    };
    println!("ours from: {}", env.checkout);
    println!("ours:      {} ({})", args.ours.display(), env.ours);
    if !args.ours_arg.is_empty() {
        println!("ours with: {}", args.ours_arg.join(" "));
        env.ours = format!("{} {}", env.ours, args.ours_arg.join(" "));
    }
    println!("reference: {} ({})", reference_bin.display(), env.reference);
    if !env.redis.is_empty() {
        println!("redis:     {} ({})", args.redis_server.display(), env.redis);
    }
    println!("work dir:  {}", work.display());
    env.load.0 = loadavg();
    println!("load average: {}", env.load.0);
    if env.load.0.parse::<f64>().unwrap_or(0.0) > 0.5 * env.cpus as f64 {
        println!(
            "WARNING: the machine is busy (load average {} on {} CPUs): figures will be noisy",
            env.load.0, env.cpus
        );
    }

    let ours_extra = ours_flags(&args);
    if ours_extra.len() > args.ours_arg.len() {
        println!("ours gets: {}", ours_extra[args.ours_arg.len()..].join(" "));
    }
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let mut rows: Vec<report::SizeRow> = Vec::new();
    for n in sizes {
        println!("\n== {} stored series ==", size_label(n));
        let gateways = gateways_at(&args, n);
        let mut row = report::SizeRow {
            n,
            ours: None,
            reference: None,
            redis: None,
            memory: None,
            reference_scale: None,
        };
        if n > COMPARED_UP_TO && args.gateways.iter().any(|g| g == "reference") {
            row.reference_scale = rows
                .iter()
                .rev()
                .find_map(|r| Some((r.n, r.reference.clone()?)));
            let shown = match &row.reference_scale {
                Some((at, _)) => format!("its {} figures are shown for scale", size_label(*at)),
                None => "add 1m to --sizes to see its 1M figures beside ours".into(),
            };
            println!(
                "  reference: not run above {} (filling it would take far longer than the \
                 bench's budget); {shown}",
                size_label(COMPARED_UP_TO)
            );
        }
        for g in gateways {
            let bin = if g != "reference" {
                Bin {
                    path: &args.ours,
                    extra: &ours_extra,
                    report: PortReport::of(&args.ours),
                }
            } else {
                Bin {
                    path: &reference_bin,
                    extra: &[],
                    report: PortReport::Proc,
                }
            };
            let workloads = if g == "ours-memory" {
                Workloads::Scale
            } else {
                Workloads::All
            };
            match run_one(&args, g, bin, n, &work, workloads).await {
                Ok(r) => match g {
                    "ours" => row.ours = Some(r),
                    "ours-redis" => row.redis = Some(r),
                    "ours-memory" => row.memory = Some(r),
                    _ => row.reference = Some(r),
                },
                Err(e) => println!("  {g}: FAILED: {e}"),
            }
        }
        println!();
        print!("{}", report::console_block(&row));
        if row.redis.is_some() {
            print!("{}", report::redis_console_block(&row));
        }
        print!("{}", scale::console_block(&row));
        rows.push(row);
    }
    env.total = started.elapsed();
    env.load.1 = loadavg();
    match report::verdict(&rows) {
        Some(v) => println!("\n{v}"),
        None => println!("\nTargets at 1M: not measured (run with --sizes ...,1M)"),
    }
    if let Some(v) = scale::verdict(&rows) {
        println!("{v}");
    }
    let mut md = report::markdown(&env, &args, &rows);
    if rows.iter().any(|r| r.redis.is_some()) {
        md.push('\n');
        md.push_str(&report::redis_markdown(&env, &args, &rows));
    }
    if scale::applies(&rows) {
        md.push('\n');
        md.push_str(&scale::markdown(&rows));
    }
    println!("\n{md}");
    if let Some(parent) = args.out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&args.out, &md).map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!("written to {}", args.out.display());
    Ok(())
}

fn main() {
    let matches = Args::command().get_matches();
    let mut args = match Args::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    args.gateways_given =
        matches.value_source("gateways") == Some(clap::parser::ValueSource::CommandLine);
    let mut builder = if args.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.client_threads);
        b
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio: {e}");
            std::process::exit(2);
        }
    };
    let remove_work = args.work_dir.is_none();
    // On Ctrl-C the run is dropped, and with it the gateways (killed on drop).
    let result = rt.block_on(async {
        tokio::select! {
            r = run(args) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
        }
    });
    drop(rt);
    if remove_work {
        let _ = std::fs::remove_dir_all(default_work_dir());
    }
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_either_case() {
        for (text, n) in [
            ("1m", 1_000_000),
            ("1M", 1_000_000),
            ("10m", 10_000_000),
            ("10k", 10_000),
            ("10K", 10_000),
            (" 250000 ", 250_000),
        ] {
            assert_eq!(parse_size(text), Ok(n), "{text}");
        }
        for bad in ["", "m", "0", "1g", "-1m", "99999999999999999999m"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn above_1m_the_reference_gives_way_to_ours_in_memory_mode() {
        let args = |extra: &[&str]| {
            let mut a = Args::try_parse_from(
                ["bench", "--ours", "x", "--reference", "y"]
                    .iter()
                    .chain(extra),
            )
            .unwrap();
            a.gateways_given = extra.contains(&"--gateways");
            a
        };
        let default = args(&[]);
        assert_eq!(
            gateways_at(&default, 1_000_000),
            ["ours", "reference", "ours-redis"]
        );
        assert_eq!(gateways_at(&default, 10_000_000), ["ours", "ours-memory"]);
        let named = args(&["--gateways", "ours-redis"]);
        assert_eq!(gateways_at(&named, 10_000_000), ["ours-redis"]);
        let checked = args(&["--ours-load", "checked"]);
        assert_eq!(gateways_at(&checked, 10_000_000), ["ours"]);
    }
}
