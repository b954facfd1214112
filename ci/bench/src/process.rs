//! Starting, watching and stopping one gateway process on loopback.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{Conn, Result};
use crate::procnet::{candidate_port, listening_ports};

/// A running gateway; killed when dropped unless it was stopped before.
pub struct Gateway {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
}

/// How long a program may take to listen on a loaded machine.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(60);

/// How a started gateway tells which port it bound.
#[derive(Clone, Copy)]
pub enum PortReport {
    /// `--web.listen-address-file` (ours).
    AddressFile,
    /// Nothing: found in /proc (the reference).
    Proc,
}

impl PortReport {
    /// How `bin` reports its port: the address file if its `--help` names the flag (ours),
    /// else /proc (the reference, or any binary with upstream's flags run as "ours").
    pub fn of(bin: &Path) -> PortReport {
        if supports_flag(bin, "web.listen-address-file") {
            PortReport::AddressFile
        } else {
            PortReport::Proc
        }
    }
}

/// Whether the `--help` of `bin` names `flag`.
pub fn supports_flag(bin: &Path, flag: &str) -> bool {
    match Command::new(bin).arg("--help").output() {
        Ok(out) => {
            String::from_utf8_lossy(&out.stdout).contains(flag)
                || String::from_utf8_lossy(&out.stderr).contains(flag)
        }
        Err(_) => false,
    }
}

/// Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`, 100 if unknown).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// Where a gateway started with `log` writes its address (`--web.listen-address-file`).
fn address_file(log: &Path) -> PathBuf {
    let mut file = log.as_os_str().to_owned();
    file.push(".address");
    PathBuf::from(file)
}

/// The last lines of a log file, for error messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(8);
    lines[from..].join("\n    ")
}

/// Resident set size in bytes of process `pid` (VmRSS of /proc/<pid>/status).
pub fn rss_of(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| format!("no VmRSS in {path}"))
}

/// CPU time (user + system) process `pid` used so far, from /proc/<pid>/stat.
pub fn cpu_time_of(pid: u32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => Ok(Duration::from_secs_f64((u + s) as f64 / clock_ticks())),
        _ => Err(format!("cannot read utime/stime from {path}")),
    }
}

impl Gateway {
    /// Starts `bin` on a loopback port the kernel picks (port 0) with `args` appended, its
    /// output going to `log`, and returns once it listens.
    pub async fn start(
        bin: &Path,
        report: PortReport,
        args: &[String],
        log: &Path,
    ) -> Result<Gateway> {
        let mut listen = vec!["--web.listen-address=127.0.0.1:0".to_string()];
        if let PortReport::AddressFile = report {
            listen.push(format!(
                "--web.listen-address-file={}",
                address_file(log).display()
            ));
        }
        listen.extend_from_slice(args);
        Gateway::start_program(bin, report, &listen, log).await
    }

    /// Starts `bin` with exactly `args` (which must make it listen on a loopback port:
    /// port 0 with [`PortReport::Proc`]), its output going to `log`, and returns once it
    /// listens.
    pub async fn start_program(
        bin: &Path,
        report: PortReport,
        args: &[String],
        log: &Path,
    ) -> Result<Gateway> {
        let out = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let address_file = address_file(log);
        let _ = std::fs::remove_file(&address_file);
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start {}: {e}", bin.display()))?;
        let mut gw = Gateway {
            child,
            addr: ([127, 0, 0, 1], 0).into(),
            log: log.to_path_buf(),
        };
        let start = Instant::now();
        loop {
            let found = match report {
                PortReport::AddressFile => std::fs::read_to_string(&address_file)
                    .ok()
                    .and_then(|t| t.trim().parse::<SocketAddr>().ok()),
                PortReport::Proc => {
                    let ports = listening_ports(gw.pid());
                    (ports.len() == 1)
                        .then(|| ports.into_iter().next())
                        .flatten()
                        .map(|port| ([127, 0, 0, 1], port).into())
                }
            };
            if let Some(addr) = found {
                gw.addr = addr;
                return Ok(gw);
            }
            if let Some(e) = gw.exited() {
                return Err(e);
            }
            if start.elapsed() > LISTEN_TIMEOUT {
                return Err(format!(
                    "gateway not listening after {LISTEN_TIMEOUT:?}; its log:\n    {}",
                    gw.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the gateway's own output, for error messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "gateway exited ({status}); its log ({}):\n    {}",
                self.log.display(),
                self.log_tail()
            )),
            _ => None,
        }
    }

    /// Waits until `GET /-/ready` answers 200, at most `timeout`: in Redis mode only once the
    /// replica has caught up with the stream and compared its settings (before that it
    /// refuses pushes).
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(e) = self.exited() {
                return Err(e);
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                let mut conn = Conn::new(self.addr);
                if conn.get_ok("/-/ready").await.is_ok() {
                    return Ok(());
                }
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "gateway not ready on {} after {timeout:?}; its log:\n    {}",
                    self.addr,
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident set size in bytes (VmRSS of /proc/<pid>/status).
    pub fn rss_bytes(&self) -> Result<u64> {
        rss_of(self.pid())
    }

    /// The log lines written so far.
    pub fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// CPU time (user + system) the process used so far, from /proc/<pid>/stat.
    pub fn cpu_time(&self) -> Result<Duration> {
        cpu_time_of(self.pid())
    }

    /// Sends SIGTERM and waits for the exit, at most `timeout` (then SIGKILL).
    /// Returns how long the shutdown took.
    pub async fn terminate(mut self, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .map_err(|e| format!("kill: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM {} failed", self.pid()));
        }
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(format!("gateway did not stop within {timeout:?}; killed"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A redis-server of its own for `ours-redis`: loopback, a port checked to be its own, its files in one
/// directory, no RDB snapshots, the append-only file on with the given fsync policy.
/// Killed when dropped.
pub struct RedisServer {
    child: Child,
    /// Where it listens.
    pub port: u16,
    log: PathBuf,
}

impl RedisServer {
    /// Starts `bin` in `dir` (its files and `redis.log`) and waits until it answers PING.
    /// redis-server cannot listen on port 0: it gets a candidate port and is kept only when the
    /// listener there is its own; otherwise another port is tried.
    pub async fn start(bin: &Path, appendfsync: &str, dir: &Path) -> Result<RedisServer> {
        let log = dir.join("redis.log");
        let mut last = String::new();
        for attempt in 0..10 {
            let port = candidate_port(attempt);
            let mut redis = RedisServer::spawn(bin, appendfsync, dir, port, &log)?;
            match redis.wait_listening().await {
                Ok(()) => return redis.wait_pong().await.map(|()| redis),
                Err(e) => last = e,
            }
        }
        Err(format!(
            "redis-server did not start on any of 10 ports: {last}"
        ))
    }

    fn spawn(
        bin: &Path,
        appendfsync: &str,
        dir: &Path,
        port: u16,
        log: &Path,
    ) -> Result<RedisServer> {
        let out = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let port_text = port.to_string();
        let dir_text = dir.display().to_string();
        let child = Command::new(bin)
            .args([
                "--port",
                &port_text,
                "--bind",
                "127.0.0.1",
                "--dir",
                &dir_text,
            ])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                appendfsync,
            ])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start {}: {e} (install redis-server)", bin.display()))?;
        Ok(RedisServer {
            child,
            port,
            log: log.to_path_buf(),
        })
    }

    /// Until the listener on its port is its own; an error (the process is killed on drop)
    /// when it exits first, e.g. because another process holds the port.
    async fn wait_listening(&mut self) -> Result<()> {
        let start = Instant::now();
        loop {
            if listening_ports(self.child.id()).contains(&self.port) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "redis-server exited ({status}) on port {}; its log:\n    {}",
                    self.port,
                    tail(&self.log)
                ));
            }
            if start.elapsed() > LISTEN_TIMEOUT {
                return Err(format!("redis-server not listening on port {}", self.port));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_pong(&mut self) -> Result<()> {
        let start = Instant::now();
        while !self.pong() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "redis-server exited ({status}); its log ({}):\n    {}",
                    self.log.display(),
                    tail(&self.log)
                ));
            }
            if start.elapsed() > LISTEN_TIMEOUT {
                return Err(format!(
                    "redis-server does not answer PING on port {}; its log:\n    {}",
                    self.port,
                    tail(&self.log)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Whether it answers `PING` with `+PONG` (a blocking round trip on loopback).
    fn pong(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// The URL for `--storage.redis.url`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// CPU time (user + system) it used so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        cpu_time_of(self.child.id())
    }

    /// Resident set size in bytes.
    pub fn rss_bytes(&self) -> Result<u64> {
        rss_of(self.child.id())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
