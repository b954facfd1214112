//! `--quotas`: the latency of a 10-series push with 100 `[[quota]]` rules in place, next
//! to the same pushes with none (ours alone, in memory, sequential on one connection).
//! Every push goes to a group of one team, which one quota counts: the first round
//! creates the groups (a new group is matched against every rule once), the second
//! replaces them (a push checks only the counters of its group's quotas).

use std::time::{Duration, Instant};

use crate::attack::{ms, start_ours, write_beside_out};
use crate::client::{Conn, Result};
use crate::measure::body;
use crate::Args;

/// Quota rules of the measured configuration.
const RULES: usize = 100;
/// Groups pushed to (each once per round).
const GROUPS: usize = 2000;

/// Latencies of one round: median, 99th percentile, and the gateway's CPU per push.
struct Round {
    median: Duration,
    p99: Duration,
    cpu: Duration,
}

fn config(rules: usize) -> String {
    (0..rules)
        .map(|i| {
            format!(
                "[[quota]]\nname = \"team-{i}\"\nlabels_regex = {{ job = \"team-{i}-.*\" }}\nmax_series = 100000000\nmax_groups = 1000000\n\n"
            )
        })
        .collect()
}

async fn round(conn: &mut Conn, gateway: &crate::process::Gateway, round: u64) -> Result<Round> {
    let mut times = Vec::with_capacity(GROUPS);
    let before = gateway.cpu_time()?;
    for g in 0..GROUPS {
        let path = format!("/metrics/job/team-{}-batch/instance/i{g}", g % RULES);
        let asked = Instant::now();
        conn.put_ok(&path, body("bench_quota", 0, 10, round))
            .await?;
        times.push(asked.elapsed());
    }
    let cpu = gateway.cpu_time()?.saturating_sub(before);
    times.sort();
    let at = |p: f64| times[((p * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
    Ok(Round {
        median: at(0.5),
        p99: at(0.99),
        cpu: cpu / GROUPS as u32,
    })
}

/// Measures both configurations and prints the table (also written beside `--out`).
pub async fn run(args: &Args, work: &std::path::Path) -> Result<()> {
    let mut md = String::from(
        "| quota rules | pushes | median | p99 | CPU per push |\n| --- | --- | --- | --- | --- |\n",
    );
    for rules in [0, RULES] {
        let file = work.join(format!("quotas-{rules}.toml"));
        std::fs::write(&file, config(rules)).map_err(|e| format!("{}: {e}", file.display()))?;
        let flags = [format!("--config.file={}", file.display())];
        let gateway = start_ours(args, work, &format!("quotas-{rules}"), &flags, None).await?;
        let mut conn = Conn::new(gateway.addr);
        for (what, n) in [("new groups", 0), ("existing groups", 1)] {
            let r = round(&mut conn, &gateway, n).await?;
            let line = format!(
                "| {rules} | {GROUPS} 10-series PUTs to {what} | {:.3} ms | {:.3} ms | {:.3} ms |\n",
                ms(r.median),
                ms(r.p99),
                ms(r.cpu)
            );
            print!("{line}");
            md.push_str(&line);
        }
    }
    println!("\n{md}");
    write_beside_out(args, "quotas.md", &md)
}
