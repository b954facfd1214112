//! A minimal HTTP/1.1 client: one keep-alive connection per [`Conn`], reconnecting
//! when the server closed it. Each benchmark worker owns its connection, so
//! "16 concurrent connections" means exactly 16 TCP connections.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Result type of this crate: errors are reported as text.
pub type Result<T> = std::result::Result<T, String>;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Receives a response as it streams in.
pub trait BodySink: Send {
    /// The status and the `Content-Type` and `Content-Encoding` headers ("" when absent).
    fn head(&mut self, status: StatusCode, content_type: &str, content_encoding: &str);
    /// The next frame of the body.
    fn frame(&mut self, data: &[u8]) -> Result<()>;
}

/// Collects a whole body into one buffer (small bodies only).
#[derive(Default)]
struct Collect {
    status: StatusCode,
    body: Vec<u8>,
}

impl BodySink for Collect {
    fn head(&mut self, status: StatusCode, _: &str, _: &str) {
        self.status = status;
    }

    fn frame(&mut self, data: &[u8]) -> Result<()> {
        self.body.extend_from_slice(data);
        Ok(())
    }
}

/// One keep-alive HTTP/1.1 connection to a gateway on loopback.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection to `addr`; it is opened lazily by the first request.
    pub fn new(addr: SocketAddr) -> Self {
        Conn {
            addr,
            host: addr.to_string(),
            sender: None,
        }
    }

    async fn connect(&mut self) -> Result<()> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", self.addr))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake {}: {e}", self.addr))?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the server closes it.
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    async fn ready_sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        let usable = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            self.sender = None;
            self.connect().await?;
        }
        self.sender
            .as_mut()
            .ok_or_else(|| format!("no connection to {}", self.addr))
    }

    /// Sends one request and reads the whole response body.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        self.request_with(method, path, body, &[]).await
    }

    /// Like [`Conn::request`], with extra headers that replace the defaults.
    pub async fn request_with(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Bytes)> {
        let mut collected = Collect::default();
        self.stream_with(method, path, body, headers, &mut collected)
            .await?;
        Ok((collected.status, Bytes::from(collected.body)))
    }

    /// Sends one request and hands the response to `sink`: its head, then each frame
    /// of its body as it arrives, without joining them.
    pub async fn stream_with(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
        sink: &mut dyn BodySink,
    ) -> Result<()> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.host);
        for (name, default) in [
            ("accept", "text/plain; version=0.0.4"),
            ("content-type", "text/plain; version=0.0.4"),
        ] {
            if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                builder = builder.header(name, default);
            }
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let req = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
        let sender = self.ready_sender().await?;
        let fut = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("request {path}: {e}"))?;
            let header = |name| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
            };
            sink.head(
                resp.status(),
                header(hyper::header::CONTENT_TYPE),
                header(hyper::header::CONTENT_ENCODING),
            );
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| format!("body of {path}: {e}"))?;
                if let Some(data) = frame.data_ref() {
                    sink.frame(data)?;
                }
            }
            Ok::<_, String>(())
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(format!("{path}: no answer within {REQUEST_TIMEOUT:?}"))
            }
        }
    }

    /// `PUT`s a text-format body to `path` and fails unless the answer is 2xx (200
    /// when stored; upstream answers 202 when the consistency check is off).
    pub async fn put_ok(&mut self, path: &str, body: Bytes) -> Result<()> {
        let (status, resp) = self.request(Method::PUT, path, body).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "PUT {path}: {status}: {}",
                String::from_utf8_lossy(&resp[..resp.len().min(300)]).trim()
            ))
        }
    }

    /// `GET`s `path` and fails unless the answer is 200; returns the body.
    pub async fn get_ok(&mut self, path: &str) -> Result<Bytes> {
        let (status, resp) = self.request(Method::GET, path, Bytes::new()).await?;
        if status == StatusCode::OK {
            Ok(resp)
        } else {
            Err(format!("GET {path}: {status}"))
        }
    }
}
