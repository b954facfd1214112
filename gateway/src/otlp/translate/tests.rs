use super::attributes::any_value_string;
use super::refusals::MAX_MESSAGE_BYTES;
use super::*;
use crate::model::{Label, MetricType, Timestamp};
use crate::otlp::proto::{
    any_value, exponential_histogram_data_point::Buckets, metric::Data, AggregationTemporality,
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, HistogramDataPoint,
    InstrumentationScope, KeyValue, NumberDataPoint, Resource, ResourceMetrics, ScopeMetrics, Sum,
    NO_RECORDED_VALUE,
};

fn settings() -> Settings {
    Settings {
        escaping: Escaping::Underscores,
        promote: vec!["deployment.environment".into()],
        max_labels_per_series: 8,
        max_label_length: 64,
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue::string(key, value)
}

fn point(attributes: Vec<KeyValue>, value: f64) -> NumberDataPoint {
    NumberDataPoint::double(attributes, value, 1_500_000_000)
}

fn metric(name: &str, unit: &str, data: Data) -> proto::Metric {
    proto::Metric {
        name: name.into(),
        description: format!("{name} help"),
        unit: unit.into(),
        data: Some(data),
    }
}

fn sum(points: Vec<NumberDataPoint>, monotonic: bool, temporality: AggregationTemporality) -> Data {
    Data::Sum(Sum {
        data_points: points,
        aggregation_temporality: temporality as i32,
        is_monotonic: monotonic,
    })
}

fn export(
    resource: Vec<KeyValue>,
    metrics: Vec<proto::Metric>,
) -> proto::ExportMetricsServiceRequest {
    proto::ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "meter".into(),
                    version: "1.2".into(),
                }),
                metrics,
            }],
        }],
    }
}

fn label_pairs(labels: &[Label]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

#[test]
fn a_resource_is_a_group_with_target_info() {
    let request = export(
        vec![
            kv("service.name", "backup"),
            kv("service.namespace", "ops"),
            kv("service.instance.id", "db1"),
            kv("deployment.environment", "prod"),
            kv("host.name", "h1"),
        ],
        vec![metric(
            "jobs.done",
            "{job}",
            sum(
                vec![point(vec![kv("result", "ok")], 3.0)],
                true,
                AggregationTemporality::Cumulative,
            ),
        )],
    );
    let translation = translate(request, &settings());
    assert!(translation.refused.is_empty(), "{:?}", translation.refused);
    let group = &translation.groups[0];
    assert_eq!(
        label_pairs(group.key.labels()),
        [
            ("deployment_environment".into(), "prod".into()),
            ("instance".into(), "db1".into()),
            ("job".into(), "ops/backup".into()),
        ]
    );
    assert_eq!(group.points, 1);
    let counter = &group.families[0];
    assert_eq!(&*counter.name, "jobs_done_total");
    assert_eq!(counter.metric_type, MetricType::Counter);
    assert_eq!(counter.help.as_deref(), Some("jobs.done help"));
    assert_eq!(
        label_pairs(&counter.metrics[0].labels),
        [
            ("otel_scope_name".into(), "meter".into()),
            ("otel_scope_version".into(), "1.2".into()),
            ("result".into(), "ok".into()),
        ]
    );
    assert_eq!(counter.metrics[0].value, Value::Counter(3.0));
    let extras = counter.metrics[0].extras.as_ref().unwrap();
    assert_eq!(
        extras.created,
        Some(Timestamp {
            seconds: 1,
            nanos: 500_000_000
        })
    );
    let info = &group.families[1];
    assert_eq!(&*info.name, TARGET_INFO);
    assert_eq!(
        label_pairs(&info.metrics[0].labels),
        [("host_name".into(), "h1".into())]
    );
}

#[test]
fn deltas_are_kept_apart_and_unrecorded_points_skipped() {
    let mut unrecorded = point(vec![], 1.0);
    unrecorded.flags = NO_RECORDED_VALUE;
    let delta_histogram = Data::Histogram(proto::Histogram {
        data_points: vec![HistogramDataPoint {
            count: 3,
            sum: Some(4.0),
            bucket_counts: vec![1, 2],
            explicit_bounds: vec![1.0],
            ..HistogramDataPoint::default()
        }],
        aggregation_temporality: AggregationTemporality::Delta as i32,
    });
    let request = export(
        vec![kv("service.name", "svc"), kv("host.name", "h")],
        vec![
            metric(
                "d",
                "",
                sum(
                    vec![
                        point(vec![], 1.0),
                        point(vec![kv("a", "b")], 2.0),
                        unrecorded.clone(),
                    ],
                    true,
                    AggregationTemporality::Delta,
                ),
            ),
            metric("h", "s", delta_histogram),
            metric(
                "g",
                "1",
                Data::Gauge(Gauge {
                    data_points: vec![unrecorded, point(vec![], 0.5)],
                }),
            ),
        ],
    );
    let translation = translate(request, &settings());
    assert!(translation.refused.is_empty(), "{:?}", translation.refused);
    let group = &translation.groups[0];
    // The levels (and target_info) replace, the increments are added: never mixed.
    let names = |families: &[MetricFamily]| -> Vec<String> {
        families.iter().map(|f| f.name.to_string()).collect()
    };
    assert_eq!(names(&group.families), ["g_ratio", TARGET_INFO]);
    assert_eq!(group.points, 1);
    assert_eq!(names(&group.deltas), ["d_total", "h_seconds"]);
    assert_eq!(group.delta_points, 3);
    assert_eq!(group.deltas[0].metric_type, MetricType::Counter);
    assert_eq!(group.deltas[0].metrics[0].value, Value::Counter(1.0));
    let Value::Histogram(histogram) = &group.deltas[1].metrics[0].value else {
        panic!("{:?}", group.deltas[1].metrics[0].value);
    };
    assert_eq!((histogram.count, histogram.sum), (3.0, 4.0));
    // No instance label without service.instance.id.
    assert_eq!(
        label_pairs(group.key.labels()),
        [("job".into(), "svc".into())]
    );
}

#[test]
fn deltas_that_cannot_be_added_are_refused() {
    let request = export(
        vec![kv("service.name", "svc")],
        vec![
            // An up-down counter in delta: changes of a gauge, which are not added.
            metric(
                "queue",
                "",
                sum(
                    vec![point(vec![], -2.0)],
                    false,
                    AggregationTemporality::Delta,
                ),
            ),
            metric(
                "unspecified",
                "",
                sum(
                    vec![point(vec![], 1.0)],
                    true,
                    AggregationTemporality::Unspecified,
                ),
            ),
            metric(
                "mixed",
                "",
                sum(
                    vec![point(vec![], 1.0), point(vec![kv("bad", "x")], f64::NAN)],
                    true,
                    AggregationTemporality::Delta,
                ),
            ),
            // A histogram without a sum: there is nothing to add to its _sum.
            metric(
                "no.sum",
                "",
                Data::Histogram(proto::Histogram {
                    data_points: vec![HistogramDataPoint {
                        count: 1,
                        bucket_counts: vec![1],
                        ..HistogramDataPoint::default()
                    }],
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                }),
            ),
            // The same name in cumulative: one family cannot both replace and add.
            metric(
                "mixed",
                "",
                sum(
                    vec![point(vec![kv("a", "b")], 5.0)],
                    true,
                    AggregationTemporality::Cumulative,
                ),
            ),
        ],
    );
    let translation = translate(request, &settings());
    let message = translation.refused.message();
    assert_eq!(translation.refused.points, 5, "{message}");
    assert!(
        message.contains("a delta of NaN cannot be added"),
        "{message}"
    );
    assert!(message.contains("without a finite sum"), "{message}");
    assert!(message.contains("up-down counter"), "{message}");
    assert!(message.contains("temporality unspecified"), "{message}");
    assert!(
        message.contains("cumulative temporality here and delta elsewhere"),
        "{message}"
    );
    let group = &translation.groups[0];
    assert!(group.families.is_empty(), "{:?}", group.families);
    assert_eq!(group.deltas.len(), 1);
    assert_eq!(
        (&*group.deltas[0].name, group.delta_points),
        ("mixed_total", 1)
    );
}

#[test]
fn bad_points_are_refused_one_by_one() {
    let too_many: Vec<KeyValue> = (0..9).map(|i| kv(&format!("k{i}"), "v")).collect();
    let bad_histogram = HistogramDataPoint {
        count: 3,
        bucket_counts: vec![1, 2],
        explicit_bounds: vec![1.0, 2.0],
        ..HistogramDataPoint::default()
    };
    let request = export(
        vec![],
        vec![
            metric(
                "up.down",
                "By",
                sum(
                    vec![
                        point(vec![kv("a", "1")], 1.0),
                        point(vec![kv("a", "1")], 2.0),
                        point(too_many, 3.0),
                        point(vec![kv("__x__", "1")], 4.0),
                        point(vec![kv("a", &"x".repeat(65))], 5.0),
                    ],
                    false,
                    AggregationTemporality::Cumulative,
                ),
            ),
            metric(
                "h",
                "s",
                Data::Histogram(proto::Histogram {
                    data_points: vec![bad_histogram],
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                }),
            ),
        ],
    );
    let translation = translate(request, &settings());
    assert_eq!(
        translation.refused.points,
        5,
        "{}",
        translation.refused.message()
    );
    let group = &translation.groups[0];
    assert_eq!(
        label_pairs(group.key.labels()),
        [("job".into(), UNKNOWN_SERVICE.into())]
    );
    assert_eq!(group.points, 1);
    assert_eq!(&*group.families[0].name, "up_down_bytes");
    assert_eq!(group.families[0].metrics[0].value, Value::Gauge(1.0));
}

#[test]
fn attributes_translating_alike_are_joined() {
    let request = export(
        vec![kv("service.name", "s")],
        vec![metric(
            "g",
            "",
            Data::Gauge(Gauge {
                data_points: vec![point(
                    vec![kv("a.b", "2"), kv("a_b", "1"), kv("job", "ignored")],
                    1.0,
                )],
            }),
        )],
    );
    let translation = translate(request, &settings());
    let labels = label_pairs(&translation.groups[0].families[0].metrics[0].labels);
    assert_eq!(labels[0], ("a_b".into(), "2;1".into()));
    assert!(labels.iter().all(|(name, _)| name != "job"));
}

#[test]
fn exponential_histograms_whose_count_disagrees_with_the_buckets_are_refused() {
    let point = |count, sum, zero_count, positive: Vec<u64>| ExponentialHistogramDataPoint {
        count,
        sum,
        zero_count,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: positive,
        }),
        ..ExponentialHistogramDataPoint::default()
    };
    let translate_points = |points| {
        translate(
            export(
                vec![kv("service.name", "s")],
                vec![metric(
                    "latency",
                    "",
                    Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: points,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    }),
                )],
            ),
            &settings(),
        )
    };
    let refused = translate_points(vec![
        point(2, Some(1.0), u64::MAX, vec![1, 1]),
        point(3, Some(1.0), 1, vec![1, 2]),
        point(3, None, 1, vec![1, 2]),
    ]);
    assert_eq!(refused.refused.points, 3, "{}", refused.refused.message());
    assert!(
        refused.refused.message().contains("disagrees"),
        "{}",
        refused.refused.message()
    );
    // Without a sum the count may exceed the buckets, as Prometheus accepts.
    let stored = translate_points(vec![point(5, None, 1, vec![1, 2])]);
    assert_eq!(stored.refused.points, 0, "{}", stored.refused.message());
    assert_eq!(stored.groups[0].families[0].metrics.len(), 1);
}

#[test]
fn exponential_histograms_are_native() {
    let point = ExponentialHistogramDataPoint {
        count: 6,
        sum: Some(12.5),
        scale: 10,
        zero_count: 1,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![1, 1, 1, 1, 1],
        }),
        ..ExponentialHistogramDataPoint::default()
    };
    let request = export(
        vec![kv("service.name", "s")],
        vec![metric(
            "latency",
            "ms",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![point],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        )],
    );
    let translation = translate(request, &settings());
    let family = &translation.groups[0].families[0];
    assert_eq!(&*family.name, "latency_milliseconds");
    assert_eq!(family.metric_type, MetricType::Histogram);
    let Value::Histogram(histogram) = &family.metrics[0].value else {
        panic!("{:?}", family.metrics[0].value);
    };
    assert_eq!((histogram.count, histogram.sum), (6.0, 12.5));
    let native = family.metrics[0]
        .extras
        .as_ref()
        .unwrap()
        .native
        .as_ref()
        .unwrap();
    assert_eq!(native.schema, 8);
    assert_eq!(native.zero_count, Some(1));
    // OTLP 0..=3 → native 1, OTLP 4 → native 2.
    assert_eq!(
        native.positive_spans,
        [crate::model::BucketSpan {
            offset: 1,
            length: 2
        }]
    );
    assert_eq!(native.positive_deltas, [4, -3]);
}

#[test]
fn explicit_histograms_are_cumulative_with_inf() {
    let point = HistogramDataPoint {
        count: 6,
        sum: Some(10.0),
        bucket_counts: vec![1, 2, 3],
        explicit_bounds: vec![0.5, 1.0],
        exemplars: vec![proto::Exemplar {
            value: Some(proto::exemplar::Value::AsDouble(0.7)),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            time_unix_nano: 3_000_000_000,
            filtered_attributes: vec![],
        }],
        ..HistogramDataPoint::default()
    };
    let request = export(
        vec![kv("service.name", "s")],
        vec![metric(
            "size",
            "By",
            Data::Histogram(proto::Histogram {
                data_points: vec![point],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        )],
    );
    let translation = translate(request, &settings());
    let metric = &translation.groups[0].families[0].metrics[0];
    let Value::Histogram(histogram) = &metric.value else {
        panic!();
    };
    let buckets: Vec<(f64, f64)> = histogram
        .buckets
        .iter()
        .map(|b| (b.upper_bound, b.count))
        .collect();
    assert_eq!(buckets, [(0.5, 1.0), (1.0, 3.0), (f64::INFINITY, 6.0)]);
    let exemplars = &metric.extras.as_ref().unwrap().bucket_exemplars;
    let exemplar = exemplars[1].as_ref().unwrap();
    assert_eq!(exemplar.labels[0], Label::new("trace_id", "01".repeat(16)));
    assert_eq!(exemplar.labels[1], Label::new("span_id", "02".repeat(8)));
}

#[test]
fn attribute_values_as_text() {
    let value = |v: any_value::Value| any_value_string(&proto::AnyValue { value: Some(v) });
    assert_eq!(value(any_value::Value::IntValue(-3)), "-3");
    assert_eq!(value(any_value::Value::BoolValue(true)), "true");
    assert_eq!(value(any_value::Value::DoubleValue(0.25)), "0.25");
    assert_eq!(value(any_value::Value::DoubleValue(1e21)), "1e+21");
    assert_eq!(value(any_value::Value::BytesValue(vec![0, 1])), "AAE=");
    let array = any_value::Value::ArrayValue(proto::ArrayValue {
        values: vec![
            proto::AnyValue {
                value: Some(any_value::Value::StringValue("a".into())),
            },
            proto::AnyValue {
                value: Some(any_value::Value::IntValue(1)),
            },
        ],
    });
    assert_eq!(value(array), r#"["a",1]"#);
}

#[test]
fn refusal_messages_stay_short_and_few() {
    let mut refused = Refusals::default();
    refused.add(1, format!("metric {:?}: bad", "é".repeat(10_000)));
    for i in 0..100 {
        refused.add(1, format!("reason {i}"));
    }
    assert_eq!(refused.points, 101);
    let message = refused.message();
    assert!(message.len() < 2 * MAX_MESSAGE_BYTES, "{}", message.len());
    assert!(message.ends_with("(and 96 more reasons)"), "{message}");
}
