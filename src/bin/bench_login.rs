//! Login benchmark (`scripts/bench.sh login`).
//!
//! Serves the real app over loopback HTTP on a throwaway database, then
//! reports:
//! 1. logins/s with a few concurrent clients (argon2id verification bound);
//! 2. p50/p99 of a cheap authenticated route (`GET /api/v1/auth/me`) alone;
//! 3. the same route's p50/p99 while a concurrent login flood runs, which is
//!    what the bounded hashing pool is for.
//!
//!     bench_login [--seconds S] [--flood N] [--probes N]

use std::{
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use healthcrm::bench::{self, cli, ms, BenchServer, Sample};

struct Args {
    seconds: u64,
    flood: usize,
    probes: usize,
}

const NAME: &str = "bench_login";
const USAGE: &str = "bench_login [--seconds S] [--flood N] [--probes N]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 10,
        flood: 32,
        probes: 2000,
    };
    for (flag, value) in cli::pairs()? {
        match flag.as_str() {
            "--seconds" => args.seconds = cli::number::<u64>(&flag, &value)?.max(1),
            "--flood" => args.flood = cli::number::<usize>(&flag, &value)?.max(1),
            "--probes" => args.probes = cli::number::<usize>(&flag, &value)?.max(10),
            _ => return Err(cli::unknown(&flag)),
        }
    }
    Ok(args)
}

/// `workers` login loops until `stop`; (successes, failures, handles).
fn spawn_logins(
    srv: &Arc<BenchServer>,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> (
    Arc<AtomicU64>,
    Arc<AtomicU64>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let handles = (0..workers)
        .map(|_| {
            let (srv, stop, ok, failed) = (srv.clone(), stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match srv.admin_token().await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    (ok, failed, handles)
}

async fn probe(srv: &BenchServer, token: &str, count: usize) -> Sample {
    let (http, url, token) = (
        srv.http.clone(),
        format!("{}/api/v1/auth/me", srv.base),
        token.to_owned(),
    );
    bench::measure(4, count, move |_| http.get(&url).bearer_auth(&token)).await
}

fn row(label: &str, s: &Sample) {
    println!(
        "| {label:<32} | {:>8} | {:>6} | {:>6.2} | {:>6.2} |",
        s.latencies.len(),
        s.errors,
        ms(s.percentile(0.5)),
        ms(s.percentile(0.99))
    );
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::main(NAME, USAGE, parse_args(), run).await
}

async fn run(args: Args) -> Result<(), String> {
    let srv = Arc::new(bench::start(&[]).await?);
    let token = srv.admin_token().await?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "login benchmark: {cores} cores, {} concurrent hash(es), {} s per phase",
        srv.config.password_hash_concurrency, args.seconds
    );

    // 1. Login throughput.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let (ok, failed, handles) = spawn_logins(&srv, 8, stop.clone());
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let logins = ok.load(Ordering::Relaxed);
    println!(
        "logins/s (8 clients): {:.1}   ({logins} ok, {} failed in {elapsed:.1} s)",
        logins as f64 / elapsed,
        failed.load(Ordering::Relaxed)
    );

    // 2. The cheap authenticated route alone; 3. the same under a flood.
    let quiet = probe(&srv, &token, args.probes).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (flood_ok, flood_failed, handles) = spawn_logins(&srv, args.flood, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let busy = probe(&srv, &token, args.probes).await;
    let flood_secs = busy.elapsed.as_secs_f64() + 0.5;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }

    println!();
    println!(
        "| {:<32} | requests | errors | p50 ms | p99 ms |",
        "GET /api/v1/auth/me"
    );
    println!("|{}|---------:|-------:|-------:|-------:|", "-".repeat(34));
    row("no flood", &quiet);
    row(
        &format!("during a {}-client login flood", args.flood),
        &busy,
    );
    println!(
        "flood: {} logins ok, {} refused/failed, {:.1} logins/s",
        flood_ok.load(Ordering::Relaxed),
        flood_failed.load(Ordering::Relaxed),
        flood_ok.load(Ordering::Relaxed) as f64 / flood_secs
    );
    let errors = quiet.errors + busy.errors;
    if let Ok(srv) = Arc::try_unwrap(srv) {
        srv.finish().await;
    }
    if errors > 0 {
        return Err(format!("{errors} probe request(s) failed"));
    }
    Ok(())
}
