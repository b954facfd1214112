//! The body of every response: one buffer, or the cached pieces of a scrape sent one after
//! the other without being copied together first.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// A response body made of pieces.
#[derive(Debug, Default)]
pub struct ResponseBody {
    chunks: VecDeque<Bytes>,
    remaining: u64,
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
        ResponseBody { chunks, remaining }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.chunks.pop_front();
        if let Some(chunk) = &next {
            self.remaining -= chunk.len() as u64;
        }
        Poll::Ready(next.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
