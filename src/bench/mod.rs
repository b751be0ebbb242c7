//! Shared by the benchmark binaries (feature `bench`): the real app served
//! over loopback on a throwaway database, a synthetic data set, and
//! latency measurement.

pub mod cli;
pub mod data;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use mongodb::Database;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::{build_app, config::Config, db, migrate, seed, AppState};

pub const ADMIN_EMAIL: &str = "bench.admin@example.com";
pub const ADMIN_PASSWORD: &str = "benchmark admin passphrase";

pub struct BenchServer {
    pub base: String,
    pub db: Database,
    pub http: reqwest::Client,
    pub config: Config,
    /// The server process, when it runs as one.
    pub process: Option<std::process::Child>,
}

/// A fresh database, migrated and seeded (with an admin), and the
/// configuration to serve it with.
pub struct Prepared {
    pub config: Config,
    pub db: Database,
    /// The configuration as environment variables, for a server process.
    pub env: Vec<(String, String)>,
}

/// 32 random bytes as 64 hex characters.
fn random_hex_key() -> String {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The database the benchmarks use: `MONGODB_URI`, or a local default.
pub fn mongodb_uri() -> String {
    std::env::var("MONGODB_URI").unwrap_or_else(|_| "mongodb://127.0.0.1:27017".into())
}

/// Creates, migrates and seeds a throwaway database on `MONGODB_URI`.
/// `env` overrides configuration.
pub async fn prepare(env: &[(&str, &str)]) -> Result<Prepared, String> {
    let uri = mongodb_uri();
    let db_name = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let secret = format!("bench-{}-{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let mut vars: Vec<(String, String)> = vec![
        ("JWT_SECRET".into(), secret),
        ("MONGODB_URI".into(), uri),
        ("MONGODB_DB".into(), db_name.clone()),
        ("AUTH_RATE_LIMIT_PER_MINUTE".into(), "100000000".into()),
        ("DOCUMENT_KEY".into(), random_hex_key()),
        (
            "DOCUMENT_STORE".into(),
            std::env::temp_dir()
                .join("healthcrm-bench-documents")
                .join(&db_name)
                .display()
                .to_string(),
        ),
    ];
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let config = Config::from_lookup(|k| {
        vars.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
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
        crate::http::protected_routes(),
    )
    .map_err(|e| e.to_string())?;
    let opts = seed::Options {
        dry_run: false,
        reset: false,
        admin_email: Some(ADMIN_EMAIL.into()),
        admin_password: Some(SecretString::from(ADMIN_PASSWORD)),
        admin_name: "Bench Admin".into(),
    };
    seed::run(&database, &rules, &opts)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Prepared {
        config,
        db: database,
        env: vars,
    })
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .map_err(|e| e.to_string())
}

/// Prepares a database and serves the app in this process on 127.0.0.1.
pub async fn start(env: &[(&str, &str)]) -> Result<BenchServer, String> {
    let p = prepare(env).await?;
    serve(p.db, p.config).await
}

/// Serves the app on `db` with `config` in this process on 127.0.0.1: a
/// second instance beside one [`start`] gave, when given its database.
pub async fn serve(db: Database, config: Config) -> Result<BenchServer, String> {
    let app = build_app(AppState::new(db.clone(), config.clone()));
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
    Ok(BenchServer {
        base: format!("http://{addr}"),
        db,
        http: client()?,
        config,
        process: None,
    })
}

/// The `/metrics` token of the servers the load benchmark runs.
pub const METRICS_TOKEN: &str = "bench-metrics-token-0123456789";

/// Prepares a database and runs the release server binary `binary` on it
/// as a separate process (so its memory can be measured on its own), then
/// waits until `/ready` answers.
pub async fn spawn(env: &[(&str, &str)], binary: &std::path::Path) -> Result<BenchServer, String> {
    let p = prepare(env).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut cmd = std::process::Command::new(binary);
    cmd.envs(p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdin(std::process::Stdio::null());
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let srv = BenchServer {
        base: format!("http://127.0.0.1:{port}"),
        db: p.db,
        http: client()?,
        config: p.config,
        process: Some(child),
    };
    for _ in 0..300 {
        if let Ok(r) = srv.http.get(format!("{}/ready", srv.base)).send().await {
            if r.status().is_success() {
                return Ok(srv);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    srv.finish().await;
    Err("the server did not become ready in 30 s".into())
}

impl BenchServer {
    pub async fn login(&self, email: &str, password: &str) -> Result<String, String> {
        let res = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
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

    /// The seeded admin's id.
    pub async fn admin_id(&self) -> Result<crate::domain::UserId, String> {
        Ok(crate::repo::Repos::new(&self.db)
            .users
            .credentials_by_email(ADMIN_EMAIL)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("admin missing")?
            .0
            .id)
    }

    pub async fn admin_token(&self) -> Result<String, String> {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Peak resident memory of the server process so far (Linux
    /// `VmHWM`), in bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        let pid = self.process.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// The server process's id, for [`process_cpu`] and
    /// [`process_switches`].
    pub fn pid(&self) -> Option<String> {
        Some(self.process.as_ref()?.id().to_string())
    }

    /// Database operations the server has sent so far: its connection
    /// checkouts as `/metrics` reports them, one per command sent (the
    /// server must run with `METRICS_TOKEN` = [`METRICS_TOKEN`]).
    pub async fn db_commands(&self) -> Result<f64, String> {
        self.metric("healthcrm_db_pool_checkout_seconds_count{outcome=\"ok\"}")
            .await
    }

    /// The server's runtime worker threads, as `/metrics` reports them.
    pub async fn runtime_workers(&self) -> Result<f64, String> {
        self.metric("healthcrm_runtime_workers").await
    }

    /// The sum of the `/metrics` samples whose name and labels are `series`.
    async fn metric(&self, series: &str) -> Result<f64, String> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .error_for_status()
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        Ok(text
            .lines()
            .filter_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
            .sum())
    }

    /// Stops the server process, if any, and drops the benchmark's database
    /// and its document store.
    pub async fn finish(mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let crate::config::DocumentStore::Local(dir) = &self.config.documents.store {
            let _ = std::fs::remove_dir_all(dir);
        }
        // BENCH_KEEP_DB=1 leaves the data set for a closer look.
        if std::env::var("BENCH_KEEP_DB").as_deref() == Ok("1") {
            eprintln!("kept database {}", self.db.name());
            return;
        }
        let _ = self.db.drop().await;
    }
}

/// Latencies of successful requests (sorted) and the error count.
#[derive(Default)]
pub struct Sample {
    pub latencies: Vec<Duration>,
    pub errors: u64,
    pub elapsed: Duration,
}

impl Sample {
    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }

    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// CPU seconds a process has used, in user space and in the kernel on its
/// behalf (system calls; on loopback TCP a send also runs the receiving
/// side's network stack, which is counted to the sender).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub user: f64,
    pub system: f64,
}

impl CpuTimes {
    pub fn total(&self) -> f64 {
        self.user + self.system
    }
}

/// CPU time a process (`self`, or a pid) has used so far (Linux
/// `/proc/<pid>/stat`, in USER_HZ = 100 ticks a second).
pub fn process_cpu(pid: &str) -> Option<CpuTimes> {
    parse_stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/<pid>/stat` line.
fn parse_stat_cpu(stat: &str) -> Option<CpuTimes> {
    // The fields after the command name, which may hold spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| Some(fields.get(i)?.parse::<u64>().ok()? as f64 / 100.0);
    Some(CpuTimes {
        user: ticks(11)?,
        system: ticks(12)?,
    })
}

/// Context switches so far of each of a process's live threads, by thread
/// id: voluntary (the thread parked: waiting on a socket, a futex, a timer)
/// and not (preempted). A runtime worker that parks and is woken again
/// costs two.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Switches(std::collections::BTreeMap<u32, u64>);

impl Switches {
    /// Switches made since `earlier` by the threads alive at both readings.
    /// A thread that started or exited in between is left out (a blocking
    /// thread retiring would otherwise take its whole count away), so a
    /// pool of long-lived runtime workers is counted whole.
    pub fn since(&self, earlier: &Switches) -> u64 {
        self.0
            .iter()
            .filter_map(|(tid, now)| Some(now.saturating_sub(*earlier.0.get(tid)?)))
            .sum()
    }
}

/// [`Switches`] of a process (`self`, or a pid), from Linux
/// `/proc/<pid>/task/*/status`; a thread that exits while it is read is
/// skipped.
pub fn process_switches(pid: &str) -> Option<Switches> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    Some(Switches(
        tasks
            .filter_map(|task| {
                let task = task.ok()?;
                let tid = task.file_name().to_str()?.parse().ok()?;
                let status = std::fs::read_to_string(task.path().join("status")).ok()?;
                Some((tid, parse_switches(&status)?))
            })
            .collect(),
    ))
}

/// `voluntary_ctxt_switches` plus `nonvoluntary_ctxt_switches` of one
/// `/proc/<pid>/task/<tid>/status`.
fn parse_switches(status: &str) -> Option<u64> {
    let count = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
            .trim()
            .parse::<u64>()
            .ok()
    };
    Some(count("voluntary_ctxt_switches")? + count("nonvoluntary_ctxt_switches")?)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `op(i)` for i in 0..count from `concurrency` workers, timing each:
/// the direct-driver counterpart of [`measure`].
pub async fn measure_fn<F, Fut, E>(concurrency: usize, count: usize, op: F) -> Sample
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), E>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let t = Instant::now();
                match op(i).await {
                    Ok(()) => lat.push(t.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            latencies.extend(lat);
            errors += e;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Sample {
        latencies,
        errors,
        elapsed,
    }
}

/// Sends `count` requests from `concurrency` workers; `make(i)` builds the
/// i-th request. A request counts as an error unless it answers 2xx.
pub async fn measure<F>(concurrency: usize, count: usize, make: F) -> Sample
where
    F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    measure_fn(concurrency, count, move |i| {
        let request = make(i);
        async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.map(drop).map_err(drop),
                _ => Err(()),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_is_read_after_a_command_name_with_spaces() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime ...
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 3 0";
        let cpu = parse_stat_cpu(stat);
        assert_eq!(
            cpu,
            Some(CpuTimes {
                user: 12.34,
                system: 5.67
            })
        );
        assert_eq!(cpu.map(|c| c.total()), Some(12.34 + 5.67));
        assert_eq!(parse_stat_cpu("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_stat_cpu("no parenthesis"), None);
    }

    #[test]
    fn switches_add_both_kinds_and_refuse_a_status_without_them() {
        let status = "Name:\ttokio-rt-worker\nState:\tS (sleeping)\n\
                      voluntary_ctxt_switches:\t1200\nnonvoluntary_ctxt_switches:\t34\n";
        assert_eq!(parse_switches(status), Some(1234));
        assert_eq!(parse_switches("voluntary_ctxt_switches:\t5\n"), None);
        assert_eq!(
            parse_switches("voluntary_ctxt_switches:\tmany\nnonvoluntary_ctxt_switches:\t1\n"),
            None
        );
    }

    #[test]
    fn switches_count_only_threads_alive_at_both_readings() {
        let reading = |pairs: &[(u32, u64)]| Switches(pairs.iter().copied().collect());
        let before = reading(&[(1, 100), (2, 50), (3, 7)]);
        // 2 exited (its 50 must not be taken away), 4 started (its 9 are
        // not all from this window); 1 and 3 are counted.
        let after = reading(&[(1, 130), (3, 8), (4, 9)]);
        assert_eq!(after.since(&before), 31);
        assert_eq!(before.since(&before), 0);
    }

    #[test]
    fn a_sleeping_thread_is_seen_switching() {
        let before = process_switches("self").expect("this process's threads");
        // Sleeping parks this thread: at least one voluntary switch.
        std::thread::sleep(Duration::from_millis(2));
        let after = process_switches("self").expect("this process's threads");
        assert!(after.since(&before) >= 1, "{before:?} -> {after:?}");
    }
}
