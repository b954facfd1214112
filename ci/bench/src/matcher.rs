//! `--matcher-delete`: the cost of deleting groups by matcher (issue 20). Ours alone (with
//! `--web.enable-admin-api` and a persistence file, so the log's record and fsync count)
//! is loaded with the largest `--sizes` total in groups of [`GROUP_SERIES`] series, a tenth
//! of the groups under `job="bench-del"`. Then, each timed: the first page of
//! `GET /api/v1/groups` for that selector, the dry run, the delete itself (one request,
//! one change) with the gateway's CPU time, and for comparison the same groups pushed
//! again and deleted one `DELETE` at a time on one connection, as a client of upstream
//! has to.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};

use crate::attack::start;
use crate::client::{Conn, Result};
use crate::Args;

/// Series in each loaded group.
const GROUP_SERIES: usize = 10;
/// The deleted share of the groups: one in this many.
const DELETED_ONE_IN: usize = 10;
const SELECTOR: &str = "%7Bjob%3D%22bench-del%22%7D"; // {job="bench-del"}

fn body() -> Bytes {
    let mut text = String::new();
    for i in 0..GROUP_SERIES {
        text.push_str(&format!("bench_matcher_series{{i=\"{i}\"}} {i}\n"));
    }
    Bytes::from(text)
}

fn path(group: usize, deleted: bool) -> String {
    let job = if deleted { "bench-del" } else { "bench-keep" };
    format!("/metrics/job/{job}/instance/i{group}")
}

/// Pushes `groups` over `connections` connections at once, each taking the next group.
async fn load(addr: SocketAddr, connections: usize, groups: Arc<Vec<(usize, bool)>>) -> Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (next, groups) = (next.clone(), groups.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let body = body();
            while let Some((group, deleted)) = groups.get(next.fetch_add(1, Ordering::Relaxed)) {
                conn.put_ok(&path(*group, *deleted), body.clone()).await?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

async fn timed(conn: &mut Conn, method: Method, path: &str) -> Result<(Duration, Bytes)> {
    let started = Instant::now();
    let (status, body) = conn.request(method.clone(), path, Bytes::new()).await?;
    let took = started.elapsed();
    if status != StatusCode::OK {
        return Err(format!(
            "{method} {path}: {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    Ok((took, body))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Runs the measurement and prints the table (also written next to `--out`).
pub async fn run(args: &Args, work: &std::path::Path) -> Result<()> {
    let total = args.sizes.iter().copied().max().unwrap_or(1_000_000);
    let groups = (total / GROUP_SERIES).max(DELETED_ONE_IN);
    let deleted = groups / DELETED_ONE_IN;
    println!(
        "matcher delete: {} with {total} series in {groups} groups, deleting {deleted}",
        args.ours.display()
    );
    let gateway = start(
        args,
        work,
        "matcher",
        &["--web.enable-admin-api".into()],
        None,
    )
    .await?;
    let plan: Vec<(usize, bool)> = (0..groups).map(|g| (g, g % DELETED_ONE_IN == 0)).collect();
    let again: Vec<(usize, bool)> = plan.iter().copied().filter(|(_, d)| *d).collect();
    let started = Instant::now();
    load(gateway.addr, args.load_connections, Arc::new(plan)).await?;
    println!("  loaded in {:.1} s", started.elapsed().as_secs_f64());

    let conn = &mut Conn::new(gateway.addr);
    let (page, _) = timed(
        conn,
        Method::GET,
        &format!("/api/v1/groups?match[]={SELECTOR}&limit=100"),
    )
    .await?;
    let (dry, _) = timed(
        conn,
        Method::DELETE,
        &format!("/api/v1/groups?match[]={SELECTOR}&dry_run=true"),
    )
    .await?;
    let cpu_before = gateway.cpu_time()?;
    let (delete, answer) = timed(
        conn,
        Method::DELETE,
        &format!("/api/v1/groups?match[]={SELECTOR}"),
    )
    .await?;
    let delete_cpu = gateway.cpu_time()?.saturating_sub(cpu_before);
    let expected = format!("\"deleted\":{deleted},");
    if !String::from_utf8_lossy(&answer).contains(&expected) {
        return Err(format!("the delete did not report {deleted} groups"));
    }
    println!(
        "  matcher delete of {deleted} groups: {} ({} CPU)",
        ms(delete),
        ms(delete_cpu)
    );

    load(gateway.addr, args.load_connections, Arc::new(again.clone())).await?;
    let started = Instant::now();
    for (group, _) in &again {
        let (status, _) = conn
            .request(Method::DELETE, &path(*group, true), Bytes::new())
            .await?;
        if !status.is_success() {
            return Err(format!("DELETE {}: {status}", path(*group, true)));
        }
    }
    let one_by_one = started.elapsed();
    println!("  {deleted} single DELETEs: {}", ms(one_by_one));

    let md = format!(
        "| stored series | groups | deleted groups | first page of `GET /api/v1/groups` (limit 100) | dry run | matcher delete | its gateway CPU | the same groups by {deleted} single `DELETE`s |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n\
         | {total} | {groups} | {deleted} | {} | {} | {} | {} | {} |\n",
        ms(page),
        ms(dry),
        ms(delete),
        ms(delete_cpu),
        ms(one_by_one)
    );
    println!("\n{md}");
    let out = args.out.with_file_name("matcher.md");
    if let Some(parent) = out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&out, &md).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("written to {}", out.display());
    Ok(())
}
