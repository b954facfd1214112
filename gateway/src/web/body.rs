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
    offload
        .always(move || match encoding.as_str() {
            // Concatenated members are one stream to Go's reader too; anything after the
            // last member must then be another member's header, so trailing garbage is an
            // error.
            "gzip" => decompress(flate2::read::MultiGzDecoder::new(&raw[..]), limit, "gzip"),
            // The framed decoder reads to the end and refuses unknown chunks and cut frames.
            _ => decompress(snap::read::FrameDecoder::new(&raw[..]), limit, "snappy"),
        })
        .await?
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
