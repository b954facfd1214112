//! `POST <route-prefix>/api/v1/otlp/v1/metrics`, the OTLP/HTTP metrics receiver: the
//! encoding from the content type, the capped and decompressed body, then
//! [`crate::otlp`] decodes and translates it, and each resource goes through the same
//! change requests as pushes to its group (limits, consistency, persistence, replication
//! and expiry apply alike): its cumulative families as a POST, its delta families as an
//! aggregating push (added to what is stored), with the export's `Idempotency-Key` if it
//! has one. Refused data points are answered in `partial_success`; failures carry a
//! `google.rpc.Status` in the request's encoding, as OTLP/HTTP asks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode};

use super::access::Action;
use super::app::{App, HttpResponse};
use super::body::read_body;
use super::close_after;
use super::error::ApiError;
use super::push::{apply_change_sized, idempotency_key, requested_ttl, wait_durable};
use super::response_body::ResponseBody;
use crate::clock::unix_now;
use crate::otlp::{self, Encoding, OtlpError};
use crate::replicate::ChangeRequest;
use crate::store::{PushError, PushMode};

pub use crate::otlp::METRICS_PATH;

/// Serves one export; any failure is answered in the request's encoding.
pub async fn export<B>(
    app: &Arc<App>,
    request: Request<B>,
    (peer, user): (SocketAddr, Option<&str>),
) -> HttpResponse
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let Some(settings) = app.config.otlp.clone() else {
        return ApiError::NotFound.into_response();
    };
    if request.method() != http::Method::POST {
        return ApiError::MethodNotAllowed.into_response();
    }
    // Without a known encoding there is no Status to answer with: plain text, as elsewhere.
    let encoding = match encoding_of(request.headers()) {
        Ok(encoding) => encoding,
        Err(error) => {
            let mut response = error.into_response();
            close_after(&mut response);
            return response;
        }
    };
    match receive(app, request, encoding, settings, (peer, user)).await {
        Ok(response) => response,
        Err(error) => error_response(error, encoding),
    }
}

async fn receive<B>(
    app: &Arc<App>,
    request: Request<B>,
    encoding: Encoding,
    settings: otlp::Settings,
    (peer, user): (SocketAddr, Option<&str>),
) -> Result<HttpResponse, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    app.access.check_may_push(user)?;
    let (parts, body) = request.into_parts();
    // The export's groups all get the TTL the header asks for, as an ordinary push's group.
    let ttl = requested_ttl(app, &parts.headers)?;
    // OTel SDKs send no key: a retry of a delta export after a lost answer counts twice.
    let idempotency_key = idempotency_key(&parts.headers)?;
    let bytes = read_body(
        body,
        &parts.headers,
        app.config.max_body_bytes,
        &app.offload,
    )
    .await?;
    let size = bytes.len();
    let body = bytes.clone();
    let translation = app
        .offload
        .run(size, move || {
            otlp::decode(&body, encoding).map(|request| otlp::translate(request, &settings))
        })
        .await?
        .map_err(|e| {
            tracing::debug!(source = %peer, err = %e, "failed to decode an OTLP export");
            match e {
                OtlpError::Malformed { .. } => ApiError::BadBody(e.to_string()),
                OtlpError::TooLarge(reason) => ApiError::LimitExceeded(reason),
            }
        })?;
    // A scoped user's export is refused whole when one of its groups is outside the scope,
    // as an ordinary push outside it is: nothing is stored.
    for group in &translation.groups {
        app.access.check(user, Action::Push(&group.key))?;
    }
    let mut refused = translation.refused;
    let time = unix_now();
    let mut last_seq = None;
    // Each group's share of the body decides whether applying it leaves the async workers.
    let group_size = size / translation.groups.len().max(1);
    for group in translation.groups {
        if let Err(PushError::TooLarge(reason)) = app.store.check_grouping_key(&group.key) {
            let points = group.points.saturating_add(group.delta_points);
            refused.add(points, format!("resource {}: {reason}", group.key));
            continue;
        }
        // Levels replace the families they name; increments are added. Two changes, since
        // one change has one mode; each is refused or applied on its own.
        let changes = [
            (group.families, group.points, PushMode::Merge, None),
            (
                group.deltas,
                group.delta_points,
                PushMode::Aggregate,
                // Keys are per group: the same key guards each group's increments, and only
                // them (a repeated POST of levels changes nothing anyway).
                idempotency_key.clone(),
            ),
        ];
        for (families, points, mode, idempotency_key) in changes {
            if families.is_empty() {
                continue;
            }
            let change = ChangeRequest::Push {
                key: group.key.clone(),
                families,
                mode,
                time,
                ttl,
                idempotency_key,
            };
            let outcome = apply_change_sized(app, change, group_size).await;
            match outcome {
                Ok(applied) => last_seq = applied.seq.or(last_seq),
                // Unchecked, the store keeps an inconsistent push (`Ok`); what it refuses
                // even then (timestamps, increments that cannot be added) is not stored.
                Err(PushError::Rejected(rejection)) => {
                    tracing::error!(source = %peer, group = %group.key, err = %rejection, "OTLP export invalid or inconsistent with existing metrics");
                    refused.add(points, format!("resource {}: {rejection}", group.key));
                }
                // Over a quota: this resource is refused, the others are stored (a retry of
                // the whole export would be refused again until the operator acts).
                Err(PushError::TooLarge(reason) | PushError::OverQuota(reason)) => {
                    refused.add(points, format!("resource {}: {reason}", group.key));
                }
                Err(other) => return Err(ApiError::from_push_error(other)),
            }
        }
    }
    wait_durable(app, last_seq).await?;
    app.telemetry
        .observe_push("POST", started.elapsed().as_secs_f64(), size);
    if !refused.is_empty() {
        tracing::debug!(source = %peer, rejected = refused.points, reason = %refused.message(), "OTLP export partly refused");
    }
    Ok(response(
        StatusCode::OK,
        encoding,
        otlp::encode_response(&refused, encoding),
    ))
}

/// The encoding a content type names, ignoring parameters and letter case.
fn encoding_of(headers: &http::HeaderMap) -> Result<Encoding, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/x-protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "unsupported content type {content_type:?}: OTLP/HTTP takes application/x-protobuf or application/json"
        ))),
    }
}

fn response(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> HttpResponse {
    let mut response = http::Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    response
}

/// An error as a `google.rpc.Status` with the status code and `Retry-After` of
/// [`ApiError`]. A body refused for its size may not have been read: the connection is
/// closed after the answer.
fn error_response(error: ApiError, encoding: Encoding) -> HttpResponse {
    let status = error.status();
    let retry_after = error.retry_after();
    let body = otlp::encode_status(grpc_code(status), &error.to_string(), encoding);
    let mut response = response(status, encoding, body);
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        close_after(&mut response);
    }
    response
}

/// The gRPC code matching an HTTP status, as gRPC's HTTP mapping has it.
fn grpc_code(status: StatusCode) -> i32 {
    match status.as_u16() {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        404 => 5,             // NOT_FOUND
        429 => 8,             // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 2,               // UNKNOWN
    }
}
