//! Aggregating pushes (`/aggregate/...`): each pushed series is added to the stored series
//! with the same full label set in its group instead of replacing it. Counters add (the
//! earliest created timestamp is kept), classic histograms add bucket by bucket when their
//! bounds agree, native histograms add as Prometheus adds them ([`native`]), summaries
//! without quantiles add their sum and count, and gauges, untyped metrics and gauge
//! histograms keep the last pushed value. Families the push does not name are kept.
//!
//! The cost stays in what is pushed: each aggregated family keeps a map from series identity
//! to its place in the family (`Group::positions`), built the first time an aggregating
//! push reaches a family and dropped whenever the family is replaced or removed. The check
//! ([`check_aggregation`]) refuses what cannot be added before anything is journaled, so
//! that applying ([`apply_aggregate`]) cannot fail, also when a journaled push is replayed.

pub(crate) mod native;

use std::sync::Arc;

use crate::model::{GroupingKey, Histogram, Metric, MetricFamily, MetricType, Str, Summary, Value};

use super::check::render_labels;
use super::consistency::type_conflict;
use super::group::{insert_family, Group};
use super::quota;
use super::{series_id, Rejection, SeriesId, State, StoredFamily};

/// Builds the position maps of the group's families that a push names and that have none
/// yet: once per family, in its size; later pushes only look up.
pub(super) fn index_positions(state: &mut State, key: &GroupingKey, families: &[MetricFamily]) {
    let Some(group) = state.groups.get_mut(key) else {
        return;
    };
    for family in families {
        index_family(group, &family.name);
    }
}

fn index_family(group: &mut Group, name: &Str) {
    if group.positions.contains_key(name) {
        return;
    }
    let Some(stored) = group.families.get(name) else {
        return;
    };
    let positions = stored
        .series_as_kept()
        .enumerate()
        .map(|(i, series)| (series_id(name, series.labels()), i as u32))
        .collect();
    group.positions.insert(name.clone(), positions);
}

/// Refuses an aggregating push that cannot be added to what its group stores: a family
/// whose type or help differs from the stored one, or a series that [`check_series`]
/// refuses. Needs [`index_positions`] first.
pub(super) fn check_aggregation(
    state: &State,
    key: &GroupingKey,
    families: &[MetricFamily],
    ids: &[Vec<SeriesId>],
) -> Result<(), Rejection> {
    let group = state.groups.get(key);
    for (family, family_ids) in families.iter().zip(ids) {
        let name = &family.name;
        let stored = group.and_then(|g| Some((g.families.get(name)?, g.positions.get(name)?)));
        if let Some((stored, _)) = stored {
            let stored_type = stored.metric_type;
            if stored_type != family.metric_type {
                return Err(type_conflict(name, family.metric_type, stored_type));
            }
            if let (Some(pushed), Some(kept)) = (&family.help, &stored.help) {
                if pushed != kept {
                    return Err(Rejection::NotAggregable {
                        name: name.to_string(),
                        series: String::new(),
                        reason: format!("help {pushed:?} differs from the stored help {kept:?}"),
                    });
                }
            }
        }
        for (metric, id) in family.metrics.iter().zip(family_ids) {
            let stored_metric = stored
                .and_then(|(s, positions)| s.series_kept_at(*positions.get(id)? as usize))
                .map(|s| s.to_own_metric());
            check_series(family.metric_type, stored_metric.as_ref(), metric).map_err(|reason| {
                Rejection::NotAggregable {
                    name: name.to_string(),
                    series: format!(" {{ {}}}", render_labels(&metric.labels)),
                    reason,
                }
            })?;
        }
    }
    Ok(())
}

/// Why `pushed` cannot be added to `stored` (or stored as the first value of its series).
pub(crate) fn check_series(
    family_type: MetricType,
    stored: Option<&Metric>,
    pushed: &Metric,
) -> Result<(), String> {
    if !adds(family_type) {
        return Ok(());
    }
    let finite = |what: &str, v: f64| {
        if v.is_finite() {
            Ok(())
        } else {
            Err(format!("{what} {v} cannot be added"))
        }
    };
    let stored_metric = stored;
    match (&pushed.value, stored.map(|m| &m.value)) {
        (Value::Counter(v), _) => finite("counter value", *v),
        (Value::Summary(pushed), stored) => {
            let quantiles = |s: &Summary| !s.quantiles.is_empty();
            if quantiles(pushed) {
                return Err("quantiles cannot be added; push a histogram instead".into());
            }
            if let Some(Value::Summary(stored)) = stored {
                if quantiles(stored) {
                    return Err("the stored summary has quantiles, which cannot be added; push a histogram instead".into());
                }
                stored
                    .count
                    .checked_add(pushed.count)
                    .ok_or("the summary count would overflow")?;
            }
            finite("summary sum", pushed.sum)
        }
        (Value::Histogram(h), stored) => {
            finite("histogram count", h.count)?;
            finite("histogram sum", h.sum)?;
            if let Some(b) = h.buckets.iter().find(|b| !b.count.is_finite()) {
                finite("bucket count", b.count)?;
            }
            let native = pushed.extras.as_ref().and_then(|e| e.native.as_ref());
            if let Some(native) = native {
                native::check(native)?;
            }
            let Some(Value::Histogram(stored_h)) = stored else {
                return Ok(());
            };
            if bounds(stored_h) != bounds(h) {
                return Err(format!(
                    "bucket bounds {:?} differ from the stored bounds {:?}",
                    bounds(h),
                    bounds(stored_h)
                ));
            }
            let stored_native = stored_metric
                .and_then(|m| m.extras.as_ref())
                .and_then(|e| e.native.as_ref())
                .filter(|n| n.is_native());
            match (stored_native, native.filter(|n| n.is_native())) {
                (None, None) => Ok(()),
                (Some(stored), Some(_)) => native::check(stored),
                _ => Err("a native histogram and a classic one cannot be added".into()),
            }
        }
        _ => Ok(()),
    }
}

/// Whether series of this type are added (else the last pushed value wins).
fn adds(family_type: MetricType) -> bool {
    matches!(
        family_type,
        MetricType::Counter | MetricType::Summary | MetricType::Histogram
    )
}

/// The classic bucket bounds, with the `+Inf` bucket every histogram has implicitly.
fn bounds(h: &Histogram) -> Vec<f64> {
    let mut bounds: Vec<f64> = h.buckets.iter().map(|b| b.upper_bound).collect();
    if bounds.last() != Some(&f64::INFINITY) {
        bounds.push(f64::INFINITY);
    }
    bounds
}

/// Adds an aggregating push to its group: named families merged series by series, new
/// families and series stored as pushed. Checked before (or replayed after a check).
pub(super) fn apply_aggregate(
    state: &mut State,
    key: &Arc<GroupingKey>,
    families: Vec<MetricFamily>,
    now: f64,
) {
    for family in families {
        let exists = state
            .groups
            .get(&**key)
            .is_some_and(|g| g.families.contains_key(&family.name));
        if exists {
            merge_family(state, key, family, now);
        } else {
            insert_family(state, key, StoredFamily::new(family, now, key.clone()));
        }
    }
}

fn merge_family(state: &mut State, key: &Arc<GroupingKey>, family: MetricFamily, now: f64) {
    let version = state.bump();
    let State {
        groups,
        names,
        series,
        series_total,
        quotas,
        ..
    } = state;
    let (Some(group), Some(entry)) = (groups.get_mut(&**key), names.get_mut(&family.name)) else {
        return;
    };
    index_family(group, &family.name);
    let (Some(slot), Some(positions)) = (
        group.families.get_mut(&family.name),
        group.positions.get_mut(&family.name),
    ) else {
        return;
    };
    // The name index holds the other reference; without it the family is changed in place
    // (unless a scrape or snapshot holds it right now, which then keeps its copy).
    entry.owners.remove(&**key);
    let stored = Arc::make_mut(slot);
    stored.pushed_at = now;
    if family.help.is_some() {
        stored.help = family.help;
    }
    let family_type = stored.metric_type;
    let mut new = Vec::new();
    for metric in family.metrics {
        let id = series_id(&family.name, metric.labels.iter());
        match positions.get(&id) {
            Some(&at) => {
                let at = at as usize;
                if let Some(mut target) = stored.series_kept_at(at).map(|s| s.to_own_metric()) {
                    merge_series(family_type, &mut target, metric);
                    stored.set_kept(at, target.value, target.extras);
                }
            }
            None => {
                positions.insert(id, (stored.len() + new.len()) as u32);
                let mut metric = metric;
                metric.labels = key.own_labels(metric.labels);
                new.push(metric);
                series.add(id);
                *series_total += 1;
            }
        }
    }
    let added = new.len();
    stored.append(new);
    // New series count towards the group's quotas, as those of an inserted family do.
    quota::change_series(quotas, &group.quotas, added, true);
    entry.owners.insert(key.clone(), slot.clone());
    entry.version = version;
}

/// `pushed` added to `stored` by the rules of the family's type.
pub(crate) fn merge_series(family_type: MetricType, stored: &mut Metric, pushed: Metric) {
    if !adds(family_type) {
        // Last value wins; the stored labels (lean) stay.
        stored.value = pushed.value;
        stored.extras = pushed.extras;
        return;
    }
    match (&mut stored.value, pushed.value) {
        (Value::Counter(sum), Value::Counter(v)) => *sum += v,
        (Value::Summary(sum), Value::Summary(v)) => {
            sum.count = sum.count.saturating_add(v.count);
            sum.sum += v.sum;
        }
        (Value::Histogram(sum), Value::Histogram(v)) => add_histogram(sum, &v),
        _ => return,
    }
    let pushed_extras = pushed.extras.map(|e| *e).unwrap_or_default();
    let mut extras = stored.extras.take().map(|e| *e).unwrap_or_default();
    extras.created = match (extras.created, pushed_extras.created) {
        (Some(a), Some(b)) => Some(if (b.seconds, b.nanos) < (a.seconds, a.nanos) {
            b
        } else {
            a
        }),
        (a, b) => a.or(b),
    };
    if pushed_extras.exemplar.is_some() {
        extras.exemplar = pushed_extras.exemplar;
    }
    let buckets = extras
        .bucket_exemplars
        .len()
        .max(pushed_extras.bucket_exemplars.len());
    extras.bucket_exemplars.resize(buckets, None);
    for (kept, new) in extras
        .bucket_exemplars
        .iter_mut()
        .zip(pushed_extras.bucket_exemplars)
    {
        if new.is_some() {
            *kept = new;
        }
    }
    if let (Some(sum), Some(new)) = (&extras.native, &pushed_extras.native) {
        extras.native = Some(native::add(sum, new));
    } else if extras.native.is_none() {
        extras.native = pushed_extras.native;
    }
    if !pushed_extras.exemplars.is_empty() {
        extras.exemplars = pushed_extras.exemplars;
    }
    extras.timestamp_ms = None;
    stored.extras = Metric::extras_from(None, extras);
}

/// Classic part of a histogram sum: count, sum and buckets (same bounds, checked before;
/// a bucket missing its `+Inf` gets it from the count).
fn add_histogram(sum: &mut Histogram, pushed: &Histogram) {
    let with_infinity = |h: &mut Histogram| {
        if h.buckets.last().map(|b| b.upper_bound) != Some(f64::INFINITY) && !h.buckets.is_empty() {
            h.buckets.push(crate::model::Bucket {
                upper_bound: f64::INFINITY,
                count: h.count,
            });
        }
    };
    let mut pushed = pushed.clone();
    if sum.buckets.len() != pushed.buckets.len() {
        with_infinity(sum);
        with_infinity(&mut pushed);
    }
    sum.count += pushed.count;
    sum.sum += pushed.sum;
    sum.float_counts |= pushed.float_counts;
    for (kept, new) in sum.buckets.iter_mut().zip(&pushed.buckets) {
        kept.count += new.count;
    }
}

#[cfg(test)]
mod tests;
