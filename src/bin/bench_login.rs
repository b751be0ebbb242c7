//! Login benchmark (`scripts/bench-login.sh`).
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
    net::SocketAddr,
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use healthcrm::{build_app, config::Config, db, migrate, seed, AppState};
use secrecy::SecretString;
use serde_json::{json, Value};

const ADMIN_EMAIL: &str = "bench.admin@example.com";
const ADMIN_PASSWORD: &str = "benchmark admin passphrase";

struct Args {
    seconds: u64,
    flood: usize,
    probes: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 10,
        flood: 32,
        probes: 2000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a positive number"))
        };
        match a.as_str() {
            "--seconds" => args.seconds = num("--seconds")?.max(1),
            "--flood" => args.flood = usize::try_from(num("--flood")?).unwrap_or(32).max(1),
            "--probes" => args.probes = usize::try_from(num("--probes")?).unwrap_or(2000).max(10),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(args)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn login(http: &reqwest::Client, base: &str) -> Result<String, String> {
    let res = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("login answered {}", res.status()));
    }
    let body: Value = res.json().await.map_err(|e| e.to_string())?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no access_token".into())
}

/// Runs `workers` login loops until `stop`; returns successes and errors.
fn spawn_logins(
    http: &reqwest::Client,
    base: &str,
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
            let (http, base, stop) = (http.clone(), base.to_owned(), stop.clone());
            let (ok, failed) = (ok.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match login(&http, &base).await {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    (ok, failed, handles)
}

/// `count` GETs of /auth/me from 4 concurrent clients; sorted latencies and errors.
async fn probe(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    count: usize,
) -> (Vec<Duration>, u64) {
    let per_worker = count.div_ceil(4);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (http, url, token) = (
            http.clone(),
            format!("{base}/api/v1/auth/me"),
            token.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_worker);
            let mut errors = 0u64;
            for _ in 0..per_worker {
                let started = Instant::now();
                match http.get(&url).bearer_auth(&token).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(started.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    all.sort();
    (all, errors)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "bench_login: {e}\nusage: bench_login [--seconds S] [--flood N] [--probes N]"
            );
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_login: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let uri = std::env::var("MONGODB_URI").unwrap_or_else(|_| "mongodb://127.0.0.1:27017".into());
    let db_name = format!("bench_login_{}", uuid::Uuid::new_v4().simple());
    let secret = format!("bench-{}-{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let env = [
        ("JWT_SECRET", secret.as_str()),
        ("MONGODB_URI", uri.as_str()),
        ("MONGODB_DB", db_name.as_str()),
        ("AUTH_RATE_LIMIT_PER_MINUTE", "100000000"),
        ("LOG_FORMAT", "text"),
    ];
    let config = Config::from_lookup(|k| {
        env.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| std::env::var(k).ok())
    })
    .map_err(|e| e.to_string())?;
    let client = db::client(&config).await.map_err(|e| e.to_string())?;
    let database = client.database(&db_name);
    migrate::run(&database).await.map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(seed::DEFAULT_SEED_FILE).map_err(|e| e.to_string())?;
    let rules = seed::parse(
        seed::DEFAULT_SEED_FILE,
        &text,
        healthcrm::http::protected_routes(),
    )
    .map_err(|e| e.to_string())?;
    seed::run(
        &database,
        &rules,
        &seed::Options {
            dry_run: false,
            reset: false,
            admin_email: Some(ADMIN_EMAIL.into()),
            admin_password: Some(SecretString::from(ADMIN_PASSWORD)),
            admin_name: "Bench Admin".into(),
        },
    )
    .await
    .map_err(|e| e.to_string())?;

    let hashers = config.password_hash_concurrency;
    let app = build_app(AppState::new(database.clone(), config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .map_err(|e| e.to_string())?;
    let token = login(&http, &base).await?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "login benchmark: {cores} cores, {hashers} concurrent hash(es), {} s per phase",
        args.seconds
    );

    // 1. Login throughput.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let (ok, failed, handles) = spawn_logins(&http, &base, 8, stop.clone());
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

    // 2. The cheap authenticated route alone.
    let (quiet, quiet_errors) = probe(&http, &base, &token, args.probes).await;

    // 3. The same under a login flood.
    let stop = Arc::new(AtomicBool::new(false));
    let (flood_ok, flood_failed, handles) = spawn_logins(&http, &base, args.flood, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let flood_started = Instant::now();
    let (busy, busy_errors) = probe(&http, &base, &token, args.probes).await;
    let flood_secs = flood_started.elapsed().as_secs_f64() + 0.5;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.await;
    }

    println!();
    println!("| GET /api/v1/auth/me              | requests | errors | p50 ms | p99 ms |");
    println!("|----------------------------------|---------:|-------:|-------:|-------:|");
    println!(
        "| no flood                         | {:>8} | {:>6} | {:>6.2} | {:>6.2} |",
        quiet.len(),
        quiet_errors,
        ms(percentile(&quiet, 0.5)),
        ms(percentile(&quiet, 0.99))
    );
    println!(
        "| during a {:>3}-client login flood  | {:>8} | {:>6} | {:>6.2} | {:>6.2} |",
        args.flood,
        busy.len(),
        busy_errors,
        ms(percentile(&busy, 0.5)),
        ms(percentile(&busy, 0.99))
    );
    println!(
        "flood: {} logins ok, {} refused/failed, {:.1} logins/s",
        flood_ok.load(Ordering::Relaxed),
        flood_failed.load(Ordering::Relaxed),
        flood_ok.load(Ordering::Relaxed) as f64 / flood_secs
    );
    let _ = database.drop().await;
    if quiet_errors + busy_errors > 0 {
        return Err(format!(
            "{} probe request(s) failed",
            quiet_errors + busy_errors
        ));
    }
    Ok(())
}
