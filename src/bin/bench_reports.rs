//! Report benchmark (`scripts/bench.sh reports`).
//!
//! Loads patients with three treatments each (and the ledger entries they
//! imply) straight into the database, 10,000 and then 100,000 by default,
//! and after each size times the dashboard and every report over loopback
//! HTTP as an admin, one request at a time, on two instances of the server
//! over the same database: one that keeps nothing (`REPORT_CACHE_ENTRIES=0`:
//! every request computed, p50/p99), and one with the report cache as
//! configured by default (its first request computes, the repeats are
//! answered from memory: p50 of the repeats).
//!
//! The reports are timed over all the data and then again over a period,
//! the last `--period-days` days (`from` only, as the SPA's "since" picker
//! sends it), which covers about half of it: the loaded patients were
//! created over the last year. `--period-days 0` leaves the period rows out.
//!
//!     bench_reports [--sizes 10000,100000] [--requests 5] [--treatments 3] [--period-days 182]

use std::process::ExitCode;

use healthcrm::{
    bench::{self, cli, data, ms},
    domain::{patient::Patient, treatment::Treatment},
    workflow::reports::REPORTS,
};
use mongodb::bson::doc;
use rand::{rngs::StdRng, SeedableRng};

struct Args {
    sizes: Vec<usize>,
    requests: usize,
    treatments: usize,
    period_days: u32,
}

const NAME: &str = "bench_reports";
const USAGE: &str =
    "bench_reports [--sizes 10000,100000] [--requests 5] [--treatments 3] [--period-days 182]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        sizes: vec![10_000, 100_000],
        requests: 5,
        treatments: 3,
        period_days: 182,
    };
    for (flag, value) in cli::pairs()? {
        match flag.as_str() {
            "--sizes" => {
                args.sizes = cli::numbers(&flag, &value)?;
                args.sizes.sort_unstable();
            }
            "--requests" => args.requests = cli::number(&flag, &value)?,
            "--treatments" => args.treatments = cli::number(&flag, &value)?,
            "--period-days" => args.period_days = cli::number(&flag, &value)?,
            _ => return Err(cli::unknown(&flag)),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::main(NAME, USAGE, parse_args(), run).await
}

async fn run(args: Args) -> Result<(), String> {
    let srv = bench::start(&[("REQUEST_TIMEOUT_SECS", "300")]).await?;
    let mut computing = srv.config.clone();
    computing.report_cache_entries = 0;
    let uncached = bench::serve(srv.db.clone(), computing).await?;
    let token = srv.admin_token().await?;
    let admin = srv.admin_id().await?;
    let mut rng = StdRng::seed_from_u64(7);
    let hospitals = data::hospitals(&srv.db, admin, 50).await?;
    let shape = data::Shape {
        appointments: 0,
        treatments: args.treatments,
    };
    let mut paths: Vec<String> = vec![
        "/api/v1/dashboard".into(),
        "/api/v1/earnings/summary?period=monthly".into(),
    ];
    paths.extend(REPORTS.iter().map(|r| format!("/api/v1/reports/{r}")));
    paths.push("/api/v1/reports/earnings?granularity=week".into());
    paths.push("/api/v1/reports/funnel?format=csv".into());
    if args.period_days > 0 {
        let from = (chrono::Utc::now() - chrono::Duration::days(i64::from(args.period_days)))
            .format("%Y-%m-%d");
        paths.extend(
            REPORTS
                .iter()
                .map(|r| format!("/api/v1/reports/{r}?from={from}")),
        );
    }

    println!("| patients | treatments | request                                              | ok | errors | p50 ms   | p99 ms   | kept: first ms | kept: repeat p50 ms |");
    println!("|---------:|-----------:|------------------------------------------------------|---:|-------:|---------:|---------:|---------------:|--------------------:|");
    let mut loaded = 0;
    let mut failed = 0;
    for &size in &args.sizes {
        let started = std::time::Instant::now();
        let more = size.saturating_sub(loaded);
        data::load(&srv.db, &mut rng, loaded, more, shape, admin, &hospitals).await?;
        loaded += more;
        let patients = healthcrm::db::count(&srv.db.collection::<Patient>("patients"), doc! {})
            .await
            .map_err(|e| e.to_string())?;
        let treatments =
            healthcrm::db::count(&srv.db.collection::<Treatment>("treatments"), doc! {})
                .await
                .map_err(|e| e.to_string())?;
        eprintln!(
            "loaded {patients} patients, {treatments} treatments in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        for path in &paths {
            let run = |server: &bench::BenchServer, requests: usize| {
                let (http, url, tok) = (
                    server.http.clone(),
                    format!("{}{path}", server.base),
                    token.clone(),
                );
                bench::measure(1, requests, move |_| http.get(&url).bearer_auth(&tok))
            };
            let s = run(&uncached, args.requests).await;
            let first = run(&srv, 1).await;
            let repeat = run(&srv, args.requests).await;
            failed += s.errors + first.errors + repeat.errors;
            println!(
                "| {patients:>8} | {treatments:>10} | {path:<52} | {:>2} | {:>6} | {:>8.1} | {:>8.1} | {:>14.1} | {:>19.2} |",
                s.latencies.len(),
                s.errors,
                ms(s.percentile(0.5)),
                ms(s.percentile(0.99)),
                ms(first.percentile(0.5)),
                ms(repeat.percentile(0.5)),
            );
        }
    }
    // It shares the database, which `srv.finish` drops.
    drop(uncached);
    srv.finish().await;
    if failed > 0 {
        return Err(format!("{failed} requests failed"));
    }
    Ok(())
}
