//! Length-delimited `io.prometheus.client.MetricFamily` messages, as client_golang's push
//! package sends them. Every family keeps what the format carries (native histogram
//! buckets, exemplars, created timestamps); when a name comes twice, the last family wins,
//! as upstream. A family without a type is a counter, because that is protobuf's default.
//!
//! Exemplar labels are checked here, like the labels of a sample (non-empty names outside
//! the reserved `__` prefix, each name once, no two names that a scrape without UTF-8
//! names would show alike) and within OpenMetrics' 128 runes for names and values
//! together: the store never sees them as labels, and a bad one would break scrapes.

use std::borrow::Cow;
use std::collections::HashMap;

use prost::Message;

use super::ParseError;
use crate::model::{
    is_reserved_label_name, legacy_escaped, Bucket, BucketSpan, Exemplar, Extras, Histogram, Label,
    Metric, MetricFamily, MetricType, NameValidation, NativeHistogram, Quantile, Str, Summary,
    Timestamp, Value, EXEMPLAR_MAX_RUNES,
};
use crate::proto;

/// Decodes a body of delimited messages.
///
/// # Errors
/// A [`ParseError::Protobuf`] for a truncated or malformed message, an empty name or an
/// invalid exemplar.
pub fn parse(mut body: &[u8]) -> Result<Vec<MetricFamily>, ParseError> {
    let mut order: Vec<Str> = Vec::new();
    let mut by_name: HashMap<Str, MetricFamily> = HashMap::new();
    let mut index = 0;
    while !body.is_empty() {
        index += 1;
        let message = proto::MetricFamily::decode_length_delimited(&mut body)
            .map_err(|e| ParseError::Protobuf(format!("invalid protobuf message {index}: {e}")))?;
        let family = convert_family(message)?;
        if by_name
            .insert(family.name.clone(), family.clone())
            .is_none()
        {
            order.push(family.name);
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|name| by_name.remove(&name))
        .collect())
}

/// Decodes one `MetricFamily` message without a length prefix (as upstream's persistence
/// file stores each family).
///
/// # Errors
/// A [`ParseError::Protobuf`] for a malformed message or an empty name.
pub fn parse_family(message: &[u8]) -> Result<MetricFamily, ParseError> {
    let message = proto::MetricFamily::decode(message)
        .map_err(|e| ParseError::Protobuf(format!("invalid protobuf message: {e}")))?;
    convert_family(message)
}

fn convert_family(message: proto::MetricFamily) -> Result<MetricFamily, ParseError> {
    let name = message.name.unwrap_or_default();
    if name.is_empty() {
        return Err(ParseError::Protobuf("metric family without a name".into()));
    }
    let metric_type = match message
        .r#type
        .and_then(|t| proto::MetricType::try_from(t).ok())
        .unwrap_or(proto::MetricType::Counter)
    {
        proto::MetricType::Counter => MetricType::Counter,
        proto::MetricType::Gauge => MetricType::Gauge,
        proto::MetricType::Summary => MetricType::Summary,
        proto::MetricType::Untyped => MetricType::Untyped,
        proto::MetricType::Histogram => MetricType::Histogram,
        proto::MetricType::GaugeHistogram => MetricType::GaugeHistogram,
    };
    let mut interned: HashMap<String, Str> = HashMap::new();
    let metrics = message
        .metric
        .into_iter()
        .map(|m| convert_metric(metric_type, m, &mut interned))
        .collect::<Result<Vec<_>, _>>()?;
    for metric in &metrics {
        if let Some(extras) = &metric.extras {
            check_exemplars(extras).map_err(|reason| {
                ParseError::Protobuf(format!("metric family {name:?}: {reason}"))
            })?;
        }
    }
    Ok(MetricFamily {
        name: name.into(),
        help: message.help.map(Into::into),
        metric_type,
        metrics,
    })
}

fn intern(interned: &mut HashMap<String, Str>, text: String) -> Str {
    if let Some(s) = interned.get(&text) {
        return s.clone();
    }
    let s: Str = text.clone().into();
    interned.insert(text, s.clone());
    s
}

fn convert_labels(pairs: Vec<proto::LabelPair>, interned: &mut HashMap<String, Str>) -> Vec<Label> {
    pairs
        .into_iter()
        .map(|p| Label {
            name: intern(interned, p.name.unwrap_or_default()),
            value: intern(interned, p.value.unwrap_or_default()),
        })
        .collect()
}

fn convert_metric(
    metric_type: MetricType,
    message: proto::Metric,
    interned: &mut HashMap<String, Str>,
) -> Result<Metric, ParseError> {
    let labels = convert_labels(message.label, interned);
    let mut extras = Extras::default();
    let value = match metric_type {
        MetricType::Counter => message.counter.clone().map(|c| {
            extras.created = c.created_timestamp.map(timestamp);
            extras.exemplar = c.exemplar.map(exemplar);
            Value::Counter(c.value.unwrap_or(0.0))
        }),
        MetricType::Gauge => message
            .gauge
            .as_ref()
            .map(|g| Value::Gauge(g.value.unwrap_or(0.0))),
        MetricType::Untyped => message
            .untyped
            .as_ref()
            .map(|u| Value::Untyped(u.value.unwrap_or(0.0))),
        MetricType::Summary => message.summary.map(|s| {
            extras.created = s.created_timestamp.map(timestamp);
            Value::Summary(Box::new(Summary {
                count: s.sample_count.unwrap_or(0),
                sum: s.sample_sum.unwrap_or(0.0),
                quantiles: s
                    .quantile
                    .into_iter()
                    .map(|q| Quantile {
                        quantile: q.quantile.unwrap_or(0.0),
                        value: q.value.unwrap_or(0.0),
                    })
                    .collect(),
            }))
        }),
        MetricType::Histogram | MetricType::GaugeHistogram => message
            .histogram
            .map(|h| Value::Histogram(Box::new(convert_histogram(h, &mut extras)))),
    };
    // A metric without the value its family's type needs is upstream's consistency error
    // ("is not a gauge"); the store reports it, so hand it a value of another kind.
    let value = value
        .or_else(|| {
            message
                .gauge
                .as_ref()
                .map(|g| Value::Gauge(g.value.unwrap_or(0.0)))
        })
        .or_else(|| {
            message
                .counter
                .map(|c| Value::Counter(c.value.unwrap_or(0.0)))
        })
        .or_else(|| {
            message
                .untyped
                .map(|u| Value::Untyped(u.value.unwrap_or(0.0)))
        })
        .unwrap_or(if metric_type == MetricType::Untyped {
            Value::Gauge(0.0)
        } else {
            Value::Untyped(0.0)
        });
    Ok(Metric {
        labels: labels.into_boxed_slice(),
        value,
        extras: Metric::extras_from(message.timestamp_ms, extras),
    })
}

fn convert_histogram(h: proto::Histogram, extras: &mut Extras) -> Histogram {
    extras.created = h.created_timestamp.map(timestamp);
    extras.exemplars = h.exemplars.into_iter().map(exemplar).collect();
    let float_counts = h.sample_count_float.is_some_and(|c| c != 0.0)
        || h.bucket
            .iter()
            .any(|b| b.cumulative_count_float.is_some_and(|c| c != 0.0));
    let mut bucket_exemplars = Vec::with_capacity(h.bucket.len());
    let buckets = h
        .bucket
        .into_iter()
        .map(|b| {
            bucket_exemplars.push(b.exemplar.map(exemplar));
            Bucket {
                upper_bound: b.upper_bound.unwrap_or(0.0),
                count: match b.cumulative_count_float {
                    Some(c) if c != 0.0 => c,
                    _ => b.cumulative_count.unwrap_or(0) as f64,
                },
            }
        })
        .collect();
    if bucket_exemplars.iter().any(Option::is_some) {
        extras.bucket_exemplars = bucket_exemplars;
    }
    let native = NativeHistogram {
        schema: h.schema.unwrap_or(0),
        zero_threshold: h.zero_threshold.unwrap_or(0.0),
        zero_count: h.zero_count,
        zero_count_float: h.zero_count_float,
        negative_spans: h.negative_span.into_iter().map(span).collect(),
        negative_deltas: h.negative_delta,
        negative_counts: h.negative_count,
        positive_spans: h.positive_span.into_iter().map(span).collect(),
        positive_deltas: h.positive_delta,
        positive_counts: h.positive_count,
    };
    if native.is_native() || h.schema.is_some() {
        extras.native = Some(native);
    }
    Histogram {
        count: match h.sample_count_float {
            Some(c) if c != 0.0 => c,
            _ => h.sample_count.unwrap_or(0) as f64,
        },
        float_counts,
        sum: h.sample_sum.unwrap_or(0.0),
        buckets,
    }
}

fn check_exemplars(extras: &Extras) -> Result<(), String> {
    extras
        .exemplar
        .iter()
        .chain(extras.bucket_exemplars.iter().flatten())
        .chain(&extras.exemplars)
        .try_for_each(check_exemplar)
}

fn check_exemplar(exemplar: &Exemplar) -> Result<(), String> {
    let mut runes = 0;
    let mut exposed: Vec<(Cow<'_, str>, &str)> = Vec::with_capacity(exemplar.labels.len());
    for label in &exemplar.labels {
        let name = &*label.name;
        if !NameValidation::Utf8.is_valid_label_name(name) || is_reserved_label_name(name) {
            return Err(format!("exemplar label name {name:?} is invalid"));
        }
        runes += name.chars().count() + label.value.chars().count();
        exposed.push((legacy_escaped(name, true), name));
    }
    if runes > EXEMPLAR_MAX_RUNES {
        return Err(format!(
            "exemplar labels have {runes} runes, more than the limit of {EXEMPLAR_MAX_RUNES}"
        ));
    }
    exposed.sort_unstable();
    if let Some(pair) = exposed.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(if pair[0].1 == pair[1].1 {
            format!("exemplar label name {:?} is repeated", pair[0].1)
        } else {
            format!(
                "exemplar label names {:?} and {:?} would both be exposed as {:?}",
                pair[0].1, pair[1].1, pair[0].0
            )
        });
    }
    Ok(())
}

fn span(s: proto::BucketSpan) -> BucketSpan {
    BucketSpan {
        offset: s.offset.unwrap_or(0),
        length: s.length.unwrap_or(0),
    }
}

fn timestamp(t: proto::Timestamp) -> Timestamp {
    Timestamp {
        seconds: t.seconds,
        nanos: t.nanos,
    }
}

fn exemplar(e: proto::Exemplar) -> Exemplar {
    Exemplar {
        labels: e
            .label
            .into_iter()
            .map(|p| Label::new(p.name.unwrap_or_default(), p.value.unwrap_or_default()))
            .collect(),
        value: e.value.unwrap_or(0.0),
        timestamp: e.timestamp.map(timestamp),
    }
}
