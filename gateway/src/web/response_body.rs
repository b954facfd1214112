//! The body of every response: one buffer, the cached pieces of a scrape sent one after
//! the other without being copied together first, or pieces made one at a time as the
//! client takes them (a long JSON listing, never whole in memory).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// The next piece of a pulled body, once made; `None` ends the body.
pub type Piece = Pin<Box<dyn Future<Output = Option<Bytes>> + Send>>;

/// Starts making the next piece of a pulled body.
type NextPiece = Box<dyn FnMut() -> Piece + Send>;

/// A response body made of pieces.
#[derive(Default)]
pub struct ResponseBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
    /// Called for the next piece once `chunks` is sent (length unknown: sent chunked).
    pull: Option<NextPiece>,
    /// The piece being made.
    pending: Option<Piece>,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("chunks", &self.chunks)
            .field("remaining", &self.remaining)
            .field("pulled", &self.pull.is_some())
            .finish()
    }
}

impl ResponseBody {
    /// A body of one buffer.
    pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
        ResponseBody::chunks(vec![bytes.into()])
    }

    /// A body of several pieces, sent in order.
    pub fn chunks(chunks: Vec<Bytes>) -> ResponseBody {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        ResponseBody {
            chunks,
            remaining,
            pull: None,
            pending: None,
        }
    }

    /// A body whose pieces `next` makes one at a time, each when hyper can send the one
    /// before: a slow client holds back the work (and memory) of what it has not read yet.
    pub fn pulled(next: impl FnMut() -> Piece + Send + 'static) -> ResponseBody {
        ResponseBody {
            pull: Some(Box::new(next)),
            ..ResponseBody::default()
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            self.remaining -= chunk.len() as u64;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        let this = &mut *self;
        while let Some(pull) = this.pull.as_mut() {
            let piece = this.pending.get_or_insert_with(&mut *pull);
            match piece.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(next) => {
                    this.pending = None;
                    match next {
                        // Empty pieces are skipped: a zero-length chunk would end the body.
                        Some(chunk) if chunk.is_empty() => {}
                        Some(chunk) => return Poll::Ready(Some(Ok(Frame::data(chunk)))),
                        None => this.pull = None,
                    }
                }
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty() && self.pull.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.pull.is_some() {
            let mut hint = SizeHint::new();
            hint.set_lower(self.remaining);
            hint
        } else {
            SizeHint::with_exact(self.remaining)
        }
    }
}
