//! HTTP/2 connections, for TLS clients that chose `h2` through ALPN (as Go's server, only
//! when the web config's `http_server_config.http2` allows it; plain HTTP stays HTTP/1.1).
//!
//! hyper's HTTP/2 server has no header read timeout, so an idle connection would hold its
//! `--web.max-connections` slot for good. Here a connection with no request in flight (a
//! response body still being sent counts as in flight) for `--web.read-header-timeout` is
//! closed, as an idle HTTP/1 connection is; a peer that stops answering pings is dropped too.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::web::{handle, App, ClientCertUser};

/// Streams one client may have open at once, Go's default.
const MAX_CONCURRENT_STREAMS: u32 = 250;
/// Largest request head, as an HTTP/1 connection reads at most (hyper's buffer limit);
/// h2's default of 16 KiB would refuse push URLs that HTTP/1.1 takes.
const MAX_HEADER_LIST_SIZE: u32 = 400 * 1024;

/// Serves one HTTP/2 connection until it ends, idles out or the gateway drains.
pub async fn serve<I>(
    io: I,
    peer: SocketAddr,
    app: Arc<App>,
    graceful: &GracefulShutdown,
    user: Option<ClientCertUser>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let idle_limit = app.config.header_read_timeout;
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            if let Some(user) = &user {
                request.extensions_mut().insert(user.clone());
            }
            let in_flight = activity.begin();
            async move {
                let response = handle(app, request, peer).await;
                // The request stays in flight until its body is sent (or dropped).
                let response = response.map(|body| {
                    body.map_frame(move |frame| {
                        let _held = &in_flight;
                        frame
                    })
                });
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let connection = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .keep_alive_interval(Some(idle_limit))
        .keep_alive_timeout(idle_limit.min(Duration::from_secs(20)))
        .serve_connection(TokioIo::new(io), service);
    let connection = graceful.watch(connection);
    tokio::pin!(connection);
    loop {
        let wake = activity
            .idle_since()
            .map_or(Instant::now(), |since| since + idle_limit)
            .max(Instant::now() + Duration::from_millis(10));
        tokio::select! {
            result = &mut connection => {
                if let Err(e) = result {
                    tracing::debug!(source = %peer, err = %e, "HTTP/2 connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(wake) => {
                if activity.idle_since().is_some_and(|since| since.elapsed() >= idle_limit) {
                    tracing::debug!(source = %peer, "idle HTTP/2 connection closed");
                    return;
                }
            }
        }
    }
}

/// Requests in flight on one connection, and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    last_end: Mutex<Instant>,
}

/// One request in flight, until dropped.
struct InFlight(Arc<Activity>);

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            last_end: Mutex::new(Instant::now()),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Since when nothing is in flight; `None` while something is.
    fn idle_since(&self) -> Option<Instant> {
        let last_end = *self.last_end.lock();
        (self.in_flight.load(Ordering::SeqCst) == 0).then_some(last_end)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // The time first, so that a check between the two sees activity, not a stale idle.
        *self.0.last_end.lock() = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
