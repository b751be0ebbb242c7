//! Scale benchmark (`scripts/bench.sh scale`).
//!
//! Loads patients straight into the database in batches (10,000, then up to
//! 100,000 by default), and after each size measures over loopback HTTP, as
//! an admin: a filtered, paginated `GET /api/v1/patients`, the searches,
//! `GET /api/v1/patients/{id}` of random patients, and the daily screens'
//! lists across patients over a period: the last week's appointments and
//! the last month's treatments (each patient has two of each, dated over
//! the year since it was registered). Prints p50/p99 per size.
//!
//!     bench_scale [--sizes 10000,100000] [--requests 500] [--concurrency 4]

use std::{process::ExitCode, sync::Arc};

use healthcrm::{
    bench::{self, cli, data, ms, Sample},
    domain::{patient::Patient, PatientId},
};
use mongodb::bson::doc;
use rand::{rngs::StdRng, SeedableRng};

struct Args {
    sizes: Vec<usize>,
    requests: usize,
    concurrency: usize,
}

const NAME: &str = "bench_scale";
const USAGE: &str = "bench_scale [--sizes 10000,100000] [--requests 500] [--concurrency 4]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        sizes: vec![10_000, 100_000],
        requests: 500,
        concurrency: 4,
    };
    for (flag, value) in cli::pairs()? {
        match flag.as_str() {
            "--sizes" => {
                args.sizes = cli::numbers(&flag, &value)?;
                args.sizes.sort_unstable();
            }
            "--requests" => args.requests = cli::number(&flag, &value)?,
            "--concurrency" => args.concurrency = cli::number(&flag, &value)?,
            _ => return Err(cli::unknown(&flag)),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::main(NAME, USAGE, parse_args(), run).await
}

fn row(size: usize, label: &str, s: &Sample) {
    println!(
        "| {size:>7} | {label:<48} | {:>5} | {:>6} | {:>7.1} | {:>7.2} | {:>7.2} |",
        s.latencies.len(),
        s.errors,
        s.per_second(),
        ms(s.percentile(0.5)),
        ms(s.percentile(0.99))
    );
}

async fn run(args: Args) -> Result<(), String> {
    let srv = bench::start(&[]).await?;
    let token = srv.admin_token().await?;
    let admin = srv.admin_id().await?;
    let mut rng = StdRng::seed_from_u64(42);
    let hospitals = data::hospitals(&srv.db, admin, 50).await?;

    let patients = srv.db.collection::<Patient>("patients");
    let mut ids: Vec<PatientId> = Vec::new();
    println!("| patients | request                                          | ok    | errors | req/s   | p50 ms  | p99 ms  |");
    println!("|---------:|--------------------------------------------------|------:|-------:|--------:|--------:|--------:|");
    for &size in &args.sizes {
        let load_started = std::time::Instant::now();
        let shape = data::Shape {
            appointments: 2,
            treatments: 2,
        };
        let more = size.saturating_sub(ids.len());
        ids.extend(data::load(&srv.db, &mut rng, ids.len(), more, shape, admin, &hospitals).await?);
        let count = healthcrm::db::count(&patients, doc! {})
            .await
            .map_err(|e| e.to_string())?;
        eprintln!(
            "loaded {count} patients in {:.1} s",
            load_started.elapsed().as_secs_f64()
        );

        let ids = Arc::new(ids.clone());
        let (http, base, tok) = (srv.http.clone(), srv.base.clone(), token.clone());
        let list = bench::measure(args.concurrency, args.requests, move |i| {
            let page = 1 + i % 5;
            http.get(format!(
                "{base}/api/v1/patients?country=DE&treatment_status=ready&per_page=20&page={page}"
            ))
            .bearer_auth(&tok)
        })
        .await;
        row(
            size,
            "GET /patients?country=DE&treatment_status=ready",
            &list,
        );

        let (http, base, tok) = (srv.http.clone(), srv.base.clone(), token.clone());
        let by_name = bench::measure(args.concurrency, args.requests, move |_| {
            http.get(format!(
                "{base}/api/v1/patients?q=smith&sort=name&per_page=20"
            ))
            .bearer_auth(&tok)
        })
        .await;
        row(size, "GET /patients?q=smith&sort=name", &by_name);

        let (http, base, tok) = (srv.http.clone(), srv.base.clone(), token.clone());
        let by_phone = bench::measure(args.concurrency, args.requests, move |i| {
            // Typed as staff type it; found by its E.164 digits.
            let phone = healthcrm::bench::data::bench_phone((i * 7919) % size);
            http.get(format!("{base}/api/v1/patients"))
                .query(&[("q", phone.as_str()), ("per_page", "20")])
                .bearer_auth(&tok)
        })
        .await;
        row(size, "GET /patients?q=<phone>", &by_phone);

        let (http, base, tok) = (srv.http.clone(), srv.base.clone(), token.clone());
        let by_passport = bench::measure(args.concurrency, args.requests, move |i| {
            let passport = healthcrm::bench::data::bench_passport((i * 7919) % size);
            http.get(format!("{base}/api/v1/patients"))
                .query(&[("q", passport.as_str()), ("per_page", "20")])
                .bearer_auth(&tok)
        })
        .await;
        row(size, "GET /patients?q=<passport>", &by_passport);

        let (http, base, tok) = (srv.http.clone(), srv.base.clone(), token.clone());
        let get = bench::measure(args.concurrency, args.requests, move |i| {
            let id = ids[(i * 7919) % ids.len()];
            http.get(format!("{base}/api/v1/patients/{id}"))
                .bearer_auth(&tok)
        })
        .await;
        row(size, "GET /patients/{id}", &get);

        let day = |days_ago: i64| {
            (chrono::Utc::now() - chrono::Duration::days(days_ago))
                .format("%Y-%m-%d")
                .to_string()
        };
        let (http, base, tok) = (srv.http.clone(), srv.base.clone(), token.clone());
        let (from, to) = (day(7), day(0));
        let calendar = bench::measure(args.concurrency, args.requests, move |i| {
            let page = (1 + i % 5).to_string();
            http.get(format!("{base}/api/v1/appointments"))
                .query(&[("from", from.as_str()), ("to", to.as_str())])
                .query(&[("per_page", "20"), ("page", page.as_str())])
                .bearer_auth(&tok)
        })
        .await;
        row(
            size,
            "GET /appointments?from=<7 days ago>&to=<today>",
            &calendar,
        );

        let (http, base, tok) = (srv.http.clone(), srv.base.clone(), token.clone());
        let from = day(30);
        let treatments = bench::measure(args.concurrency, args.requests, move |i| {
            let page = (1 + i % 5).to_string();
            http.get(format!("{base}/api/v1/treatments"))
                .query(&[("from", from.as_str())])
                .query(&[("per_page", "20"), ("page", page.as_str())])
                .bearer_auth(&tok)
        })
        .await;
        row(size, "GET /treatments?from=<30 days ago>", &treatments);

        let failed = [
            &list,
            &by_name,
            &by_phone,
            &by_passport,
            &get,
            &calendar,
            &treatments,
        ]
        .iter()
        .map(|s| s.errors)
        .sum::<u64>();
        if failed > 0 {
            srv.finish().await;
            return Err("some requests failed".into());
        }
    }
    srv.finish().await;
    Ok(())
}
