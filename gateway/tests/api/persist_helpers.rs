//! Helpers of the persistence tests: a gateway started on a persistence file in a
//! temporary directory, with its stderr kept in a file, that can be SIGKILLed or SIGTERMed
//! and restarted on the same file; a request function that reports a failed
//! exchange instead of panicking (requests in flight when the gateway is killed); a small
//! seeded PRNG.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::helpers::{
    binary, http, is_own, parse_one, pushed_samples, wait_for_listen_address, Response,
    START_DEADLINE,
};

/// A directory under the system's temporary directory, removed (with its contents) on drop.
pub struct TempDir {
    /// The directory.
    pub path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory whose name contains `tag`.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "pgw-persist-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Seconds since the epoch, as the gateway's timestamps.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A seeded PRNG (splitmix64): deterministic, good enough for choosing operations.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A seed from the clock, or from `PGW_PERSIST_SEED` to replay a failure.
    pub fn seed_from_env_or_clock() -> u64 {
        std::env::var("PGW_PERSIST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                d.as_secs() ^ u64::from(d.subsec_nanos()).rotate_left(32)
            })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

/// One request that may fail: `Err` when the connection cannot be made or closes before a
/// complete response (the gateway was killed). Never panics.
pub fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Response, String> {
    try_request(addr, method, path, &[], body, timeout)
}

/// [`try_http`] with extra request headers.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    // A write error may still leave a response to read (an early answer).
    let write_error = stream.write_all(&request).err();
    let mut raw = Vec::new();
    let read_error = stream.read_to_end(&mut raw).err();
    match parse_one(&raw) {
        Some((response, _)) => Ok(response),
        None => Err(format!(
            "no complete response (write: {write_error:?}, read: {read_error:?}, {} bytes)",
            raw.len()
        )),
    }
}

/// Why a start did not lead to a ready gateway.
#[derive(Debug)]
pub struct StartFailure {
    /// The exit status, `None` when it did not exit (and was killed) before the deadline.
    pub status: Option<ExitStatus>,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// How to start a gateway on a persistence file; every start uses the same file and a port
/// the kernel picks (port 0), read back from `--web.listen-address-file`.
pub struct PersistGateway {
    /// The persistence file.
    pub file: PathBuf,
    /// Arguments after the listen address and the persistence file.
    pub args: Vec<String>,
    /// Where stderr files go (not the data directory, which may be a tiny tmpfs).
    pub log_dir: PathBuf,
    /// The working directory of the process (for a relative `file`), if not inherited.
    pub cwd: Option<PathBuf>,
    starts: u64,
}

impl PersistGateway {
    /// A gateway on `file`, started with `args` besides the persistence file and address;
    /// stderr files are written to `log_dir`. `--log.level=info` is passed so that the
    /// restore log line is available.
    pub fn new(file: &Path, log_dir: &Path, args: &[&str]) -> PersistGateway {
        PersistGateway {
            file: file.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            log_dir: log_dir.to_path_buf(),
            cwd: None,
            starts: 0,
        }
    }

    /// Starts the binary and waits until `/-/ready` answers 200, or until it exits.
    pub fn try_start(&mut self, timeout: Duration) -> Result<Instance, StartFailure> {
        self.starts += 1;
        let stderr_path = self.log_dir.join(format!("stderr-{}", self.starts));
        let address_path = self.log_dir.join(format!("address-{}", self.starts));
        let stderr_file = File::create(&stderr_path).unwrap();
        // Another PersistGateway on the same log directory may have left one behind.
        let _ = fs::remove_file(&address_path);
        let mut command = Command::new(binary());
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        let started = Instant::now();
        let mut child = command
            .arg("--web.listen-address=127.0.0.1:0")
            .arg(format!(
                "--web.listen-address-file={}",
                address_path.display()
            ))
            .arg("--log.level=info")
            .arg(format!("--persistence.file={}", self.file.display()))
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr_file))
            .spawn()
            .expect("start the pushgateway binary");
        let deadline = started + timeout;
        let addr = match wait_for_listen_address(&mut child, &address_path, deadline) {
            Ok(addr) => addr,
            Err(status) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartFailure {
                    status,
                    stderr: fs::read_to_string(&stderr_path).unwrap_or_default(),
                });
            }
        };
        let mut instance = Instance {
            child,
            addr,
            stderr_path,
            started,
            ready_after: Duration::ZERO,
        };
        loop {
            if let Some(status) = instance.child.try_wait().unwrap() {
                return Err(StartFailure {
                    status: Some(status),
                    stderr: instance.stderr(),
                });
            }
            if Instant::now() > deadline {
                instance.kill();
                return Err(StartFailure {
                    status: None,
                    stderr: instance.stderr(),
                });
            }
            // The listener is bound before the restore, so a connection may wait for
            // the restore to end: keep the read timeout short and try again.
            if let Ok(r) = try_http(addr, "GET", "/-/ready", b"", Duration::from_millis(500)) {
                if r.status == 200 {
                    instance.ready_after = instance.started.elapsed();
                    return Ok(instance);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// [`try_start`](Self::try_start), panicking (with stderr) when it fails.
    pub fn start(&mut self) -> Instance {
        self.try_start(START_DEADLINE)
            .unwrap_or_else(|f| panic!("the gateway did not start: {f:?}"))
    }
}

/// A running gateway, SIGKILLed when dropped.
pub struct Instance {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr_path: PathBuf,
    started: Instant,
    /// How long after the spawn `/-/ready` first answered 200.
    pub ready_after: Duration,
}

impl Instance {
    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM without waiting.
    pub fn send_sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// SIGTERM, and wait (up to 30 s) for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.send_sigterm();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        panic!(
            "the gateway did not exit within 30 s of SIGTERM; stderr:\n{}",
            self.stderr()
        );
    }

    /// Any request (panics when the exchange fails).
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Response {
        http(self.addr, method, path, &[], body)
    }

    /// Any request with headers (panics when the exchange fails).
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http(self.addr, method, path, headers, body)
    }

    /// PUT a text body.
    pub fn put(&self, path: &str, body: &str) -> Response {
        self.request("PUT", path, body.as_bytes())
    }

    /// DELETE a group.
    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, b"")
    }

    /// GET `/metrics`, asserting 200.
    pub fn scrape(&self) -> String {
        let r = self.request("GET", "/metrics", b"");
        assert_eq!(r.status, 200, "scrape failed: {}", r.text());
        r.text()
    }

    /// The pushed samples (series to value text), without the gateway's own metrics.
    pub fn state(&self) -> BTreeMap<String, String> {
        pushed_samples(&self.scrape())
    }

    /// The scrape without the lines (samples, HELP, TYPE) of the gateway's own metrics.
    pub fn pushed_text(&self) -> String {
        pushed_text(&self.scrape())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An exposition without the lines (samples and `# HELP`/`# TYPE`) of the gateway's own
/// metrics, otherwise unchanged.
pub fn pushed_text(scrape: &str) -> String {
    let mut out = String::new();
    for line in scrape.lines() {
        let name = match line.strip_prefix("# ") {
            Some(comment) => comment.split(' ').nth(1).unwrap_or(""),
            None => line,
        };
        if !is_own(name) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The names of the files in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
