//! `--attack`: the CPU cost of hostile requests at the gateway's default limits, next to
//! a normal push of the same size. Each shape is sent sequentially on one connection to
//! ours alone (with a persistence file, so the log's work counts too), and the gateway's
//! CPU time (user + system, from /proc) over the run is divided by the requests sent.
//! The target is 50 ms of CPU per request; the table says which shapes stay within it.
//!
//! Every body is about [`BODY_BYTES`] so that the shapes compare at equal size: the cost
//! of a push grows with its size by design, and what must not happen is a shape that
//! costs much more than a normal push of the same size.

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;

use crate::client::{Conn, Result};
use crate::process::{Gateway, PortReport};
use crate::Args;

/// The size every attack body is built to (a normal push of about 1300 series).
pub(crate) const BODY_BYTES: usize = 64 * 1024;
/// CPU per request that every shape must stay within.
const TARGET: Duration = Duration::from_millis(50);
/// Each shape runs until it has used this much wall time (and at least `MIN_REQUESTS`).
const BUDGET: Duration = Duration::from_secs(3);
const MIN_REQUESTS: usize = 5;
const MAX_REQUESTS: usize = 400;

/// The defaults the shapes are built against (see the gateway's flags).
const MAX_GROUPING_LABELS: usize = 32;
pub(crate) const MAX_LABELS_PER_SERIES: usize = 512;
const MAX_LABEL_LENGTH: usize = 65_536;
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// One kind of request and how it is made.
pub(crate) struct Shape {
    pub(crate) name: &'static str,
    pub(crate) what: String,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Bytes,
    /// Whether each request must look different (a fresh password per guess).
    pub(crate) fresh_password: bool,
}

/// What one shape cost.
struct Cost {
    statuses: String,
    cpu_per_request: Duration,
    slowest: Duration,
}

fn lines_up_to(size: usize, mut line: impl FnMut(usize) -> String) -> Bytes {
    let mut body = String::with_capacity(size + 1024);
    let mut i = 0;
    while body.len() < size {
        body.push_str(&line(i));
        i += 1;
    }
    Bytes::from(body)
}

fn text_shape(name: &'static str, what: String, path: String, body: Bytes) -> Shape {
    Shape {
        name,
        what,
        method: Method::PUT,
        path,
        headers: Vec::new(),
        body,
        fresh_password: false,
    }
}

fn shapes() -> Vec<Shape> {
    let normal = lines_up_to(BODY_BYTES, |i| {
        format!(
            "bench_normal_metric{{instance=\"host-{}\",series=\"{i}\"}} {i}\n",
            i % 50
        )
    });
    let grouping: String = (1..MAX_GROUPING_LABELS)
        .map(|i| format!("/g{i:02}/v"))
        .collect();
    let tiny_series = lines_up_to(BODY_BYTES, |i| format!("m{{i=\"{i}\"}} 1\n"));
    let crowded = lines_up_to(BODY_BYTES, |i| {
        let labels: Vec<String> = (0..MAX_LABELS_PER_SERIES)
            .map(|l| {
                if l == 0 {
                    format!("l0=\"{i}\"")
                } else {
                    format!("l{l}=\"v\"")
                }
            })
            .collect();
        format!("crowded{{{}}} 1\n", labels.join(","))
    });
    let value = "v".repeat(MAX_LABEL_LENGTH - 8);
    let long_line = lines_up_to(BODY_BYTES, |i| {
        format!("long{{a=\"{i}{value}\",b=\"{value}\",c=\"{value}\",d=\"{value}\"}} 1\n")
    });
    let families = lines_up_to(BODY_BYTES, |i| format!("f{i} 1\n"));
    let too_many_labels = {
        let labels: Vec<String> = (0..40_000).map(|l| format!("l{l}=\"v\"")).collect();
        Bytes::from(format!("refused{{{}}} 1\n", labels.join(",")))
    };
    let bomb = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b'#'; 1024 * 1024];
        for _ in 0..=MAX_BODY_BYTES / zeros.len() {
            let _ = gz.write_all(&zeros);
        }
        Bytes::from(gz.finish().unwrap_or_default())
    };
    let mut shapes = vec![
        text_shape(
            "normal push",
            format!(
                "{} series with 2 labels",
                normal.iter().filter(|&&b| b == b'\n').count()
            ),
            "/metrics/job/attack/instance/normal".into(),
            normal,
        ),
        text_shape(
            "many grouping labels",
            format!("{MAX_GROUPING_LABELS} grouping labels, tiny series"),
            format!("/metrics/job/attack{grouping}"),
            tiny_series,
        ),
        text_shape(
            "many labels per series",
            format!("{MAX_LABELS_PER_SERIES} labels on every line"),
            "/metrics/job/attack/instance/crowded".into(),
            crowded,
        ),
        text_shape(
            "long lines",
            "4 labels of almost 64 KiB a line".into(),
            "/metrics/job/attack/instance/long".into(),
            long_line,
        ),
        text_shape(
            "many metric families",
            "one series per family".into(),
            "/metrics/job/attack/instance/families".into(),
            families,
        ),
        text_shape(
            "labels beyond the limit",
            "one line with 40000 labels (refused)".into(),
            "/metrics/job/attack/instance/refused".into(),
            too_many_labels,
        ),
    ];
    shapes.push(Shape {
        name: "gzip bomb",
        what: format!(
            "compressed to {} bytes, past --push.max-body-bytes when inflated",
            bomb.len()
        ),
        method: Method::PUT,
        path: "/metrics/job/attack/instance/bomb".into(),
        headers: vec![("content-encoding", "gzip".into())],
        body: bomb,
        fresh_password: false,
    });
    shapes.extend(super::attack_otlp::shapes());
    shapes
}

/// A bcrypt hash of cost 10 (exporter-toolkit's suggestion) for the user `bench`.
fn web_config(dir: &std::path::Path) -> Result<std::path::PathBuf> {
    let hash = bcrypt::hash("right", 10).map_err(|e| e.to_string())?;
    let path = dir.join("attack-web.yml");
    std::fs::write(&path, format!("basic_auth_users:\n  bench: '{hash}'\n"))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn basic(password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("bench:{password}"));
    format!("Basic {token}")
}

async fn measure(gateway: &Gateway, shape: &Shape, auth: Option<&str>) -> Result<Cost> {
    let mut conn = Conn::new(gateway.addr);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let before = gateway.cpu_time()?;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut requests = 0;
    while requests < MIN_REQUESTS || (started.elapsed() < BUDGET && requests < MAX_REQUESTS) {
        let mut headers: Vec<(&str, String)> =
            shape.headers.iter().map(|(n, v)| (*n, v.clone())).collect();
        if shape.fresh_password {
            headers.push(("authorization", basic(&format!("guess-{requests}"))));
        } else if let Some(auth) = auth {
            headers.push(("authorization", auth.to_string()));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let asked = Instant::now();
        let (status, _) = conn
            .request_with(
                shape.method.clone(),
                &shape.path,
                shape.body.clone(),
                &headers,
            )
            .await?;
        slowest = slowest.max(asked.elapsed());
        *statuses.entry(status.as_u16()).or_default() += 1;
        requests += 1;
    }
    let cpu = gateway.cpu_time()?.saturating_sub(before);
    Ok(Cost {
        statuses: statuses
            .iter()
            .map(|(s, n)| format!("{s}×{n}"))
            .collect::<Vec<_>>()
            .join(" "),
        cpu_per_request: cpu / requests as u32,
        slowest,
    })
}

/// Starts ours with a persistence file of its own, `extra` and every `--ours-arg`, and
/// waits until `/-/healthy` answers (with `auth` when basic auth is on).
pub async fn start(
    args: &Args,
    work: &std::path::Path,
    name: &str,
    extra: &[String],
    auth: Option<&str>,
) -> Result<Gateway> {
    let mut flags = vec![format!(
        "--persistence.file={}",
        work.join(format!("{name}.db")).display()
    )];
    flags.extend(extra.iter().cloned());
    start_ours(args, work, name, &flags, auth).await
}

/// Starts ours with `flags` and every `--ours-arg` (its log in `work`), and waits until
/// `/-/healthy` answers (with `auth` when basic auth is on).
pub async fn start_ours(
    args: &Args,
    work: &std::path::Path,
    name: &str,
    flags: &[String],
    auth: Option<&str>,
) -> Result<Gateway> {
    let mut flags = flags.to_vec();
    flags.extend(args.ours_arg.iter().cloned());
    let log = work.join(format!("{name}.log"));
    let gateway = Gateway::start(&args.ours, PortReport::AddressFile, &flags, &log).await?;
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    let started = Instant::now();
    loop {
        let mut conn = Conn::new(gateway.addr);
        if let Ok((status, _)) = conn
            .request_with(Method::GET, "/-/healthy", Bytes::new(), &headers)
            .await
        {
            if status.is_success() {
                return Ok(gateway);
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "gateway not ready after 60 s; its log:\n    {}",
                gateway.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs every shape against ours and prints the table (also written to `--out`).
pub async fn run(args: &Args, work: &std::path::Path) -> Result<()> {
    println!(
        "attack benchmark: {} at its default limits",
        args.ours.display()
    );
    let mut rows = Vec::new();
    {
        let gateway = start(args, work, "attack", &[], None).await?;
        for shape in shapes() {
            let cost = measure(&gateway, &shape, None).await?;
            println!(
                "  {:<26} {:>8.2} ms CPU/request",
                shape.name,
                ms(cost.cpu_per_request)
            );
            rows.push((shape.name, shape.what, cost));
        }
    }
    let config = web_config(work)?;
    let right = basic("right");
    let auth_flag = format!("--web.config.file={}", config.display());
    let gateway = start(args, work, "attack-auth", &[auth_flag], Some(&right)).await?;
    for (name, what, fresh) in [
        (
            "password guessing",
            "a wrong password each time (bcrypt cost 10)",
            true,
        ),
        ("known client", "the right password, verdict cached", false),
    ] {
        let shape = Shape {
            name,
            what: what.into(),
            method: Method::GET,
            path: "/-/healthy".into(),
            headers: Vec::new(),
            body: Bytes::new(),
            fresh_password: fresh,
        };
        let cost = measure(&gateway, &shape, Some(&right)).await?;
        println!(
            "  {:<26} {:>8.2} ms CPU/request",
            shape.name,
            ms(cost.cpu_per_request)
        );
        rows.push((name, shape.what, cost));
    }
    drop(gateway);
    let md = markdown(&rows);
    println!("\n{md}");
    write_beside_out(args, "attack.md", &md)
}

/// Writes `md` to `name` in the directory of `--out`, and says where.
pub fn write_beside_out(args: &Args, name: &str, md: &str) -> Result<()> {
    let out = args.out.with_file_name(name);
    if let Some(parent) = out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&out, md).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("written to {}", out.display());
    Ok(())
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn markdown(rows: &[(&str, String, Cost)]) -> String {
    let mut md = String::from(
        "| shape | request | answers | CPU per request | slowest answer | within 50 ms |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for (name, what, cost) in rows {
        md.push_str(&format!(
            "| {name} | {what} | {} | {:.2} ms | {:.0} ms | {} |\n",
            cost.statuses,
            ms(cost.cpu_per_request),
            ms(cost.slowest),
            if cost.cpu_per_request <= TARGET {
                "yes"
            } else {
                "no"
            },
        ));
    }
    let worst = rows
        .iter()
        .filter(|(name, _, _)| *name != "normal push")
        .max_by_key(|(_, _, cost)| cost.cpu_per_request);
    if let Some((name, _, cost)) = worst {
        md.push_str(&format!(
            "\nWorst attack: {name}, {:.2} ms of CPU per request (target: {} ms); requests of about {} KiB, {} requests or {} s per shape.\n",
            ms(cost.cpu_per_request),
            TARGET.as_millis(),
            BODY_BYTES / 1024,
            MAX_REQUESTS,
            BUDGET.as_secs()
        ));
    }
    md.push_str(
        "A wrong password costs one bcrypt check of the hash's own cost, whatever the limits; \
         the checks run on at most half the CPUs, so the guessers wait for each other.\n",
    );
    md
}
