//! The one place where failures become HTTP responses: each [`ApiError`] has its status
//! code here and carries its reason as the plain-text body, as upstream's `http.Error`.

use bytes::Bytes;
use http::{header, Response, StatusCode};

use super::response_body::ResponseBody;
use crate::expose::NotAcceptable;
use crate::grouping::GroupingError;
use crate::parse::ParseError;
use crate::store::{PushError, Rejection};

/// A request that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The grouping key in the URL is invalid.
    #[error("{0}")]
    Grouping(#[from] GroupingError),
    /// The body did not parse.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// The push is inconsistent with itself or with what is stored.
    #[error("pushed metrics are invalid or inconsistent with existing metrics: {0}")]
    Rejected(#[from] Rejection),
    /// The change cannot be made durable (full disk, failing writes).
    #[error("{0}")]
    Unavailable(String),
    /// The body is larger than allowed (possibly only after decompression).
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body could not be read or decompressed.
    #[error("{0}")]
    BadBody(String),
    /// An `Idempotency-Key` header that is empty, too long or not printable.
    #[error("{0}")]
    BadIdempotencyKey(String),
    /// The request path is not percent-decodable into UTF-8.
    #[error("invalid URL escape in path")]
    BadPath,
    /// A grouping path with an empty segment (`/a//b`).
    #[error("empty segment in the grouping path {path:?}")]
    EmptyPathSegment {
        /// The labels part of the path.
        path: String,
    },
    /// Missing or wrong basic-auth credentials.
    #[error("Unauthorized")]
    Unauthorized,
    /// Credentials that would need a password check while too many are waiting, or after
    /// too many wrong passwords from the same address.
    #[error("too many password checks in progress, or too many wrong passwords from this address; try again shortly")]
    AuthBusy,
    /// A push larger than a configured limit.
    #[error("{0}")]
    LimitExceeded(String),
    /// The store is at its configured capacity.
    #[error("{0}")]
    StoreFull(String),
    /// The push would take a quota of the configuration file past its limit.
    #[error("{0}")]
    OverQuota(String),
    /// An access rule of the configuration file refuses the request.
    #[error("{0}")]
    Forbidden(String),
    /// The web config's `rate_limit` bucket is empty.
    #[error("Too Many Requests")]
    RateLimited {
        /// How long until the next request can pass.
        retry_after: std::time::Duration,
    },
    /// The configuration file could not be reloaded.
    #[error("failed to reload config: {0}")]
    ReloadFailed(String),
    /// No such endpoint.
    #[error("404 page not found")]
    NotFound,
    /// The endpoint exists with other methods.
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    /// A disabled lifecycle endpoint.
    #[error("Lifecycle API is not enabled.")]
    LifecycleDisabled,
    /// GET on `/-/quit`.
    #[error("Only POST or PUT requests allowed.")]
    QuitNeedsPutOrPost,
    /// A header or query parameter with a value that cannot be used (the reason).
    #[error("{0}")]
    InvalidParameter(String),
    /// An admin endpoint without `--web.enable-admin-api`.
    #[error("Admin API is not enabled (--web.enable-admin-api).")]
    AdminApiDisabled,
    /// A scrape that prefers a format the gateway does not serve.
    #[error("{0}")]
    NotAcceptable(#[from] NotAcceptable),
    /// A body in a content type the endpoint does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
}

/// How long a client should wait before retrying a push refused because the store is full
/// or cannot make it durable (OTLP exporters honour it; upstream's clients ignore it).
const OVERLOAD_RETRY_AFTER_SECONDS: u64 = 5;

impl ApiError {
    /// Maps a store error: a refusal is a 400, a journal failure a 503.
    pub fn from_push_error(error: PushError) -> ApiError {
        match error {
            PushError::Rejected(rejection) => ApiError::Rejected(rejection),
            PushError::TooLarge(reason) => ApiError::LimitExceeded(reason),
            PushError::Full(reason) => ApiError::StoreFull(reason),
            PushError::OverQuota(reason) => ApiError::OverQuota(reason),
            PushError::Replication(reason) => ApiError::Unavailable(reason),
            PushError::Unavailable(reason) => {
                ApiError::Unavailable(format!("cannot persist the change: {reason}"))
            }
        }
    }

    /// The status code of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Parse(ParseError::Limit { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Grouping(_)
            | ApiError::Parse(_)
            | ApiError::Rejected(_)
            | ApiError::BadBody(_)
            | ApiError::BadIdempotencyKey(_)
            | ApiError::BadPath
            | ApiError::InvalidParameter(_)
            | ApiError::EmptyPathSegment { .. } => StatusCode::BAD_REQUEST,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::ReloadFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::AuthBusy => StatusCode::TOO_MANY_REQUESTS,
            ApiError::LimitExceeded(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::StoreFull(_) | ApiError::OverQuota(_) | ApiError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::MethodNotAllowed | ApiError::QuitNeedsPutOrPost => {
                StatusCode::METHOD_NOT_ALLOWED
            }
            ApiError::LifecycleDisabled | ApiError::AdminApiDisabled | ApiError::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The seconds of a `Retry-After` header, for answers that a later retry may change.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            // Whole seconds, rounded up: a client retrying then finds a token.
            ApiError::RateLimited { retry_after } => Some(retry_after.as_secs_f64().ceil() as u64),
            ApiError::StoreFull(_) | ApiError::Unavailable(_) => Some(OVERLOAD_RETRY_AFTER_SECONDS),
            _ => None,
        }
    }

    /// The response: status code and the reason as text.
    pub fn into_response(self) -> Response<ResponseBody> {
        let status = self.status();
        let retry_after = self.retry_after();
        let mut body = self.to_string();
        // Go's http.Error ends the message with a newline; the bare lifecycle answers do not.
        if !matches!(
            self,
            ApiError::LifecycleDisabled | ApiError::QuitNeedsPutOrPost
        ) {
            body.push('\n');
        }
        let mut response = text_response(status, body);
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

/// A plain-text response.
pub fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}
