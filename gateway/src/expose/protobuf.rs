//! Delimited protobuf exposition: one `MetricFamily` message per name, carrying native
//! histograms, exemplars and created timestamps as they were pushed.

use prost::Message;

use super::{exposed_name, Family, ScrapeFormat};
use crate::model::{Exemplar, Extras, LabelRef, MetricType, Series, Timestamp, ValueRef};
use crate::proto;

/// The start of a family's length-delimited message: its length, then name, help and
/// type. The message goes on with the family's metrics, `metrics_len` bytes encoded by
/// [`encode_metrics`] (possibly in several pieces): prost writes fields in tag order, and
/// the metrics (field 4) come after the type (field 3) and before the unset unit (5), so
/// the concatenation is the very bytes the whole message encodes to.
pub fn encode_family_header(family: &Family<'_>, metrics_len: usize) -> Vec<u8> {
    let header = proto::MetricFamily {
        name: Some(family.name.to_string()),
        help: family.help.map(str::to_string),
        r#type: Some(proto_type(family.metric_type) as i32),
        metric: Vec::new(),
        unit: None,
    };
    let len = header.encoded_len() + metrics_len;
    let mut out = Vec::with_capacity(len + 10);
    prost::encoding::encode_varint(len as u64, &mut out);
    // Encoding into a Vec only fails when it is out of capacity, and a Vec grows.
    let _ = header.encode(&mut out);
    out
}

/// A family's metrics as the repeated `metric` field of its message.
pub fn encode_metrics(family: &Family<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    for series in family.metrics {
        let metric = proto_metric(family.format, series);
        prost::encoding::message::encode(METRIC_FIELD, &metric, &mut out);
    }
    out
}

/// The tag of `MetricFamily.metric`.
const METRIC_FIELD: u32 = 4;

fn proto_type(metric_type: MetricType) -> proto::MetricType {
    match metric_type {
        MetricType::Counter => proto::MetricType::Counter,
        MetricType::Gauge => proto::MetricType::Gauge,
        MetricType::Summary => proto::MetricType::Summary,
        MetricType::Untyped => proto::MetricType::Untyped,
        MetricType::Histogram => proto::MetricType::Histogram,
        MetricType::GaugeHistogram => proto::MetricType::GaugeHistogram,
    }
}

fn labels<'a, L: Into<LabelRef<'a>>>(
    format: ScrapeFormat,
    labels: impl IntoIterator<Item = L>,
) -> Vec<proto::LabelPair> {
    labels
        .into_iter()
        .map(Into::into)
        .map(|l: LabelRef<'_>| proto::LabelPair {
            name: Some(exposed_name(format, l.name, true).into_owned()),
            value: Some(l.value.to_string()),
        })
        .collect()
}

fn timestamp(t: Timestamp) -> proto::Timestamp {
    proto::Timestamp {
        seconds: t.seconds,
        nanos: t.nanos,
    }
}

fn exemplar(format: ScrapeFormat, e: &Exemplar) -> proto::Exemplar {
    proto::Exemplar {
        label: labels(format, &e.labels),
        value: Some(e.value),
        timestamp: e.timestamp.map(timestamp),
    }
}

fn proto_metric(format: ScrapeFormat, series: &Series<'_>) -> proto::Metric {
    let empty = Extras::default();
    let extras = series.extras().unwrap_or(&empty);
    let mut message = proto::Metric {
        label: labels(format, series.labels()),
        timestamp_ms: series.timestamp_ms(),
        ..Default::default()
    };
    match series.value() {
        ValueRef::Counter(v) => {
            message.counter = Some(proto::Counter {
                value: Some(v),
                exemplar: extras.exemplar.as_ref().map(|e| exemplar(format, e)),
                created_timestamp: extras.created.map(timestamp),
            })
        }
        ValueRef::Gauge(v) => message.gauge = Some(proto::Gauge { value: Some(v) }),
        ValueRef::Untyped(v) => message.untyped = Some(proto::Untyped { value: Some(v) }),
        ValueRef::Summary(s) => {
            message.summary = Some(proto::Summary {
                sample_count: Some(s.count),
                sample_sum: Some(s.sum),
                quantile: s
                    .quantiles
                    .iter()
                    .map(|q| proto::Quantile {
                        quantile: Some(q.quantile),
                        value: Some(q.value),
                    })
                    .collect(),
                created_timestamp: extras.created.map(timestamp),
            })
        }
        ValueRef::Histogram(h) => {
            let native = extras.native.clone().unwrap_or_default();
            let span = |s: &crate::model::BucketSpan| proto::BucketSpan {
                offset: Some(s.offset),
                length: Some(s.length),
            };
            message.histogram = Some(proto::Histogram {
                sample_count: (!h.float_counts).then_some(h.count as u64),
                sample_count_float: h.float_counts.then_some(h.count),
                sample_sum: Some(h.sum),
                bucket: h
                    .buckets
                    .iter()
                    .enumerate()
                    .map(|(i, b)| proto::Bucket {
                        cumulative_count: (!h.float_counts).then_some(b.count as u64),
                        cumulative_count_float: h.float_counts.then_some(b.count),
                        upper_bound: Some(b.upper_bound),
                        exemplar: extras
                            .bucket_exemplars
                            .get(i)
                            .and_then(Option::as_ref)
                            .map(|e| exemplar(format, e)),
                    })
                    .collect(),
                created_timestamp: extras.created.map(timestamp),
                schema: extras.native.as_ref().map(|n| n.schema),
                zero_threshold: extras.native.as_ref().map(|n| n.zero_threshold),
                zero_count: native.zero_count,
                zero_count_float: native.zero_count_float,
                negative_span: native.negative_spans.iter().map(span).collect(),
                negative_delta: native.negative_deltas.clone(),
                negative_count: native.negative_counts.clone(),
                positive_span: native.positive_spans.iter().map(span).collect(),
                positive_delta: native.positive_deltas.clone(),
                positive_count: native.positive_counts.clone(),
                exemplars: extras
                    .exemplars
                    .iter()
                    .map(|e| exemplar(format, e))
                    .collect(),
            })
        }
    }
    message
}
