//! Shared helpers of the black-box suite: start the real `pushgateway` binary on port 0
//! (reading back the port it bound), talk to it with a tiny blocking HTTP/1.1 client over
//! `TcpStream`, and read the text exposition.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One HTTP response, read to the end of the connection.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    /// Body, with any chunked transfer coding removed (content codings are kept).
    pub body: Vec<u8>,
}

impl Response {
    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// Sends one request (HTTP/1.1, `Connection: close`, explicit Content-Length) and reads the
/// whole response. `path` is sent as given, so percent-encodings reach the server intact.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (e.g. 413) before reading the whole body; ignore write errors.
    let _ = stream.write_all(body);
    let _ = stream.flush();
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        // A reset after a complete answer is fine; anything else is fatal below.
        if raw.is_empty() {
            panic!("{method} {path}: reading the response failed: {e}");
        }
    }
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: unparsable response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Writes `request` as is on a fresh connection and returns every byte the server sends
/// until it closes the connection.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    raw
}

/// Parses one response from the start of `raw`, returning it and the bytes after it.
pub fn parse_one(raw: &[u8]) -> Option<(Response, &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let len: usize = head
        .split("\r\n")
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let total = end + 4 + len;
    let response = parse_response(raw.get(..total)?)?;
    Some((response, &raw[total..]))
}

/// Parses a whole response (status, headers, body with any chunked coding removed).
pub fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else if let Some((_, len)) = headers.iter().find(|(n, _)| n == "content-length") {
        let len: usize = len.parse().ok()?;
        rest.get(..len)?.to_vec()
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A running gateway, killed when dropped.
pub struct Gateway {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The route prefix it was started with (`""` or `/something`).
    pub prefix: String,
    /// Holds the listen-address file and stderr; removed on drop.
    scratch: PathBuf,
}

/// Path of the binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_pushgateway")
}

/// How long a start may take on a loaded machine (CI runners share cores with other jobs).
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// A fresh empty directory under the system's temporary directory.
pub fn scratch_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("pgw-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until a gateway started with `--web.listen-address-file=<file>` has written the
/// address it really bound (it does so once listening, atomically). Returns the exit status
/// instead when the process ends first, and `Err(None)` when `deadline` passes.
pub fn wait_for_listen_address(
    child: &mut Child,
    file: &Path,
    deadline: Instant,
) -> Result<SocketAddr, Option<ExitStatus>> {
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            if let Ok(addr) = text.trim().parse() {
                return Ok(addr);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            return Err(Some(status));
        }
        if Instant::now() > deadline {
            return Err(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts the binary with `args` plus `--web.listen-address=127.0.0.1:0` (the kernel picks a
/// free port, so no other process can take it in between), reads the bound address from
/// `--web.listen-address-file`, and waits until `/-/ready` answers 200.
pub fn spawn_gateway(args: &[&str]) -> Gateway {
    // The route prefix: --web.route-prefix, else the path of --web.external-url.
    let external_path = args
        .iter()
        .find_map(|a| a.strip_prefix("--web.external-url="))
        .and_then(|url| url.split_once("://"))
        .map(|(_, rest)| rest.find('/').map(|i| &rest[i..]).unwrap_or(""));
    let prefix = args
        .iter()
        .find_map(|a| a.strip_prefix("--web.route-prefix="))
        .or(external_path)
        .map(|p| {
            let t = p.trim_matches('/');
            if t.is_empty() {
                String::new()
            } else {
                format!("/{t}")
            }
        })
        .unwrap_or_default();
    let scratch = scratch_dir("api");
    let address_file = scratch.join("address");
    let stderr_path = scratch.join("stderr");
    let mut child = Command::new(binary())
        .arg("--web.listen-address=127.0.0.1:0")
        .arg(format!(
            "--web.listen-address-file={}",
            address_file.display()
        ))
        .arg("--log.level=error")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::create(&stderr_path).unwrap()))
        .spawn()
        .expect("start the pushgateway binary");
    let deadline = Instant::now() + START_DEADLINE;
    let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let addr = match wait_for_listen_address(&mut child, &address_file, deadline) {
        Ok(addr) => addr,
        Err(status) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the gateway started with {args:?} did not listen (exit: {status:?}); stderr:\n{}",
                stderr()
            );
        }
    };
    let mut gateway = Gateway {
        child,
        addr,
        prefix,
        scratch: scratch.clone(),
    };
    let ready_path = format!("{}/-/ready", gateway.prefix);
    loop {
        if let Some(status) = gateway.child.try_wait().unwrap() {
            panic!(
                "the gateway started with {args:?} exited ({status}); stderr:\n{}",
                stderr()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the gateway started with {args:?} is running but not ready after {START_DEADLINE:?}"
        );
        if http(addr, "GET", &ready_path, &[], b"").status == 200 {
            return gateway;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The binary with `listen` and `args`, logging errors only, its output discarded.
fn start_quiet(listen: &str, args: &[&str]) -> Child {
    Command::new(binary())
        .arg(listen)
        .arg("--log.level=error")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the pushgateway binary")
}

/// Starts the binary with `args`, which choose the listen addresses (port 0), and
/// `--web.listen-address-file`; returns the gateway (its `addr` the first address) and
/// every bound address, in the order of the file, once `/-/ready` answers 200.
pub fn spawn_listening(args: &[&str]) -> (Gateway, Vec<SocketAddr>) {
    let scratch = scratch_dir("listen");
    let file = scratch.join("addresses");
    let mut child = start_quiet(
        &format!("--web.listen-address-file={}", file.display()),
        args,
    );
    let deadline = Instant::now() + START_DEADLINE;
    let addresses: Vec<SocketAddr> = loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            break text.lines().map(|l| l.parse().unwrap()).collect();
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            let _ = child.kill();
            panic!("the gateway started with {args:?} did not write its addresses");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let gateway = Gateway {
        child,
        addr: addresses[0],
        prefix: String::new(),
        scratch,
    };
    while gateway.get("/-/ready").status != 200 {
        assert!(Instant::now() < deadline, "not ready: {args:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    (gateway, addresses)
}

impl Gateway {
    /// The process id (to send signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Any request, path relative to the route prefix.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http(
            self.addr,
            method,
            &format!("{}{path}", self.prefix),
            headers,
            body,
        )
    }

    /// A request with a raw path, ignoring the route prefix.
    pub fn request_raw(&self, method: &str, path: &str, body: &[u8]) -> Response {
        http(self.addr, method, path, &[], body)
    }

    /// PUT a text body.
    pub fn put(&self, path: &str, body: &str) -> Response {
        self.request("PUT", path, &[], body.as_bytes())
    }

    /// POST a text body.
    pub fn post(&self, path: &str, body: &str) -> Response {
        self.request("POST", path, &[], body.as_bytes())
    }

    /// DELETE.
    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, &[], b"")
    }

    /// GET.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// GET `/metrics`, asserting 200, and return the text.
    pub fn scrape(&self) -> String {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "scrape failed: {}", r.text());
        r.text()
    }

    /// The scrape reduced to the pushed state: sample lines keyed by series, without the
    /// gateway's own metrics (`pushgateway_*`, `process_*`, `go_*`).
    pub fn state(&self) -> BTreeMap<String, String> {
        pushed_samples(&self.scrape())
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Every sample line of an exposition, series (everything before the last space) to value.
/// Panics on a series that appears twice.
pub fn samples(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("sample line without value: {line:?}"));
        let previous = out.insert(series.to_string(), value.to_string());
        assert!(previous.is_none(), "series {series} exposed twice:\n{text}");
    }
    out
}

/// Whether a series belongs to the gateway's own metrics.
pub fn is_own(series: &str) -> bool {
    ["pushgateway_", "process_", "go_"]
        .iter()
        .any(|p| series.starts_with(p))
}

/// [`samples`] without the gateway's own metrics.
pub fn pushed_samples(text: &str) -> BTreeMap<String, String> {
    samples(text)
        .into_iter()
        .filter(|(s, _)| !is_own(s))
        .collect()
}

/// Formats a series the way the exposition does: labels sorted by name, values escaped.
pub fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels = labels.to_vec();
    labels.sort();
    if labels.is_empty() {
        return name.to_string();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// The value of `push_time_seconds` for a group, given its labels (with `instance`).
pub fn push_time(state: &BTreeMap<String, String>, group: &[(&str, &str)]) -> Option<f64> {
    state
        .get(&series("push_time_seconds", group))
        .map(|v| v.parse().unwrap())
}

/// The value of `push_failure_time_seconds` for a group, given its labels.
pub fn failure_time(state: &BTreeMap<String, String>, group: &[(&str, &str)]) -> Option<f64> {
    state
        .get(&series("push_failure_time_seconds", group))
        .map(|v| v.parse().unwrap())
}

/// Sleeps long enough for the next push to get a later push time.
pub fn tick() {
    std::thread::sleep(Duration::from_millis(15));
}

/// Polls until `done` holds, for up to 30 s: an expiry sweep runs every second, but a loaded
/// machine may delay it.
pub fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}
