//! Reading a request body: capped before and while collecting, decompressed according to
//! `Content-Encoding` (gzip or snappy, any letter case, as upstream v1.11) with the same cap
//! applied to the decompressed size, so that a small compressed bomb gets a 413. A body is
//! read whole or refused: every gzip member is read (as Go's reader does), and bytes after
//! the last member or a cut snappy frame are a 400, never silently dropped.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};

use super::error::ApiError;
use super::offload::Offload;

/// How long a client may take to send its body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A compressed body may inflate to this many times its size (metrics text compresses about
/// 10 to 50 times; deflate's ceiling is about 1000), or to [`INFLATION_FLOOR`], whichever is
/// more: a small bomb then costs what a 16 MiB body costs, not what the whole
/// `--push.max-body-bytes` would, so that inflating stays in proportion to what was sent.
const MAX_INFLATION_RATIO: usize = 256;
/// What any compressed body may inflate to, however small it is.
const INFLATION_FLOOR: usize = 16 << 20;

/// Collects a body of at most `limit` bytes (after decompression, which runs on `offload`:
/// a small compressed body may inflate to `limit`).
///
/// # Errors
/// [`ApiError::TooLarge`] past the limit, [`ApiError::BadBody`] on a broken stream or
/// compression.
pub async fn read_body<B>(
    body: B,
    headers: &HeaderMap,
    limit: usize,
    offload: &Offload,
) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if let Some(length) = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if length > limit {
            return Err(ApiError::TooLarge { limit });
        }
    }
    let collected = tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect())
        .await
        .map_err(|_| ApiError::BadBody("timed out reading the request body".into()))?;
    let raw = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::TooLarge { limit })
        }
        Err(e) => return Err(ApiError::BadBody(format!("reading the request body: {e}"))),
    };
    let encoding = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if encoding != "gzip" && encoding != "snappy" {
        return Ok(raw);
    }
    let inflation_limit =
        limit.min(INFLATION_FLOOR.max(raw.len().saturating_mul(MAX_INFLATION_RATIO)));
    let compressed = raw.len();
    let inflated = offload
        .always(move || match encoding.as_str() {
            // Concatenated members are one stream to Go's reader too; anything after the
            // last member must then be another member's header, so trailing garbage is an
            // error.
            "gzip" => decompress(
                flate2::read::MultiGzDecoder::new(&raw[..]),
                inflation_limit,
                "gzip",
            ),
            // The framed decoder reads to the end and refuses unknown chunks and cut frames.
            _ => decompress(
                snap::read::FrameDecoder::new(&raw[..]),
                inflation_limit,
                "snappy",
            ),
        })
        .await?;
    match inflated {
        Err(ApiError::TooLarge { .. }) if inflation_limit < limit => {
            Err(ApiError::LimitExceeded(format!(
                "the {compressed}-byte compressed body inflates past {inflation_limit} bytes, \
                 {MAX_INFLATION_RATIO} times its size (at least 16 MiB may always be sent \
                 compressed); send it uncompressed, up to --push.max-body-bytes={limit}"
            )))
        }
        other => other,
    }
}

fn decompress(reader: impl Read, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    let read = reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadBody(format!("{what}: {e}")))?;
    if read > limit {
        return Err(ApiError::TooLarge { limit });
    }
    Ok(Bytes::from(out))
}
