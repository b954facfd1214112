//! prometheus-client registries read back as model families, so that the gateway's own
//! metrics (telemetry, replication) are merged into the exposition like pushed ones. Used by
//! `telemetry` and `replicate::metrics` alike; it sits below both.

use prometheus_client::registry::Registry;

use crate::model::{MetricFamily, NameValidation};

/// Every metric of a prometheus-client registry as metric families.
pub fn registry_families(registry: &Registry) -> Vec<MetricFamily> {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => openmetrics_to_families(&text),
        Err(_) => Vec::new(),
    }
}

/// prometheus-client writes OpenMetrics; the 0.0.4 text format names a counter family
/// after its `_total` series and has no `# EOF` or `# UNIT` lines. After that rewrite our
/// own parser reads it.
fn openmetrics_to_families(text: &str) -> Vec<MetricFamily> {
    let counters: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut converted = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        converted.push_str(renamed.as_deref().unwrap_or(line));
        converted.push('\n');
    }
    let mut families =
        crate::parse::text::parse(converted.as_bytes(), NameValidation::Legacy).unwrap_or_default();
    for family in &mut families {
        for metric in &mut family.metrics {
            metric.labels.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
    families
}
