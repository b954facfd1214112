//! The accept loop: at most `--web.max-connections` clients at a time, TLS when the web
//! config asks for it, one hyper HTTP/1 connection per client with a header read timeout
//! and a write timeout (a client that stops reading its response loses the connection)
//! (HTTP/2 for TLS clients that negotiate it, see [`http2`]),
//! and a graceful drain on shutdown (stop accepting, let requests in flight finish up to a
//! grace period).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::web::{handle, App, ClientCertUser};
use crate::webconfig::common_name;

mod http2;

/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight may run on after shutdown was requested.
const GRACE_PERIOD: Duration = Duration::from_secs(15);

/// Serves connections from every listener until `shutdown` resolves, then drains.
pub async fn serve(listeners: Vec<TcpListener>, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let graceful = Arc::new(GracefulShutdown::new());
    let slots = Arc::new(Semaphore::new(app.config.max_connections.max(1)));
    tokio::pin!(shutdown);
    let mut turn = 0usize;
    loop {
        // Waiting for a free slot before accepting leaves extra clients in the backlog.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = accept_any(&listeners, turn) => accepted,
            () = &mut shutdown => break,
        };
        turn = turn.wrapping_add(1);
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(err = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = WriteTimeout::new(stream, app.config.write_timeout);
        let app = app.clone();
        let graceful = graceful.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let security = app.security.as_ref().map(|s| s.current());
            let tls = security.as_ref().and_then(|s| s.tls.clone());
            let verified = security.is_some_and(|s| s.verifies_client_certs());
            match tls {
                None => serve_connection(stream, peer, app, &graceful, None).await,
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                    let limit = HANDSHAKE_TIMEOUT.min(app.config.header_read_timeout);
                    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let connection = stream.get_ref().1;
                            let user = verified.then(|| client_cert_user(connection)).flatten();
                            if connection.alpn_protocol() == Some(b"h2") {
                                http2::serve(stream, peer, app, &graceful, user).await
                            } else {
                                serve_connection(stream, peer, app, &graceful, user).await
                            }
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(source = %peer, err = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(source = %peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listeners);
    let drained = async {
        if let Ok(graceful) = Arc::try_unwrap(graceful) {
            graceful.shutdown().await;
        }
    };
    tokio::select! {
        () = drained => {},
        () = tokio::time::sleep(GRACE_PERIOD) => {
            tracing::warn!("requests still in flight after the grace period; stopping anyway");
        }
    }
}

/// The next connection on any listener; each is polled first in turn, so that a busy one
/// does not starve the others.
async fn accept_any(
    listeners: &[TcpListener],
    start: usize,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    std::future::poll_fn(|cx| {
        for offset in 0..listeners.len() {
            let listener = &listeners[(start + offset) % listeners.len()];
            if let Poll::Ready(accepted) = listener.poll_accept(cx) {
                return Poll::Ready(accepted);
            }
        }
        Poll::Pending
    })
    .await
}

/// The user a verified client certificate names (its subject's CN).
fn client_cert_user(connection: &rustls::ServerConnection) -> Option<ClientCertUser> {
    let certificate = connection.peer_certificates()?.first()?;
    common_name(certificate.as_ref()).map(|name| ClientCertUser(name.into()))
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    app: Arc<App>,
    graceful: &GracefulShutdown,
    user: Option<ClientCertUser>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = app.config.header_read_timeout;
    let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        let app = app.clone();
        if let Some(user) = &user {
            request.extensions_mut().insert(user.clone());
        }
        async move { Ok::<_, std::convert::Infallible>(handle(app, request, peer).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = graceful.watch(connection).await {
        tracing::debug!(source = %peer, err = %e, "connection ended with an error");
    }
}

/// A connection whose writes fail once they have made no progress for the limit: hyper
/// has no write timeout, and a client that stops reading would otherwise hold its
/// connection slot for as long as it likes.
struct WriteTimeout<I> {
    io: I,
    limit: Option<Duration>,
    /// Running while a write waits for the client to take more.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> WriteTimeout<I> {
    fn new(io: I, limit: Option<Duration>) -> WriteTimeout<I> {
        WriteTimeout {
            io,
            limit,
            stalled: None,
        }
    }

    /// Passes a write's outcome on, starting the stall clock when it is pending and
    /// failing it once the clock ran out.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        outcome: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let Some(limit) = self.limit else {
            return outcome;
        };
        if outcome.is_ready() {
            self.stalled = None;
            return outcome;
        }
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took none of the response within --web.write-timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteTimeout<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(cx, outcome)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch(cx, outcome)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.io).poll_flush(cx);
        this.watch(cx, outcome)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.io).poll_shutdown(cx);
        this.watch(cx, outcome)
    }
}
