//! Issue #22's targets: figures of ours at 1M and at 10M stored series (10M in
//! persistence mode and in memory mode), each against its target with PASS or FAIL,
//! the reference's figure beside it (at 10M its 1M figure, for scale), and the load
//! average of the run.

use std::fmt::Write as _;

use crate::measure::{Scrape, ScrapeFormat};
use crate::report::{bytes, dur, format_name, sig, SizeRow, TARGET_SIZE};
use crate::{size_label, RunResult};

/// The large size #22 measures at.
pub const SCALE_SIZE: usize = 10_000_000;

/// The modes of ours, as the table names them.
const PERSISTENCE: &str = "with --persistence.file";
const MEMORY: &str = "memory (no persistence)";

type Get = fn(&RunResult) -> Option<f64>;
type Fmt = fn(f64) -> String;

/// What a figure is held against.
#[derive(Clone, Copy)]
enum Limit {
    /// At most this value (seconds or bytes).
    Absolute(f64),
    /// At most this multiple of another figure of the same run, named for the report.
    OfOurs(f64, &'static str, Get),
    /// At most this multiple of the reference's same figure at the same size.
    OfReference(f64),
}

/// One of #22's targets.
struct Goal {
    /// The stored size it applies at.
    size: usize,
    name: &'static str,
    get: Get,
    fmt: Fmt,
    bound: Limit,
    /// Only for runs restarted from a persistence file (the restart time).
    persistence_only: bool,
    /// A scrape in this format must have been answered in it.
    format: Option<ScrapeFormat>,
}

fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

fn fmt_dur(s: f64) -> String {
    dur(std::time::Duration::from_secs_f64(s))
}

fn fmt_per_series(b: f64) -> String {
    format!("{b:.0} B")
}

/// Bytes in GB (10^9, as #22 states its memory bound) and GiB.
fn fmt_gb(b: f64) -> String {
    format!("{:.2} GB ({})", b / 1e9, bytes(b))
}

fn text_median(r: &RunResult) -> Option<f64> {
    Some(secs(r.scrape.median))
}

fn scrape_of(r: &RunResult, format: ScrapeFormat) -> Option<&Scrape> {
    match format {
        ScrapeFormat::Text => Some(&r.scrape),
        ScrapeFormat::Gzip => r.gzip_scrape.as_ref(),
        ScrapeFormat::Protobuf => r.protobuf_scrape.as_ref(),
        ScrapeFormat::OpenMetrics => r.openmetrics_scrape.as_ref(),
    }
}

/// #22's targets, in the order of the table.
fn goals() -> Vec<Goal> {
    let g = |size, name, get, fmt, bound| Goal {
        size,
        name,
        get,
        fmt,
        bound,
        persistence_only: false,
        format: None,
    };
    let restart: Get = |r| r.restart.map(secs);
    let rss_per_series: Get = |r| Some(r.rss_per_series());
    vec![
        g(
            TARGET_SIZE,
            "RSS per stored series",
            rss_per_series,
            fmt_per_series as Fmt,
            Limit::Absolute(150.0),
        ),
        Goal {
            persistence_only: true,
            ..g(
                TARGET_SIZE,
                "restart (exec → a scrape holding every series)",
                restart,
                fmt_dur,
                Limit::Absolute(0.5),
            )
        },
        g(
            TARGET_SIZE,
            "text scrape, median",
            text_median,
            fmt_dur,
            Limit::Absolute(0.030),
        ),
        Goal {
            format: Some(ScrapeFormat::Protobuf),
            ..g(
                TARGET_SIZE,
                "protobuf scrape, median",
                |r| r.protobuf_scrape.as_ref().map(|s| secs(s.median)),
                fmt_dur,
                Limit::OfOurs(1.5, "text scrape", text_median),
            )
        },
        Goal {
            format: Some(ScrapeFormat::OpenMetrics),
            ..g(
                TARGET_SIZE,
                "OpenMetrics scrape, median",
                |r| r.openmetrics_scrape.as_ref().map(|s| secs(s.median)),
                fmt_dur,
                Limit::OfOurs(1.5, "text scrape", text_median),
            )
        },
        g(
            TARGET_SIZE,
            "gzip scrape size",
            |r| r.gzip_scrape.as_ref().map(|s| s.bytes as f64),
            bytes,
            Limit::OfReference(1.05),
        ),
        g(
            TARGET_SIZE,
            "gzip scrape time, median",
            |r| r.gzip_scrape.as_ref().map(|s| secs(s.median)),
            fmt_dur,
            Limit::OfOurs(1.0, "text scrape", text_median),
        ),
        g(
            SCALE_SIZE,
            "PUT 10 series, median",
            |r| Some(secs(r.latency.median)),
            fmt_dur,
            Limit::Absolute(0.001),
        ),
        g(
            SCALE_SIZE,
            "text scrape, median",
            text_median,
            fmt_dur,
            Limit::Absolute(0.5),
        ),
        Goal {
            persistence_only: true,
            ..g(
                SCALE_SIZE,
                "restart (exec → a scrape holding every series)",
                restart,
                fmt_dur,
                Limit::Absolute(5.0),
            )
        },
        g(
            SCALE_SIZE,
            "RSS after loading",
            |r| Some(r.rss_loaded as f64),
            fmt_gb,
            Limit::Absolute(1.6e9),
        ),
        g(
            SCALE_SIZE,
            "RSS per stored series",
            rss_per_series,
            fmt_per_series,
            Limit::Absolute(150.0),
        ),
    ]
}

/// The runs of ours a row's goals are checked on, with their mode: at 1M ours as
/// loaded; at 10M both modes, `None` where one was not measured.
fn runs(row: &SizeRow) -> Vec<(&'static str, Option<&RunResult>)> {
    let mode = |r: &RunResult| {
        if r.restart.is_some() {
            PERSISTENCE
        } else {
            MEMORY
        }
    };
    let ours = row.ours.as_ref();
    if row.n == SCALE_SIZE {
        let persisted = ours.filter(|r| r.restart.is_some());
        let memory = row.memory.as_ref().or(ours.filter(|r| r.restart.is_none()));
        vec![(PERSISTENCE, persisted), (MEMORY, memory)]
    } else {
        vec![(ours.map_or("–", mode), ours)]
    }
}

/// One checked goal.
struct Outcome {
    size: usize,
    mode: &'static str,
    name: &'static str,
    ours: String,
    target: String,
    /// `Some(true)`: met; `None`: not measured.
    pass: Option<bool>,
    /// Why it failed besides the figure (a format not negotiated).
    note: String,
    reference: String,
    load: String,
}

impl Outcome {
    fn result(&self) -> String {
        let word = match self.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "n/a (not measured)",
        };
        if self.note.is_empty() {
            word.to_string()
        } else {
            format!("{word} ({})", self.note)
        }
    }
}

fn check(goal: &Goal, row: &SizeRow, mode: &'static str, run: Option<&RunResult>) -> Outcome {
    let reference = row.reference_shown();
    let reference_value = reference.and_then(|(r, _)| (goal.get)(r));
    let reference_cell = match (reference_value, reference) {
        (Some(v), Some((_, Some(at)))) => {
            format!("{} (at {}, for scale)", (goal.fmt)(v), size_label(at))
        }
        (Some(v), _) => (goal.fmt)(v),
        (None, _) => "–".into(),
    };
    let value = run.and_then(goal.get);
    let (limit, target) = match goal.bound {
        Limit::Absolute(x) => (Some(x), format!("≤ {}", (goal.fmt)(x))),
        Limit::OfOurs(k, other, get) => {
            let limit = run.and_then(get).map(|o| k * o);
            let text = if k == 1.0 {
                format!("≤ ours' {other}")
            } else {
                format!("≤ {k}× ours' {other}")
            };
            match limit {
                Some(l) => (limit, format!("{text} ({})", (goal.fmt)(l))),
                None => (None, text),
            }
        }
        Limit::OfReference(k) => {
            // Only against the reference measured at the same size.
            let same_size = reference.filter(|(_, at)| at.is_none());
            let limit = same_size.and_then(|(r, _)| (goal.get)(r)).map(|v| k * v);
            match limit {
                Some(l) => (limit, format!("≤ {k}× the reference's ({})", (goal.fmt)(l))),
                None => (None, format!("≤ {k}× the reference's")),
            }
        }
    };
    let mut ours = value.map_or_else(|| "–".into(), goal.fmt);
    if let (Some(v), Limit::OfOurs(k, _, _) | Limit::OfReference(k), Some(l)) =
        (value, goal.bound, limit)
    {
        let base = l / k;
        if base > 0.0 {
            ours = format!("{ours} ({}×)", sig(v / base));
        }
    }
    let mut note = String::new();
    let mut pass = match (value, limit) {
        (Some(v), Some(l)) => Some(v <= l),
        _ => None,
    };
    if let (Some(format), Some(r)) = (goal.format, run) {
        if let Some(s) = scrape_of(r, format).filter(|s| !s.negotiated(format)) {
            pass = Some(false);
            note = format!(
                "asked for {}, answered `{}`",
                format_name(format),
                s.content_type
            );
        }
    }
    Outcome {
        size: row.n,
        mode,
        name: goal.name,
        ours,
        target,
        pass,
        note,
        reference: reference_cell,
        load: run.map_or_else(|| "–".into(), |r| format!("{} → {}", r.load.0, r.load.1)),
    }
}

/// Every goal that applies at this row's size, checked.
fn outcomes(row: &SizeRow) -> Vec<Outcome> {
    let mut out = Vec::new();
    for (mode, run) in runs(row) {
        for goal in goals().iter().filter(|g| g.size == row.n) {
            let persisted = run.is_some_and(|r| r.restart.is_some());
            if goal.persistence_only && mode != PERSISTENCE && !persisted {
                continue;
            }
            out.push(check(goal, row, mode, run));
        }
    }
    out
}

/// Whether any measured size has #22 targets.
pub fn applies(rows: &[SizeRow]) -> bool {
    rows.iter().any(|r| !outcomes(r).is_empty())
}

/// The console block of #22's targets at one size (empty where none apply).
pub fn console_block(row: &SizeRow) -> String {
    let outcomes = outcomes(row);
    let mut s = String::new();
    if outcomes.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\n  #22 targets at {} (reference: same size, or for scale):",
        size_label(row.n)
    );
    for o in outcomes {
        let _ = writeln!(
            s,
            "  {:<16} {:<48} {:>22}  {:<44} {:<6} ref {}; load {}",
            o.mode,
            o.name,
            o.ours,
            o.target,
            o.result(),
            o.reference,
            o.load
        );
    }
    s
}

/// `#22 targets: k of m met (...)`, or `None` when no size with targets was run.
pub fn verdict(rows: &[SizeRow]) -> Option<String> {
    let all: Vec<Outcome> = rows.iter().flat_map(outcomes).collect();
    if all.is_empty() {
        return None;
    }
    let met = all.iter().filter(|o| o.pass == Some(true)).count();
    let missed: Vec<String> = all
        .iter()
        .filter(|o| o.pass != Some(true))
        .map(|o| {
            format!(
                "{} {} {}: {}",
                size_label(o.size),
                o.mode,
                o.name,
                o.result()
            )
        })
        .collect();
    Some(if missed.is_empty() {
        format!("#22 targets: all {met} met")
    } else {
        format!(
            "#22 targets: {met} of {} met; not met: {}",
            all.len(),
            missed.join("; ")
        )
    })
}

/// The markdown section of #22's targets.
pub fn markdown(rows: &[SizeRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### Scale targets (issue #22)\n");
    let _ = writeln!(
        s,
        "Ours against #22's targets: at 1M as loaded above (restarted from its persistence \
         file, and measured with it); at 10M with `--persistence.file` (the same) and in \
         memory mode (no persistence, loaded with checked pushes, only the PUT, the text \
         scrape and RSS measured). Relative targets are against ours' text scrape of the same \
         run or the reference's figure at the same size. Reference: its figure at the same \
         size; at 10M, where it is not run, its 1M figure for scale. Load average: the \
         1-minute load average at the start and the end of that gateway's run.\n"
    );
    let _ = writeln!(
        s,
        "| Stored series | Mode | Figure | Ours | Target | Result | Reference | Load average |"
    );
    let _ = writeln!(s, "|---|---|---|---:|---|---|---:|---|");
    for row in rows {
        for o in outcomes(row) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                size_label(o.size),
                o.mode,
                o.name,
                o.ours,
                o.target,
                o.result(),
                o.reference,
                o.load
            );
        }
    }
    if let Some(v) = verdict(rows) {
        let _ = writeln!(s, "\n{v}.");
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::measure::Latency;

    fn scrape(ms: u64, bytes: usize, content_type: &str) -> Scrape {
        Scrape {
            samples: 7,
            median: Duration::from_millis(ms),
            bytes,
            series: 1,
            loaded: 1,
            content_type: content_type.into(),
        }
    }

    /// A run at `n` series: text scrape in `text_ms`, restarted when `restart` is given.
    fn run(n: usize, text_ms: u64, restart: Option<u64>) -> RunResult {
        let text = "text/plain; version=0.0.4";
        RunResult {
            load_mode: String::new(),
            rss_empty: 0,
            rss_loaded: 140 * n as u64,
            n,
            latency: Latency {
                samples: 10,
                median: Duration::from_micros(300),
                p99: Duration::from_millis(1),
            },
            throughput: None,
            scrape: scrape(text_ms, 1000, text),
            protobuf_latency: None,
            gzip_scrape: Some(scrape(text_ms - 1, 100, text)),
            protobuf_scrape: Some(scrape(
                text_ms * 2,
                1000,
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily",
            )),
            openmetrics_scrape: Some(scrape(text_ms, 1000, text)),
            restart: restart.map(Duration::from_millis),
            load: ("1.00".into(), "2.00".into()),
            redis_cpu: None,
            redis_figures: None,
        }
    }

    fn row(n: usize, ours: Option<RunResult>, memory: Option<RunResult>) -> SizeRow {
        SizeRow {
            n,
            ours,
            reference: None,
            redis: None,
            memory,
            reference_scale: None,
        }
    }

    fn result<'a>(outcomes: &'a [Outcome], mode: &str, name: &str) -> &'a Outcome {
        outcomes
            .iter()
            .find(|o| o.mode == mode && o.name == name)
            .unwrap_or_else(|| panic!("no outcome {mode} {name}"))
    }

    #[test]
    fn at_1m_relative_targets_use_ours_text_scrape_and_the_reference() {
        let mut r = row(TARGET_SIZE, Some(run(TARGET_SIZE, 20, Some(400))), None);
        let mut reference = run(TARGET_SIZE, 2000, Some(5000));
        reference.gzip_scrape = Some(scrape(2000, 90, "text/plain"));
        r.reference = Some(reference);
        let o = outcomes(&r);
        assert_eq!(o.len(), 7);
        let p = |name| result(&o, PERSISTENCE, name).pass;
        assert_eq!(p("RSS per stored series"), Some(true));
        assert_eq!(
            p("restart (exec → a scrape holding every series)"),
            Some(true)
        );
        assert_eq!(p("text scrape, median"), Some(true));
        // 40 ms is more than 1.5 × 20 ms.
        assert_eq!(p("protobuf scrape, median"), Some(false));
        // Fast enough, but answered in text: not OpenMetrics.
        let om = result(&o, PERSISTENCE, "OpenMetrics scrape, median");
        assert_eq!(om.pass, Some(false));
        assert!(om.note.contains("text/plain"), "{}", om.note);
        // 100 bytes are more than 1.05 × 90.
        assert_eq!(p("gzip scrape size"), Some(false));
        assert_eq!(p("gzip scrape time, median"), Some(true));
        // Without the reference the size target cannot be judged.
        r.reference = None;
        assert_eq!(
            result(&outcomes(&r), PERSISTENCE, "gzip scrape size").pass,
            None
        );
    }

    #[test]
    fn at_10m_both_modes_are_checked_and_a_missing_one_is_not_a_pass() {
        let ours = run(SCALE_SIZE, 600, Some(4000));
        let r = row(
            SCALE_SIZE,
            Some(ours.clone()),
            Some(run(SCALE_SIZE, 400, None)),
        );
        let o = outcomes(&r);
        // Five targets with persistence, four in memory mode (no restart there).
        assert_eq!(o.len(), 9);
        assert_eq!(
            result(&o, PERSISTENCE, "text scrape, median").pass,
            Some(false)
        );
        assert_eq!(result(&o, MEMORY, "text scrape, median").pass, Some(true));
        assert_eq!(
            result(&o, PERSISTENCE, "RSS after loading").pass,
            Some(true)
        );
        assert!(o
            .iter()
            .all(|x| x.mode != MEMORY || !x.name.starts_with("restart")));
        let without_memory = row(SCALE_SIZE, Some(ours), None);
        let o = outcomes(&without_memory);
        assert_eq!(result(&o, MEMORY, "PUT 10 series, median").pass, None);
        assert!(verdict(&[without_memory]).is_some_and(|v| v.contains("not met")));
    }
}
