//! The push and delete endpoints: grouping key from the path, the group's own TTL from the
//! `Pushgateway-TTL` header, capped and decompressed body, format from the content type,
//! then one call into the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, StatusCode};

use super::access::Action;
use super::app::{App, HttpResponse};
use super::body::read_body;
use super::error::{text_response, ApiError};
use crate::clock::unix_now;
use crate::expiry::TTL_HEADER;
use crate::grouping::parse_grouping_path;
use crate::model::Str;
use crate::parse::{parse, Format};
use crate::replicate::{Applied, ChangeRequest};
use crate::store::{Consistency, GroupTtl, PushError, PushMode, MAX_IDEMPOTENCY_KEY_BYTES};

/// The delimited protobuf media type and parameters that select the protobuf decoder.
const PROTOBUF_MEDIA_TYPE: &str = "application/vnd.google.protobuf";

/// The request header that makes a retried push count once (IETF httpapi draft).
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// PUT or POST of metrics to a group.
pub async fn push<B>(
    app: &Arc<App>,
    request: Request<B>,
    mode: PushMode,
    (job, job_is_base64, labels): (&str, bool, &str),
    (peer, user): (SocketAddr, Option<&str>),
) -> Result<HttpResponse, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let validation = app.config.validation;
    let key = parse_grouping_path(job, job_is_base64, labels, validation).inspect_err(|e| {
        tracing::debug!(source = %peer, err = %e, "failed to parse URL");
    })?;
    // Before the body is read: a refused push costs no more than its headers.
    app.access.check(user, Action::Push(&key))?;
    app.store
        .check_grouping_key(&key)
        .map_err(ApiError::from_push_error)?;
    let ttl = requested_ttl(app, request.headers())?;
    // The operator's [[aggregate]] rules make ordinary pushes to these groups aggregate.
    let mode = if app.aggregates(&key) {
        PushMode::Aggregate
    } else {
        mode
    };
    let (parts, body) = request.into_parts();
    let idempotency_key = idempotency_key(&parts.headers)?;
    let format = format_of(&parts.headers);
    let bytes = read_body(
        body,
        &parts.headers,
        app.config.max_body_bytes,
        &app.offload,
    )
    .await?;
    let limits = app.config.parse_limits;
    let size = bytes.len();
    let body = bytes.clone();
    let families = app
        .offload
        .run(size, move || parse(&body, format, validation, limits))
        .await?
        .inspect_err(|e| {
            tracing::debug!(source = %peer, err = %e, "failed to parse text");
        })?;
    let request = ChangeRequest::Push {
        key,
        families,
        mode,
        time: unix_now(),
        ttl,
        idempotency_key,
    };
    let outcome = apply_change_sized(app, request, size).await;
    let unchecked = app.store.config().consistency == Consistency::Unchecked;
    let result = match outcome {
        Ok(applied) => wait_durable(app, applied.seq).await,
        Err(PushError::Rejected(rejection)) => {
            tracing::error!(method = %method, source = %peer, err = %rejection, "pushed metrics are invalid or inconsistent with existing metrics");
            // Unchecked pushes are acknowledged before the check, as upstream does; an
            // aggregating push the store refused changed nothing, and says so.
            if unchecked && mode != PushMode::Aggregate {
                Ok(())
            } else {
                Err(ApiError::Rejected(rejection))
            }
        }
        Err(other) => Err(ApiError::from_push_error(other)),
    };
    app.telemetry
        .observe_push(&method, started.elapsed().as_secs_f64(), bytes.len());
    result?;
    let status = if unchecked {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(text_response(status, ""))
}

/// The `Idempotency-Key` header: visible ASCII, at most [`MAX_IDEMPOTENCY_KEY_BYTES`]; the
/// draft's structured-field string (`"..."`) and a bare token both work.
pub(super) fn idempotency_key(headers: &http::HeaderMap) -> Result<Option<Str>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = |why: &str| Err(ApiError::BadIdempotencyKey(why.to_string()));
    if values.next().is_some() {
        return bad("more than one Idempotency-Key header");
    }
    let raw = value.as_bytes();
    let key = match raw {
        [b'"', inner @ .., b'"'] => inner,
        _ => raw,
    };
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
        return bad(&format!(
            "Idempotency-Key must have 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes"
        ));
    }
    if !key.iter().all(|b| b.is_ascii_graphic() || *b == b' ') || key.contains(&b'"') {
        return bad("Idempotency-Key must be printable ASCII");
    }
    Ok(std::str::from_utf8(key).ok().map(Str::from))
}

/// Waits until a journaled change is on disk (no-op without persistence).
pub async fn wait_durable(app: &App, seq: Option<u64>) -> Result<(), ApiError> {
    match (seq, &app.persister) {
        (Some(seq), Some(persister)) => persister
            .durable(seq)
            .await
            .map_err(|e| ApiError::Unavailable(format!("cannot persist the change: {e}"))),
        _ => Ok(()),
    }
}

/// DELETE of a group: 202 whether or not it existed.
pub async fn delete(
    app: &Arc<App>,
    (job, job_is_base64, labels): (&str, bool, &str),
    user: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let key = parse_grouping_path(job, job_is_base64, labels, app.config.validation)?;
    // A delete is a write like a push: only inside the user's push scope.
    app.access.check(user, Action::Delete(&key))?;
    apply_everywhere(app, ChangeRequest::Delete { key }).await?;
    Ok(text_response(StatusCode::ACCEPTED, ""))
}

/// Applies a delete, wipe or matcher delete and waits until it is durable.
pub async fn apply_everywhere(app: &App, request: ChangeRequest) -> Result<Applied, ApiError> {
    let applied = apply_change(app, request)
        .await
        .map_err(ApiError::from_push_error)?;
    wait_durable(app, applied.seq).await?;
    Ok(applied)
}

/// Applies a change through the stream with Redis, else to the local store; a change whose
/// cost grows with the store (a matcher delete, a wipe) off the async workers.
async fn apply_change(app: &App, request: ChangeRequest) -> Result<Applied, PushError> {
    match &app.replicator {
        Some(replicator) => replicator.submit(&request).await,
        None if matches!(
            request,
            ChangeRequest::DeleteMatching { .. } | ChangeRequest::Wipe
        ) =>
        {
            let (store, expirer) = (app.store.clone(), app.expirer.clone());
            app.offload
                .always(move || request.apply(&store, &expirer))
                .await
                .unwrap_or_else(|e| Err(PushError::Unavailable(e.to_string())))
        }
        None => request.apply(&app.store, &app.expirer),
    }
}

/// The group's own TTL from the `Pushgateway-TTL` header (`None` without it: the expiry
/// rules apply), within the operator's bounds.
pub(super) fn requested_ttl(
    app: &App,
    headers: &http::HeaderMap,
) -> Result<Option<GroupTtl>, ApiError> {
    let mut values = headers.get_all(TTL_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::InvalidParameter(
            "Pushgateway-TTL header given more than once".into(),
        ));
    }
    let text = value.to_str().map_err(|_| {
        ApiError::InvalidParameter("invalid Pushgateway-TTL header: not ASCII".into())
    })?;
    app.config
        .ttl_bounds
        .check(text)
        .map(Some)
        .map_err(ApiError::InvalidParameter)
}

/// [`apply_change`] for a push of `size` bytes: a large one is applied to the local store
/// off the async workers.
pub(super) async fn apply_change_sized(
    app: &App,
    request: ChangeRequest,
    size: usize,
) -> Result<Applied, PushError> {
    if app.replicator.is_some() {
        return apply_change(app, request).await;
    }
    let (store, expirer) = (app.store.clone(), app.expirer.clone());
    app.offload
        .run(size, move || request.apply(&store, &expirer))
        .await
        .unwrap_or_else(|e| Err(PushError::Unavailable(e.to_string())))
}

/// Delimited protobuf when the content type says so exactly; text otherwise, as upstream.
fn format_of(headers: &http::HeaderMap) -> Format {
    let Some(content_type) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Format::Text;
    };
    let mut parts = content_type.split(';');
    let media_type = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if media_type != PROTOBUF_MEDIA_TYPE {
        return Format::Text;
    }
    let mut proto = None;
    let mut encoding = None;
    for parameter in parts {
        if let Some((name, value)) = parameter.split_once('=') {
            let value = value.trim().trim_matches('"').to_string();
            match name.trim().to_ascii_lowercase().as_str() {
                "proto" => proto = Some(value),
                "encoding" => encoding = Some(value),
                _ => {}
            }
        }
    }
    if proto.as_deref() == Some("io.prometheus.client.MetricFamily")
        && encoding.as_deref() == Some("delimited")
    {
        Format::Protobuf
    } else {
        Format::Text
    }
}
