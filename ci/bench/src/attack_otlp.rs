//! The OTLP bodies of `--attack`: exports of about [`BODY_BYTES`] built with the gateway's
//! own OTLP message types, each a way to make the receiver work harder than a normal push of
//! the same size: many resources (each a group of its own), many attributes (labels of
//! every series and of `target_info`), deep exponential buckets (scale 20, reduced to 8),
//! and a body of tiny messages that would decode to many times its size (refused).

use bytes::Bytes;
use gateway::otlp::proto::{
    exponential_histogram_data_point::Buckets, metric::Data, AggregationTemporality,
    ExponentialHistogram, ExponentialHistogramDataPoint, ExportMetricsServiceRequest, Gauge,
    KeyValue, Metric, NumberDataPoint, Resource, ResourceMetrics, ScopeMetrics,
};
use prost::Message;

use super::attack::{Shape, BODY_BYTES, MAX_LABELS_PER_SERIES};

/// The receiver's path.
const PATH: &str = "/api/v1/otlp/v1/metrics";

fn resource(attributes: Vec<KeyValue>, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource { attributes }),
        scope_metrics: vec![ScopeMetrics {
            scope: None,
            metrics,
        }],
    }
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: String::new(),
        unit: String::new(),
        data: Some(Data::Gauge(Gauge {
            data_points: points,
        })),
    }
}

/// Resources added by `make` until the export reaches the body size.
fn export_up_to(mut make: impl FnMut(usize) -> ResourceMetrics) -> Bytes {
    let mut request = ExportMetricsServiceRequest::default();
    let mut size = 0;
    while size < BODY_BYTES {
        let resource = make(request.resource_metrics.len());
        size += resource.encoded_len() + 4;
        request.resource_metrics.push(resource);
    }
    Bytes::from(request.encode_to_vec())
}

fn shape(name: &'static str, what: String, body: Bytes) -> Shape {
    Shape {
        name,
        what,
        method: hyper::Method::POST,
        path: PATH.into(),
        headers: vec![("content-type", "application/x-protobuf".into())],
        body,
        fresh_password: false,
    }
}

/// The OTLP shapes.
pub fn shapes() -> Vec<Shape> {
    let mut resources = 0;
    let many_resources = export_up_to(|i| {
        resources = i + 1;
        resource(
            vec![KeyValue::string("service.name", &format!("attack-{i}"))],
            vec![gauge("g", vec![NumberDataPoint::double(vec![], 1.0, 1)])],
        )
    });
    // Attributes up to the label limit (the scope adds none here).
    let attributes: Vec<KeyValue> = (0..MAX_LABELS_PER_SERIES)
        .map(|a| KeyValue::string(&format!("attribute.{a}"), "v"))
        .collect();
    let mut points = 0;
    let many_attributes = export_up_to(|i| {
        let mut service = attributes.clone();
        service[0] = KeyValue::string("service.name", &format!("crowded-{i}"));
        let series: Vec<NumberDataPoint> = (0..4)
            .map(|p| {
                let mut labels = attributes.clone();
                labels[0] = KeyValue::string("point", &p.to_string());
                NumberDataPoint::double(labels, 1.0, 1)
            })
            .collect();
        points += series.len();
        resource(service, vec![gauge("crowded", series)])
    });
    let buckets = BODY_BYTES - 64;
    let deep = {
        let point = ExponentialHistogramDataPoint {
            count: buckets as u64,
            sum: Some(1.0),
            scale: 20,
            positive: Some(Buckets {
                offset: i32::MAX - buckets as i32 - 1,
                bucket_counts: vec![1; buckets],
            }),
            ..Default::default()
        };
        let metric = Metric {
            name: "deep".into(),
            description: String::new(),
            unit: String::new(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![point],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
        };
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![resource(
                vec![KeyValue::string("service.name", "deep")],
                vec![metric],
            )],
        };
        Bytes::from(request.encode_to_vec())
    };
    // Empty data points, two bytes each on the wire, inside one gauge.
    let tiny = {
        let mut request = ExportMetricsServiceRequest {
            resource_metrics: vec![resource(vec![], vec![gauge("tiny", vec![])])],
        };
        if let Some(Data::Gauge(g)) = request.resource_metrics[0].scope_metrics[0].metrics[0]
            .data
            .as_mut()
        {
            g.data_points = vec![NumberDataPoint::default(); BODY_BYTES / 2];
        }
        Bytes::from(request.encode_to_vec())
    };
    vec![
        shape(
            "OTLP many resources",
            format!("{resources} resources, each a group of one gauge"),
            many_resources,
        ),
        shape(
            "OTLP many attributes",
            format!(
                "{MAX_LABELS_PER_SERIES} attributes on the resource and on each of {points} points"
            ),
            many_attributes,
        ),
        shape(
            "OTLP deep exponential buckets",
            format!("one point of {buckets} buckets at scale 20, offset near the top"),
            deep,
        ),
        shape(
            "OTLP tiny messages",
            format!(
                "{} empty data points (refused before decoding)",
                BODY_BYTES / 2
            ),
            tiny,
        ),
    ]
}
