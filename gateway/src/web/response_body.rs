//! The body of every response: one buffer, the cached pieces of a scrape sent one after
//! the other without being copied together first, or pieces made one at a time as the
//! client takes them (a long JSON listing, never whole in memory).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Makes the next piece of a pulled body; `None` ends it.
pub type NextChunk = Box<dyn FnMut() -> Option<Bytes> + Send>;

/// A response body made of pieces.
#[derive(Default)]
pub struct ResponseBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
    /// Called for the next piece once `chunks` is sent (length unknown: sent chunked).
    pull: Option<NextChunk>,
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
        }
    }

    /// A body whose pieces `next` makes one at a time, each when hyper can send it: a
    /// slow client holds back the work (and memory) of what it has not read yet.
    pub fn pulled(next: impl FnMut() -> Option<Bytes> + Send + 'static) -> ResponseBody {
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
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let mut next = self.chunks.pop_front();
        if let Some(chunk) = &next {
            self.remaining -= chunk.len() as u64;
        } else if let Some(pull) = self.pull.as_mut() {
            // Empty pieces are skipped: a zero-length chunk would end a chunked body.
            next = std::iter::from_fn(&mut *pull).find(|c| !c.is_empty());
            if next.is_none() {
                self.pull = None;
            }
        }
        Poll::Ready(next.map(|chunk| Ok(Frame::data(chunk))))
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
