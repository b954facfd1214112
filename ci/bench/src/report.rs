//! Formatting: units, the per-size console block with ratios and targets, and the
//! markdown table for the README.

use std::fmt::Write as _;
use std::time::Duration;

use crate::measure::ScrapeFormat;
use crate::{size_label, Args, RunResult};

/// The stored size the targets apply to.
pub const TARGET_SIZE: usize = 1_000_000;

/// Facts about the run printed above the table.
#[derive(Debug, Default)]
pub struct Env {
    /// `--version` of ours.
    pub ours: String,
    /// `--version` of the reference.
    pub reference: String,
    /// What ours was built from (a commit, `+changes` when the tree was dirty).
    pub checkout: String,
    /// CPUs of the machine.
    pub cpus: usize,
    /// Wall time of the whole run.
    pub total: Duration,
    /// `--version` of redis-server (empty when `ours-redis` is not run).
    pub redis: String,
    /// /proc/loadavg at the start and at the end.
    pub load: (String, String),
}

/// Both gateways' results at one size (`None`: not run or failed).
#[derive(Debug)]
pub struct SizeRow {
    /// Stored series.
    pub n: usize,
    /// Our gateway.
    pub ours: Option<RunResult>,
    /// The reference.
    pub reference: Option<RunResult>,
    /// Ours in Redis mode.
    pub redis: Option<RunResult>,
    /// Ours in memory mode (#22's memory-mode figures above 1M).
    pub memory: Option<RunResult>,
    /// Where the reference is not run (above 1M): its figures at a smaller size, and
    /// that size, shown for scale.
    pub reference_scale: Option<(usize, RunResult)>,
}

impl SizeRow {
    /// The reference's figures shown at this size: measured here, or for scale from a
    /// smaller size (then with that size).
    pub fn reference_shown(&self) -> Option<(&RunResult, Option<usize>)> {
        match (&self.reference, &self.reference_scale) {
            (Some(r), _) => Some((r, None)),
            (None, Some((n, r))) => Some((r, Some(*n))),
            (None, None) => None,
        }
    }
}

/// How a scrape format is named in the report.
pub fn format_name(format: ScrapeFormat) -> &'static str {
    match format {
        ScrapeFormat::Text => "text",
        ScrapeFormat::Gzip => "gzip",
        ScrapeFormat::Protobuf => "protobuf",
        ScrapeFormat::OpenMetrics => "OpenMetrics",
    }
}

/// A duration with a unit fitting its size.
pub fn dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

/// A byte count with a binary unit.
pub fn bytes(b: f64) -> String {
    let a = b.abs();
    if a >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if a >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if a >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// A ratio with three significant digits (`0.000412`, `0.0412`, `4.12`, `412`).
pub fn sig(q: f64) -> String {
    if q == 0.0 || !q.is_finite() {
        return format!("{q}");
    }
    let digits = (2 - q.abs().log10().floor() as i32).max(0) as usize;
    format!("{q:.digits$}")
}

/// Which direction of ours/reference is better.
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Lower,
    Higher,
    Neither,
}

/// A target on the ratio ours/reference, checked at [`TARGET_SIZE`].
#[derive(Clone, Copy)]
enum Target {
    /// ours/reference at most this.
    AtMost(f64),
    /// ours/reference at least this.
    AtLeast(f64),
}

impl Target {
    fn text(self) -> String {
        match self {
            Target::AtMost(r) if r < 1.0 => format!("≤ 1/{:.0} of ref", 1.0 / r),
            Target::AtMost(r) => format!("≤ {r}× ref"),
            Target::AtLeast(r) => format!("≥ {r}× ref"),
        }
    }

    fn met(self, ratio: f64) -> bool {
        match self {
            Target::AtMost(r) => ratio <= r,
            Target::AtLeast(r) => ratio >= r,
        }
    }
}

/// One compared figure.
struct Metric {
    name: &'static str,
    ours: Option<f64>,
    reference: Option<f64>,
    /// The size the reference's figure was measured at, when not this row's (for scale).
    reference_at: Option<usize>,
    fmt: fn(f64) -> String,
    better: Better,
    target: Option<Target>,
}

impl Metric {
    fn ratio(&self) -> Option<f64> {
        match (self.ours, self.reference, self.reference_at) {
            (Some(o), Some(r), None) if r != 0.0 => Some(o / r),
            _ => None,
        }
    }

    /// The reference's cell: its figure, with the size it is from when that is not the
    /// row's.
    fn reference_cell(&self) -> String {
        let v = cell(self.reference, self.fmt);
        match (self.reference, self.reference_at) {
            (Some(_), Some(n)) => format!("{v} (at {}, for scale)", size_label(n)),
            _ => v,
        }
    }

    /// `0.0123 (81× faster)`-style text of the ratio ours/reference.
    fn ratio_text(&self) -> String {
        ratio_text(self.name, self.better, self.ratio())
    }

    fn better_text(&self) -> &'static str {
        better_word(self.better)
    }

    /// `≥ 5× ref: PASS`, or "–" where no target applies at this size.
    fn target_text(&self, n: usize) -> String {
        match (self.target, n == TARGET_SIZE) {
            (Some(t), true) => match self.ratio() {
                Some(q) if t.met(q) => format!("{}: PASS", t.text()),
                Some(_) => format!("{}: MISS", t.text()),
                None => format!("{}: n/a", t.text()),
            },
            (Some(t), false) => format!("({} at 1M)", t.text()),
            (None, _) => "–".into(),
        }
    }
}

/// A ratio `q` of figure `name` with which way is better, as `0.0123 (81× faster)`.
fn ratio_text(name: &str, better: Better, q: Option<f64>) -> String {
    let Some(q) = q else {
        return "–".into();
    };
    let times = |x: f64| {
        if x >= 10.0 {
            format!("{x:.0}×")
        } else {
            format!("{x:.2}×")
        }
    };
    let word = match better {
        Better::Lower if name.contains("RSS") || name.contains("CPU") => {
            if q <= 1.0 {
                format!("{} less", times(1.0 / q))
            } else {
                format!("{} more", times(q))
            }
        }
        Better::Lower => {
            if q <= 1.0 {
                format!("{} faster", times(1.0 / q))
            } else {
                format!("{} slower", times(q))
            }
        }
        Better::Higher => {
            if q >= 1.0 {
                format!("{} more", times(q))
            } else {
                format!("{} less", times(1.0 / q))
            }
        }
        Better::Neither => String::new(),
    };
    if word.is_empty() {
        sig(q)
    } else {
        format!("{} ({word})", sig(q))
    }
}

fn fmt_dur(s: f64) -> String {
    dur(Duration::from_secs_f64(s))
}

/// A rate: whole numbers from 100 on, two decimals below.
pub fn rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.2}")
    }
}

fn fmt_rate(r: f64) -> String {
    format!("{}/s", rate(r))
}

fn fmt_bytes(b: f64) -> String {
    bytes(b)
}

fn fmt_per_series(b: f64) -> String {
    format!("{b:.0} B")
}

/// How one figure is read from a result, shown and judged.
#[derive(Clone, Copy)]
struct Figure {
    name: &'static str,
    get: fn(&RunResult) -> Option<f64>,
    fmt: fn(f64) -> String,
    better: Better,
    target: Option<Target>,
}

/// The figures of the main table, in its order.
fn figures() -> Vec<Figure> {
    let f = |name, get, fmt, better, target| Figure {
        name,
        get,
        fmt,
        better,
        target,
    };
    use Better::{Higher, Lower, Neither};
    type Get = fn(&RunResult) -> Option<f64>;
    type Fmt = fn(f64) -> String;
    vec![
        f(
            "PUT 10 series, median",
            (|x| Some(x.latency.median.as_secs_f64())) as Get,
            fmt_dur as Fmt,
            Lower,
            Some(Target::AtMost(0.01)),
        ),
        f(
            "PUT 10 series, p99",
            |x| Some(x.latency.p99.as_secs_f64()),
            fmt_dur,
            Lower,
            None,
        ),
        f(
            "push throughput",
            |x| x.throughput.as_ref().map(|(t, _)| t.per_sec()),
            fmt_rate,
            Higher,
            Some(Target::AtLeast(5.0)),
        ),
        f(
            "gateway CPU per push",
            RunResult::cpu_per_push,
            fmt_dur,
            Lower,
            None,
        ),
        f(
            "scrape time, median",
            |x| Some(x.scrape.median.as_secs_f64()),
            fmt_dur,
            Lower,
            Some(Target::AtMost(1.0 / 3.0)),
        ),
        f(
            "scrape size",
            |x| Some(x.scrape.bytes as f64),
            fmt_bytes,
            Neither,
            None,
        ),
        f(
            "protobuf PUT 10 series, median",
            |x| x.protobuf_latency.map(|l| l.median.as_secs_f64()),
            fmt_dur,
            Lower,
            None,
        ),
        f(
            "gzip scrape time, median",
            |x| x.gzip_scrape.as_ref().map(|s| s.median.as_secs_f64()),
            fmt_dur,
            Lower,
            None,
        ),
        f(
            "gzip scrape size",
            |x| x.gzip_scrape.as_ref().map(|s| s.bytes as f64),
            fmt_bytes,
            Lower,
            None,
        ),
        f(
            "protobuf scrape time, median",
            |x| x.protobuf_scrape.as_ref().map(|s| s.median.as_secs_f64()),
            fmt_dur,
            Lower,
            None,
        ),
        f(
            "protobuf scrape size",
            |x| x.protobuf_scrape.as_ref().map(|s| s.bytes as f64),
            fmt_bytes,
            Neither,
            None,
        ),
        f(
            "OpenMetrics scrape time, median",
            |x| {
                x.openmetrics_scrape
                    .as_ref()
                    .map(|s| s.median.as_secs_f64())
            },
            fmt_dur,
            Lower,
            None,
        ),
        f(
            "restart from persistence",
            |x| x.restart.map(|d| d.as_secs_f64()),
            fmt_dur,
            Lower,
            None,
        ),
        f(
            "RSS after loading",
            |x| Some(x.rss_loaded as f64),
            fmt_bytes,
            Lower,
            None,
        ),
        f(
            "RSS per stored series",
            |x| Some(x.rss_per_series()),
            fmt_per_series,
            Lower,
            Some(Target::AtMost(1.0 / 3.0)),
        ),
    ]
}

fn metrics(row: &SizeRow) -> Vec<Metric> {
    let reference = row.reference_shown();
    figures()
        .into_iter()
        .map(|f| Metric {
            name: f.name,
            ours: row.ours.as_ref().and_then(f.get),
            reference: reference.and_then(|(r, _)| (f.get)(r)),
            reference_at: reference.and_then(|(_, at)| at),
            fmt: f.fmt,
            better: f.better,
            target: f.target,
        })
        .collect()
}

fn cell(v: Option<f64>, fmt: fn(f64) -> String) -> String {
    v.map_or_else(|| "–".into(), fmt)
}

/// The console block of one size: figures, ratio ours/reference, target.
pub fn console_block(row: &SizeRow) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "  {} stored series: ratio = ours/reference; 'better' says which direction wins",
        size_label(row.n)
    );
    if let Some((_, Some(at))) = row.reference_shown() {
        let _ = writeln!(
            s,
            "  (the reference is not run at this size: its figures are those at {}, for scale)",
            size_label(at)
        );
    }
    let _ = writeln!(
        s,
        "  {:<32} {:>12} {:>12}  {:<26} {:<7} target",
        "metric", "ours", "reference", "ours/ref", "better"
    );
    for m in metrics(row) {
        let reference = match m.reference_at {
            Some(at) => format!("{} ({})", cell(m.reference, m.fmt), size_label(at)),
            None => cell(m.reference, m.fmt),
        };
        let _ = writeln!(
            s,
            "  {:<32} {:>12} {:>12}  {:<26} {:<7} {}",
            m.name,
            cell(m.ours, m.fmt),
            reference,
            m.ratio_text(),
            m.better_text(),
            m.target_text(row.n)
        );
    }
    s
}

/// `PASS`/`MISS` of every target at [`TARGET_SIZE`], or `None` when that size was
/// not measured for both gateways.
pub fn verdict(rows: &[SizeRow]) -> Option<String> {
    let row = rows.iter().find(|r| r.n == TARGET_SIZE)?;
    let mut parts = Vec::new();
    let mut missed = 0;
    for m in metrics(row) {
        if let Some(t) = m.target {
            let q = m.ratio()?;
            let ok = t.met(q);
            missed += usize::from(!ok);
            parts.push(format!(
                "{} {}: {}",
                m.name,
                t.text(),
                if ok { "PASS" } else { "MISS" }
            ));
        }
    }
    let head = if missed == 0 {
        "all targets met".to_string()
    } else {
        format!("{missed} of {} targets missed", parts.len())
    };
    Some(format!("Targets at 1M: {head} ({})", parts.join("; ")))
}

/// The markdown report: how it was run, one table of all sizes, the loading notes.
pub fn markdown(env: &Env, args: &Args, rows: &[SizeRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### Side by side with upstream\n");
    let _ = writeln!(
        s,
        "Ours: `{}` (built from {}); reference: `{}`. Loopback, {} CPUs, both gateways run one after the \
         other on the same machine; `ci/bench/run` ({} in all; load average {} at the \
         start, {} at the end).\n",
        env.ours,
        env.checkout,
        env.reference,
        env.cpus,
        dur(env.total),
        env.load.0,
        env.load.1
    );
    let _ = writeln!(
        s,
        "Workloads at N stored series: sequential 10-series `PUT`s replacing one group \
         (up to {} or {} s); {} connections each `PUT`ting 10 series to its own group \
         for {} s (in-flight pushes awaited; gateway CPU = its user+system time in that \
         run / pushes); full `GET /metrics` (median of up to {}); RSS (VmRSS) after \
         loading minus RSS of the empty gateway, divided by N. Ratio = ours / reference; \
         targets apply at 1M.\n",
        args.put_samples,
        args.put_budget_secs,
        args.connections,
        args.throughput_secs,
        args.scrapes
    );
    let _ = writeln!(
        s,
        "| Stored series | Metric | Ours | Reference | Ours / ref | Better | Target at 1M |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---|---|---|");
    for row in rows {
        for m in metrics(row) {
            let target = if row.n == TARGET_SIZE {
                m.target_text(row.n)
            } else {
                "–".into()
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                size_label(row.n),
                m.name,
                cell(m.ours, m.fmt),
                m.reference_cell(),
                m.ratio_text(),
                m.better_text(),
                target
            );
        }
    }
    if let Some(v) = verdict(rows) {
        let _ = writeln!(s, "\n{v}.");
    }
    let _ = writeln!(s, "\nHow each store was loaded (and the load average at the start and the end of each gateway's run):\n");
    for row in rows {
        let runs = [
            ("ours", &row.ours),
            ("reference", &row.reference),
            ("ours-memory", &row.memory),
        ];
        for (name, r) in runs {
            match r {
                Some(r) => {
                    let _ = writeln!(s, "{}", run_note(name, r));
                }
                None if name == "reference" && row.n > crate::COMPARED_UP_TO => {
                    let shown = match &row.reference_scale {
                        Some((at, _)) => {
                            format!("its {} figures are shown for scale", size_label(*at))
                        }
                        None => "no smaller size was run to show for scale".into(),
                    };
                    let _ = writeln!(
                        s,
                        "- {} reference: not run above {} (too slow to fill); {shown}",
                        size_label(row.n),
                        size_label(crate::COMPARED_UP_TO)
                    );
                }
                None if name == "ours-memory" => {}
                None => {
                    let _ = writeln!(s, "- {} {name}: not run or failed", size_label(row.n));
                }
            }
        }
    }
    let answered = |r: &RunResult| {
        r.openmetrics_scrape.as_ref().map(|o| {
            (
                o.content_type.clone(),
                o.negotiated(ScrapeFormat::OpenMetrics),
            )
        })
    };
    if let Some((ct, false)) = rows
        .iter()
        .filter_map(|r| r.reference.as_ref())
        .find_map(answered)
    {
        let _ = writeln!(
            s,
            "\nThe reference has no OpenMetrics: asked for it, it answers `{ct}`, so its \
             OpenMetrics row is its text scrape. Ours is started with \
             `--web.enable-openmetrics` (without it, ours answers text 0.0.4 as upstream does)."
        );
    }
    s
}

/// The note line of one gateway's run: how it was loaded, how many requests were timed,
/// the load average at its start and end.
fn run_note(name: &str, r: &RunResult) -> String {
    let throughput = match &r.throughput {
        Some((t, _)) => format!(
            ", {} pushes in the throughput run ({} failed)",
            t.pushes, t.errors
        ),
        None => String::new(),
    };
    format!(
        "- {} {name}: {}; {} PUTs timed{throughput}; load average {} → {}",
        size_label(r.n),
        r.load_mode,
        r.latency.samples,
        r.load.0,
        r.load.1
    )
}

/// One figure of the Redis section: ours in Redis mode, ours in memory mode, the reference.
struct RedisMetric {
    name: &'static str,
    redis: Option<f64>,
    memory: Option<f64>,
    reference: Option<f64>,
    fmt: fn(f64) -> String,
    better: Better,
}

impl RedisMetric {
    /// redis / `other`, worded.
    fn vs(&self, other: Option<f64>) -> String {
        let q = match (self.redis, other) {
            (Some(a), Some(b)) if b != 0.0 => Some(a / b),
            _ => None,
        };
        ratio_text(self.name, self.better, q)
    }
}

/// What only Redis mode has (memory mode and the reference show none).
fn redis_only_figures() -> Vec<Figure> {
    let f = |name, get, fmt| Figure {
        name,
        get,
        fmt,
        better: Better::Lower,
        target: None,
    };
    vec![
        f(
            "redis-server RSS per series",
            RunResult::redis_rss_per_series,
            fmt_per_series,
        ),
        f(
            "snapshot write (leader)",
            RunResult::snapshot_seconds,
            fmt_dur,
        ),
        f("snapshot size", RunResult::snapshot_bytes, fmt_bytes),
        f(
            "fresh replica catch-up",
            RunResult::catch_up_seconds,
            fmt_dur,
        ),
        f(
            "fresh replica RSS per series",
            RunResult::fresh_rss_per_series,
            fmt_per_series,
        ),
    ]
}

/// The figures of the Redis section: those of the main table that a push or a
/// scrape costs, with redis-server's CPU after the gateway's.
fn redis_metrics(row: &SizeRow) -> Vec<RedisMetric> {
    let redis_cpu = Figure {
        name: "redis-server CPU per push",
        get: RunResult::redis_cpu_per_push,
        fmt: fmt_dur,
        better: Better::Lower,
        target: None,
    };
    let mut chosen: Vec<Figure> = figures()
        .into_iter()
        .filter(|f| {
            matches!(
                f.name,
                "PUT 10 series, median"
                    | "PUT 10 series, p99"
                    | "push throughput"
                    | "gateway CPU per push"
                    | "scrape time, median"
                    | "RSS per stored series"
            )
        })
        .collect();
    let at = chosen
        .iter()
        .position(|f| f.name == "gateway CPU per push")
        .map_or(chosen.len(), |i| i + 1);
    chosen.insert(at, redis_cpu);
    chosen.extend(redis_only_figures());
    chosen
        .into_iter()
        .map(|f| RedisMetric {
            name: f.name,
            redis: row.redis.as_ref().and_then(f.get),
            memory: row.ours.as_ref().and_then(f.get),
            reference: row.reference.as_ref().and_then(f.get),
            fmt: f.fmt,
            better: f.better,
        })
        .collect()
}

/// The cells of the Redis section at one size: metric, redis, memory, reference,
/// redis / memory, redis / reference, better.
fn redis_cells(row: &SizeRow) -> Vec<[String; 7]> {
    redis_metrics(row)
        .into_iter()
        .map(|m| {
            [
                m.name.to_string(),
                cell(m.redis, m.fmt),
                cell(m.memory, m.fmt),
                cell(m.reference, m.fmt),
                m.vs(m.memory),
                m.vs(m.reference),
                better_word(m.better).to_string(),
            ]
        })
        .collect()
}

/// The console block of ours in Redis mode at one size.
pub fn redis_console_block(row: &SizeRow) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n  {} stored series, Redis mode: ratios = redis / memory (ours) and redis / reference",
        size_label(row.n)
    );
    let _ = writeln!(
        s,
        "  {:<26} {:>10} {:>10} {:>10}  {:<22} {:<22} better",
        "metric", "redis", "memory", "reference", "redis/memory", "redis/ref"
    );
    for [name, redis, memory, reference, vs_memory, vs_reference, better] in redis_cells(row) {
        let _ = writeln!(
            s,
            "  {name:<26} {redis:>10} {memory:>10} {reference:>10}  {vs_memory:<22} \
             {vs_reference:<22} {better}"
        );
    }
    s
}

fn better_word(b: Better) -> &'static str {
    match b {
        Better::Lower => "lower",
        Better::Higher => "higher",
        Better::Neither => "–",
    }
}

/// Whether a size belongs in the Redis section: where Redis mode runs by default (up to
/// 1M) or ran.
fn in_redis_section(row: &SizeRow) -> bool {
    row.redis.is_some() || row.n <= crate::COMPARED_UP_TO
}

/// The markdown section of ours in Redis mode next to memory mode and the reference.
pub fn redis_markdown(env: &Env, args: &Args, rows: &[SizeRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Redis mode
"
    );
    let _ = writeln!(
        s,
        "Ours with `--storage=redis` (every push appended to a Redis stream and answered \
         once this replica applied it) against a redis-server of its own (`{}`, fresh at \
         each size, on loopback on the same machine: `--appendonly yes --appendfsync {} \
         --save ''`), no persistence file, loaded with checked pushes, then measured with \
         the same workloads as above. Memory mode and reference are the columns Ours and \
         Reference of the table above (same run). Ratios: redis / memory and redis / \
         reference; \"Better\" says which direction wins.\n",
        env.redis, args.redis_appendfsync
    );
    let _ = writeln!(
        s,
        "Durability differs between the columns: memory mode answers a push once its \
         record in the persistence file is written (and fsynced, with ours' default \
         `--persistence.fsync=always`) when it was loaded via persistence as noted above; \
         Redis mode answers once Redis holds the push in memory and this replica applied \
         it, Redis fsyncing its append-only file {}.{}\n",
        match args.redis_appendfsync.as_str() {
            "always" => "before it answers (`always`)",
            "everysec" => "once a second (`everysec`)",
            _ => "when the kernel writes it back (`no`)",
        },
        if args.redis_appendfsync == "always" {
            ""
        } else {
            " `--redis-appendfsync always` compares at equal durability."
        }
    );
    let _ = writeln!(
        s,
        "The last rows are Redis mode's own: redis-server's RSS (after loading, the \
         measurements and a snapshot, minus its RSS when empty) per stored series; the time \
         the leader took to encode and upload the first snapshot written after the \
         measurements (the whole store, in chunks of `--storage.redis.snapshot-chunk-bytes`) \
         and its size; the time from the start of a fresh replica until it is ready (the \
         snapshot loaded and the stream after it applied), and that replica's RSS per stored \
         series.\n"
    );
    let _ = writeln!(
        s,
        "| Stored series | Metric | Redis mode | Memory mode | Reference | Redis / memory | Redis / ref | Better |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---|---|---|");
    for row in rows.iter().filter(|r| in_redis_section(r)) {
        for cells in redis_cells(row) {
            let _ = writeln!(s, "| {} | {} |", size_label(row.n), cells.join(" | "));
        }
    }
    let _ = writeln!(s);
    for row in rows.iter().filter(|r| in_redis_section(r)) {
        match &row.redis {
            Some(r) => {
                let _ = writeln!(s, "{}", run_note("ours-redis", r));
            }
            None => {
                let _ = writeln!(s, "- {} ours-redis: not run or failed", size_label(row.n));
            }
        }
    }
    s
}
