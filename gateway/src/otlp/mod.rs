//! OTLP/HTTP metrics: an `ExportMetricsServiceRequest` in protobuf or JSON decoded
//! ([`decode`]: the estimated cost checked first, [`budget`]), translated into one push per
//! resource ([`translate`]), and the answers encoded back in the request's encoding
//! ([`encode_response`], [`encode_status`]). HTTP, the store and the grouping of pushes
//! into requests are left to `web`.

pub mod budget;
pub mod exponential;
pub mod json;
pub mod names;
pub mod proto;
pub mod translate;

use prost::Message;

pub use names::Escaping;

/// The path of the receiver, under the route prefix (Prometheus's path).
pub const METRICS_PATH: &str = "/api/v1/otlp/v1/metrics";
pub use translate::{translate, GroupPush, Refusals, Settings, Translation};

/// Most resources (and so groups) in one export: each is a push of its own.
pub const MAX_RESOURCES: usize = 10_000;

/// The two encodings of OTLP/HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    /// The content type of answers in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// An export that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtlpError {
    /// Not a valid message in its encoding.
    #[error("invalid OTLP {encoding} body: {reason}")]
    Malformed {
        /// "protobuf" or "JSON".
        encoding: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Valid, but costing more than its size justifies, or too many resources.
    #[error("{0}")]
    TooLarge(String),
}

/// Decodes an export.
///
/// # Errors
/// [`OtlpError::Malformed`] for a body that does not decode, [`OtlpError::TooLarge`] when it
/// would inflate past [`budget::MAX_INFLATION`] times its size or carries more than
/// [`MAX_RESOURCES`] resources.
pub fn decode(
    body: &[u8],
    encoding: Encoding,
) -> Result<proto::ExportMetricsServiceRequest, OtlpError> {
    let request = match encoding {
        Encoding::Protobuf => {
            budget::check_protobuf(body).map_err(OtlpError::TooLarge)?;
            proto::ExportMetricsServiceRequest::decode(body).map_err(|e| OtlpError::Malformed {
                encoding: "protobuf",
                reason: e.to_string(),
            })?
        }
        Encoding::Json => {
            budget::check_json(body).map_err(OtlpError::TooLarge)?;
            serde_json::from_slice(body).map_err(|e| OtlpError::Malformed {
                encoding: "JSON",
                reason: e.to_string(),
            })?
        }
    };
    if request.resource_metrics.len() > MAX_RESOURCES {
        return Err(OtlpError::TooLarge(format!(
            "{} resources in one export, more than {MAX_RESOURCES}",
            request.resource_metrics.len()
        )));
    }
    Ok(request)
}

/// The `ExportMetricsServiceResponse`: empty, or the refused points and why.
pub fn encode_response(refused: &Refusals, encoding: Encoding) -> Vec<u8> {
    let partial = (!refused.is_empty()).then(|| proto::ExportMetricsPartialSuccess {
        rejected_data_points: i64::try_from(refused.points).unwrap_or(i64::MAX),
        error_message: refused.message(),
    });
    match encoding {
        Encoding::Protobuf => proto::ExportMetricsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        Encoding::Json => {
            let body = match partial {
                // int64 is a string in OTLP/JSON.
                Some(p) => serde_json::json!({"partialSuccess": {
                    "rejectedDataPoints": p.rejected_data_points.to_string(),
                    "errorMessage": p.error_message,
                }}),
                None => serde_json::json!({}),
            };
            body.to_string().into_bytes()
        }
    }
}

/// A `google.rpc.Status` with a gRPC code and the reason, the body of an error answer.
pub fn encode_status(code: i32, message: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => proto::Status {
            code,
            message: message.to_string(),
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({"code": code, "message": message})
            .to_string()
            .into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_follows_the_otlp_rules() {
        let body = br#"{"resourceMetrics":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"svc"}},
            {"key":"n","value":{"intValue":"12345678901234567"}},
            {"key":"b","value":{"bytesValue":"AAE="}}]},
          "scopeMetrics":[{"scope":{"name":"s"},"metrics":[
            {"name":"c","unit":"1","sum":{"aggregationTemporality":2,"isMonotonic":true,
              "dataPoints":[{"asInt":"7","startTimeUnixNano":"1000000000","timeUnixNano":2000000000,
                "exemplars":[{"asDouble":1.5,"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}},
            {"name":"h","histogram":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA",
              "dataPoints":[{"count":"3","sum":"NaN","bucketCounts":["1",2],"explicitBounds":[1]}]}},
            {"name":"unknown","futureField":{"x":1}}]}]}]}"#;
        let request = decode(body, Encoding::Json).unwrap();
        let resource = &request.resource_metrics[0];
        let attributes = &resource.resource.as_ref().unwrap().attributes;
        assert_eq!(
            attributes[1].value.as_ref().unwrap().value,
            Some(proto::any_value::Value::IntValue(12345678901234567))
        );
        assert_eq!(
            attributes[2].value.as_ref().unwrap().value,
            Some(proto::any_value::Value::BytesValue(vec![0, 1]))
        );
        let metrics = &resource.scope_metrics[0].metrics;
        let Some(proto::metric::Data::Sum(sum)) = &metrics[0].data else {
            panic!("{:?}", metrics[0]);
        };
        assert!(sum.is_monotonic);
        assert_eq!(sum.aggregation_temporality, 2);
        let point = &sum.data_points[0];
        assert_eq!(point.value, Some(proto::number_data_point::Value::AsInt(7)));
        assert_eq!(point.start_time_unix_nano, 1_000_000_000);
        assert_eq!(
            point.exemplars[0].span_id,
            [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]
        );
        let Some(proto::metric::Data::Histogram(histogram)) = &metrics[1].data else {
            panic!("{:?}", metrics[1]);
        };
        assert_eq!(histogram.aggregation_temporality, 1);
        assert_eq!(histogram.data_points[0].bucket_counts, [1, 2]);
        assert!(histogram.data_points[0].sum.unwrap().is_nan());
        assert_eq!(metrics[2].data, None);
    }

    #[test]
    fn malformed_json_is_refused() {
        for body in [
            &br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{},"sum":{}}]}]}]}"#[..],
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"asInt":"x"}]}}]}]}]}"#,
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"asInt":1,"asDouble":2}]}}]}]}]}"#,
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"exemplars":[{"traceId":"xyz"}]}]}}]}]}]}"#,
            br#"{"resourceMetrics":"#,
            b"\xff",
        ] {
            assert!(
                matches!(decode(body, Encoding::Json), Err(OtlpError::Malformed { .. })),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn responses_in_both_encodings() {
        let mut refused = Refusals::default();
        assert_eq!(encode_response(&refused, Encoding::Json), b"{}");
        assert!(encode_response(&refused, Encoding::Protobuf).is_empty());
        refused.add(2, "delta");
        let json: serde_json::Value =
            serde_json::from_slice(&encode_response(&refused, Encoding::Json)).unwrap();
        assert_eq!(json["partialSuccess"]["rejectedDataPoints"], "2");
        let decoded = proto::ExportMetricsServiceResponse::decode(
            &encode_response(&refused, Encoding::Protobuf)[..],
        )
        .unwrap();
        assert_eq!(decoded.partial_success.unwrap().rejected_data_points, 2);
    }
}
