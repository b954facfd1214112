//! The gateway's own metrics and its logging setup.
//!
//! Request counters and push histograms are kept with prometheus-client, the push
//! summaries upstream exposes in [`summary`]; at scrape time
//! they are turned into [`MetricFamily`]s (together with `process_*` figures read from
//! `/proc` and the store's counts) so that the exposition merges them with the pushed
//! families in one order, exactly as upstream's gatherer does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use clap::ValueEnum;
use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::clock::unix_now;
use crate::model::{Label, Metric, MetricFamily, MetricType, Value};
use crate::registry::registry_families;
use crate::store::Stats;

mod rules;
mod summary;
pub use rules::{
    access_families, quota_families, ACCESS_DENIED, QUOTA_GROUPS, QUOTA_MAX_GROUPS,
    QUOTA_MAX_SERIES, QUOTA_SERIES,
};
use summary::SlidingSummary;

/// Counts HTTP requests by handler, status code and method (scrapes excluded).
pub const HTTP_REQUESTS: &str = "pushgateway_http_requests_total";
/// Push latency by method: a summary with upstream's name, quantiles and labels.
pub const PUSH_DURATION: &str = "pushgateway_http_push_duration_seconds";
/// Push body size by method: a summary with upstream's name, quantiles and labels.
pub const PUSH_SIZE: &str = "pushgateway_http_push_size_bytes";
/// Push latency by method as a histogram, which aggregates across replicas.
pub const PUSH_DURATION_HISTOGRAM: &str = "pushgateway_http_push_duration_histogram_seconds";
/// Push body size by method as a histogram.
pub const PUSH_SIZE_HISTOGRAM: &str = "pushgateway_http_push_size_histogram_bytes";
/// Build information.
pub const BUILD_INFO: &str = "pushgateway_build_info";
/// Number of stored groups.
pub const STORED_GROUPS: &str = "pushgateway_stored_groups";
/// Number of stored metrics.
pub const STORED_SERIES: &str = "pushgateway_stored_series";
/// Groups removed because they outlived their TTL.
pub const EXPIRED_GROUPS: &str = "pushgateway_expired_groups_total";
/// Series left out of scrapes because unchecked pushes made them inconsistent.
pub const DROPPED_SERIES: &str = "pushgateway_scrape_dropped_series_total";

/// Whether the last reload of `--config.file` worked (only with that flag).
pub const CONFIG_RELOAD_OK: &str = "pushgateway_config_last_reload_successful";
/// Whether the last change of `--web.config.file` was taken (only with that flag).
pub const WEB_CONFIG_RELOAD_OK: &str = "pushgateway_web_config_last_reload_successful";

/// The `method` label of a request: the standard methods in lower case, anything else
/// `unknown` (as client_golang's promhttp does), so that a client sending made-up
/// methods cannot create series.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [(&str, &str); 10] = [
        ("GET", "get"),
        ("PUT", "put"),
        ("HEAD", "head"),
        ("POST", "post"),
        ("DELETE", "delete"),
        ("CONNECT", "connect"),
        ("OPTIONS", "options"),
        ("NOTIFY", "notify"),
        ("TRACE", "trace"),
        ("PATCH", "patch"),
    ];
    KNOWN
        .iter()
        .find(|(upper, lower)| method == *upper || method == *lower)
        .map_or("unknown", |(_, lower)| lower)
}

/// Every metric name the gateway exposes itself, with its type: pushes may not contradict
/// them.
pub fn own_metric_types() -> HashMap<String, MetricType> {
    [
        (HTTP_REQUESTS, MetricType::Counter),
        (PUSH_DURATION, MetricType::Summary),
        (PUSH_SIZE, MetricType::Summary),
        (PUSH_DURATION_HISTOGRAM, MetricType::Histogram),
        (PUSH_SIZE_HISTOGRAM, MetricType::Histogram),
        (BUILD_INFO, MetricType::Gauge),
        (STORED_GROUPS, MetricType::Gauge),
        (STORED_SERIES, MetricType::Gauge),
        (DROPPED_SERIES, MetricType::Counter),
        (EXPIRED_GROUPS, MetricType::Counter),
        (CONFIG_RELOAD_OK, MetricType::Gauge),
        (WEB_CONFIG_RELOAD_OK, MetricType::Gauge),
        ("process_cpu_seconds_total", MetricType::Counter),
        ("process_open_fds", MetricType::Gauge),
        ("process_max_fds", MetricType::Gauge),
        ("process_virtual_memory_bytes", MetricType::Gauge),
        ("process_resident_memory_bytes", MetricType::Gauge),
        ("process_start_time_seconds", MetricType::Gauge),
    ]
    .into_iter()
    .chain(crate::replicate::metrics::TYPES)
    .chain(rules::TYPES)
    .map(|(name, t)| (name.to_string(), t))
    .collect()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    code: String,
    handler: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

/// The gateway's own metrics.
pub struct Telemetry {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    push_duration: Family<MethodLabels, Histogram>,
    push_size: Family<MethodLabels, Histogram>,
    /// Per method: duration and size summaries.
    push_summaries: RwLock<BTreeMap<String, Arc<[SlidingSummary; 2]>>>,
    dropped_series: Counter,
    start_time: f64,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    /// Registers every metric.
    pub fn new() -> Telemetry {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            HTTP_REQUESTS.trim_end_matches("_total"),
            "Total HTTP requests processed by the Pushgateway, excluding scrapes",
            requests.clone(),
        );
        let push_duration = Family::<MethodLabels, Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        registry.register(
            PUSH_DURATION_HISTOGRAM,
            "HTTP request duration for pushes to the Pushgateway",
            push_duration.clone(),
        );
        let push_size = Family::<MethodLabels, Histogram>::new_with_constructor(
            size_histogram as fn() -> Histogram,
        );
        registry.register(
            PUSH_SIZE_HISTOGRAM,
            "HTTP request size for pushes to the Pushgateway",
            push_size.clone(),
        );
        let dropped_series = Counter::default();
        registry.register(
            DROPPED_SERIES.trim_end_matches("_total"),
            "Series left out of scrapes because pushes with the consistency check disabled made them inconsistent",
            dropped_series.clone(),
        );
        Telemetry {
            registry,
            requests,
            push_duration,
            push_size,
            push_summaries: RwLock::new(BTreeMap::new()),
            dropped_series,
            start_time: process_start_time().unwrap_or_else(unix_now),
        }
    }

    /// Counts one HTTP request.
    pub fn observe_request(&self, handler: &str, code: u16, method: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                code: code.to_string(),
                handler: handler.to_string(),
                method: method_label(method).to_string(),
            })
            .inc();
    }

    /// Records one push's duration and body size.
    pub fn observe_push(&self, method: &str, seconds: f64, bytes: usize) {
        let labels = MethodLabels {
            method: method_label(method).to_string(),
        };
        self.push_duration.get_or_create(&labels).observe(seconds);
        self.push_size.get_or_create(&labels).observe(bytes as f64);
        let summaries = self.push_summaries.read().get(&labels.method).cloned();
        let summaries = summaries.unwrap_or_else(|| {
            self.push_summaries
                .write()
                .entry(labels.method.clone())
                .or_default()
                .clone()
        });
        summaries[0].observe(seconds);
        summaries[1].observe(bytes as f64);
    }

    /// Upstream's push summaries, one series per method seen.
    fn summary_families(&self) -> Vec<MetricFamily> {
        let summaries = self.push_summaries.read();
        [
            (
                PUSH_DURATION,
                "HTTP request duration for pushes to the Pushgateway.",
            ),
            (
                PUSH_SIZE,
                "HTTP request size for pushes to the Pushgateway.",
            ),
        ]
        .into_iter()
        .enumerate()
        .filter(|_| !summaries.is_empty())
        .map(|(index, (name, help))| MetricFamily {
            name: name.into(),
            help: Some(help.into()),
            metric_type: MetricType::Summary,
            metrics: summaries
                .iter()
                .map(|(method, pair)| {
                    Metric::new(
                        vec![Label::new("method", method.as_str())],
                        Value::Summary(Box::new(pair[index].snapshot())),
                    )
                })
                .collect(),
        })
        .collect()
    }

    /// Counts series left out of a scrape.
    pub fn observe_dropped_series(&self, count: u64) {
        if count > 0 {
            self.dropped_series.inc_by(count);
        }
    }

    /// The start time of the process, Unix seconds.
    pub fn start_time(&self) -> f64 {
        self.start_time
    }

    /// Every own metric as metric families, labels sorted, families in any order.
    pub fn families(&self, stats: Stats, expired_groups: u64) -> Vec<MetricFamily> {
        let mut families = registry_families(&self.registry);
        families.extend(self.summary_families());
        families.push(gauge(
            BUILD_INFO,
            "A metric with a constant '1' value labeled by version of the Pushgateway.",
            vec![Label::new("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        ));
        families.push(gauge(
            STORED_GROUPS,
            "Number of groups stored in the Pushgateway.",
            vec![],
            stats.groups as f64,
        ));
        families.push(gauge(
            STORED_SERIES,
            "Number of metrics stored in the Pushgateway (a histogram or summary counts once).",
            vec![],
            stats.series as f64,
        ));
        families.push(single(
            EXPIRED_GROUPS,
            "Groups removed because they had no successful push for their TTL.",
            MetricType::Counter,
            vec![],
            Value::Counter(expired_groups as f64),
        ));
        families.extend(process_families(self.start_time));
        families
    }
}

/// The reload gauges of the configuration files in use (`None`: no such file), as
/// Prometheus's own `*_config_last_reload_successful`: 1 when the last reload worked.
pub fn reload_families(
    config_file: Option<bool>,
    web_config_file: Option<bool>,
) -> Vec<MetricFamily> {
    [
        (
            CONFIG_RELOAD_OK,
            "Whether the last reload of --config.file succeeded.",
            config_file,
        ),
        (
            WEB_CONFIG_RELOAD_OK,
            "Whether the last change of --web.config.file was taken; 0 while a refused version (invalid, or turning security off) is on disk.",
            web_config_file,
        ),
    ]
    .into_iter()
    .filter_map(|(name, help, ok)| ok.map(|ok| gauge(name, help, vec![], f64::from(u8::from(ok)))))
    .collect()
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

fn size_histogram() -> Histogram {
    Histogram::new(exponential_buckets(64.0, 4.0, 10))
}

fn gauge(name: &str, help: &str, labels: Vec<Label>, value: f64) -> MetricFamily {
    single(name, help, MetricType::Gauge, labels, Value::Gauge(value))
}

fn single(
    name: &str,
    help: &str,
    metric_type: MetricType,
    labels: Vec<Label>,
    value: Value,
) -> MetricFamily {
    MetricFamily {
        name: name.into(),
        help: Some(help.into()),
        metric_type,
        metrics: vec![Metric::new(labels, value)],
    }
}

// Linux reports CPU time in clock ticks and RSS in pages; these are the values on every
// architecture we ship for.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;
const PAGE_SIZE: f64 = 4096.0;

/// Fields of `/proc/self/stat` after the command name.
fn proc_stat_fields() -> Option<Vec<String>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_comm = stat.rsplit_once(')')?.1;
    Some(after_comm.split_whitespace().map(str::to_string).collect())
}

fn process_start_time() -> Option<f64> {
    let fields = proc_stat_fields()?;
    // Field 22 of stat (index 19 after the command) is the start time in ticks since boot.
    let start_ticks: f64 = fields.get(19)?.parse().ok()?;
    let boot_time: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot_time + start_ticks / CLOCK_TICKS_PER_SECOND)
}

fn process_families(start_time: f64) -> Vec<MetricFamily> {
    let mut families = vec![gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        vec![],
        start_time,
    )];
    if let Some(fields) = proc_stat_fields() {
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15; vsize 23; rss 24 (indices 11, 12, 20, 21).
        families.push(single(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            MetricType::Counter,
            vec![],
            Value::Counter((field(11) + field(12)) / CLOCK_TICKS_PER_SECOND),
        ));
        families.push(gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            vec![],
            field(20),
        ));
        families.push(gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            vec![],
            field(21) * PAGE_SIZE,
        ));
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        families.push(gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            vec![],
            entries.count() as f64,
        ));
    }
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))?
                .split_whitespace()
                .nth(3)?
                .parse::<f64>()
                .ok()
        });
    if let Some(max_fds) = max_fds {
        families.push(gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            vec![],
            max_fds,
        ));
    }
    families
}

/// Log severity threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything.
    Debug,
    /// Informational and above.
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

impl LogLevel {
    /// The matching tracing level.
    pub fn as_tracing(self) -> tracing::Level {
        match self {
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// key=value pairs.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Installs the tracing subscriber for `--log.level` and `--log.format`.
pub fn init_logging(level: LogLevel, format: LogFormat) {
    let filter = tracing_subscriber::filter::LevelFilter::from_level(level.as_tracing());
    let builder = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_ansi(false)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Logfmt => builder.event_format(crate::logfmt::Logfmt).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_families_match_the_declared_types() {
        let telemetry = Telemetry::new();
        telemetry.observe_request("push", 200, "PUT");
        telemetry.observe_push("PUT", 0.01, 100);
        let families = telemetry.families(Stats::default(), 0);
        let declared = own_metric_types();
        for family in &families {
            assert_eq!(
                declared.get(&*family.name),
                Some(&family.metric_type),
                "{} is exposed as {:?} but declared otherwise",
                family.name,
                family.metric_type
            );
        }
        assert!(families.iter().any(|f| &*f.name == HTTP_REQUESTS));
        assert!(families.iter().any(|f| &*f.name == PUSH_DURATION));
    }
}
