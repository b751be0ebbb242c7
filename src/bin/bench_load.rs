//! Load benchmark (`scripts/bench.sh load`).
//!
//! Runs the release server as its own process on a throwaway database,
//! loads 1 admin, 20 staff, 50 hospitals and 10,000 patients with 3
//! appointments and 2 treatments each, then drives six routes at
//! concurrency 1, 16 and 64 over loopback HTTP, and `GET /health` (the HTTP
//! stack alone). For each route it also runs the same work directly,
//! without HTTP (the repository and workflow calls the handler and the
//! audit layer make, write routes in the same transaction, and for the
//! dashboard the same report cache) at the same concurrency, and prints the
//! server's throughput as a ratio of that. Prints requests/s, p50, p99 and
//! errors per route, the server's and the direct path's CPU per request
//! (and the kernel's part of it),
//! the server's database operations per request and its peak RSS, and
//! writes the table to `--out`.
//!
//!     bench_load [--patients 10000] [--requests 320] [--concurrency 1,16,64]
//!                [--server-workers N] [--read-cache yes|no]
//!                [--out target/bench/load.md]
//!
//! `--server-workers N` runs the server with N runtime worker threads
//! (`WORKER_THREADS`, set on the server's process only); without it the
//! server has its default, one per core. The benchmark's own runtime, which
//! runs the client and the direct path, takes tokio's default
//! (`TOKIO_WORKER_THREADS`, or one per core); both counts are printed and
//! written, since the direct path is a like floor only at the same count.
//!
//! `--read-cache yes` puts `bench_readcache` (a wire-protocol proxy in a
//! process of its own) between the benchmark and `MONGODB_URI`, and reads
//! every patient through it before each level's read row: the row's finds
//! of a patient by id are answered from memory, everything else goes to
//! the database. It separates what a read costs the server in work from what
//! waiting on a slow database costs it in parking and waking.

use std::{process::ExitCode, sync::Arc};

use healthcrm::{
    bench::{self, cli, data, Sample},
    domain::{
        appointment::AppointmentStatus,
        patient::{Patient, PatientStatus, TreatmentStatus},
        PatientId, UserId,
    },
    error::AppError,
    repo::{
        audit::AuditEvent,
        patients::{PatientFilter, PatientSort},
        PageRequest,
    },
    workflow::{self, appointments::NewAppointment, idempotency::Idem},
    AppState,
};
use mongodb::bson::{oid::ObjectId, DateTime};
use rand::{rngs::StdRng, SeedableRng};
use serde_json::json;

const NAME: &str = "bench_load";

#[path = "bench_load/args.rs"]
mod args;
#[path = "bench_load/cost.rs"]
mod cost;
#[path = "bench_load/read_cache.rs"]
mod read_cache;
#[path = "bench_load/report.rs"]
mod report;
use args::{parse_args, Args, USAGE};
use cost::{cost, timed_direct, usage, Cost, PerRequest};
use read_cache::ReadCache;
use report::{row, write_report, Row, HEADER};

#[tokio::main]
async fn main() -> ExitCode {
    cli::main(NAME, USAGE, parse_args(), run).await
}

/// The audit event the server writes for each protected call.
fn audit(actor: UserId, route: &str, patient: Option<PatientId>) -> AuditEvent {
    AuditEvent {
        id: ObjectId::new(),
        at: DateTime::now(),
        actor_id: Some(actor),
        role: Some("staff".into()),
        action: "bench".into(),
        method: "GET".into(),
        route: route.into(),
        status: 200,
        target_ids: patient.iter().map(|p| p.to_string()).collect(),
        patient_ids: patient.iter().map(|p| p.to_string()).collect(),
        request_id: ObjectId::new().to_hex(),
        ip: Some("127.0.0.1".into()),
        details: None,
    }
}

fn new_patient(n: usize, by: UserId) -> Patient {
    let now = DateTime::now();
    let name = format!("Load Patient {n}");
    let mut p = Patient {
        id: PatientId::new(),
        name_lower: name.to_lowercase(),
        name,
        age: Some(40),
        date_of_birth: None,
        country: "DE".into(),
        contact: None,
        source: None,
        medical_history: vec!["Cataract".into()],
        medical_history_lower: vec!["cataract".into()],
        status: PatientStatus::New,
        treatment_status: TreatmentStatus::Inquiry,
        denial_reason: None,
        assigned_to: None,
        hospital_id: None,
        hospital_history: Vec::new(),
        next_follow_up: None,
        reached: Vec::new(),
        completed_at: None,
        version: 1,
        deleted_at: None,
        deleted_by: None,
        passport_search: None,
        created_at: now,
        created_by: by,
        updated_at: now,
        updated_by: by,
    };
    p.note_reached(TreatmentStatus::Inquiry, now);
    p
}

/// Records the audit event the server writes for each protected call, as
/// its audit step does: handed to the batched writer, one insert per batch.
async fn audited(
    st: &AppState,
    actor: UserId,
    route: &str,
    patient: Option<PatientId>,
) -> Result<(), AppError> {
    st.audit.submit(audit(actor, route, patient)).await;
    Ok(())
}

/// What every route's measurement shares: the server, the loaded data and
/// the sessions.
struct Bench {
    srv: bench::BenchServer,
    /// The direct path's state, on the same database.
    state: AppState,
    admin: UserId,
    admin_token: String,
    staff: Arc<Vec<(UserId, String)>>,
    tokens: Arc<Vec<String>>,
    ids: Arc<Vec<PatientId>>,
    requests: usize,
    /// The server's runtime worker threads, as it reports them.
    workers: f64,
    /// `bench_readcache`, between the benchmark and the database.
    read_cache: Option<ReadCache>,
}

impl Bench {
    /// The HTTP client and the server's base URL, for a route's requests.
    fn http(&self) -> (reqwest::Client, String) {
        (self.srv.http.clone(), self.srv.base.clone())
    }

    /// Sends `count` requests from `concurrency` clients, with what the
    /// server spent on them.
    async fn server<F>(&self, concurrency: usize, count: usize, make: F) -> (Sample, Cost)
    where
        F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
    {
        let before = usage(&self.srv).await;
        let sample = bench::measure(concurrency, count, make).await;
        let sent = sample.latencies.len() + sample.errors as usize;
        let cost = cost(before, usage(&self.srv).await, sent);
        (sample, cost)
    }
}

async fn run(args: Args) -> Result<(), String> {
    let b = load(&args).await?;
    let measured = measure(&args, &b).await;
    // The direct paths' last audit batch, before the database goes; and the
    // server stopped however the rows ended.
    b.state.background.close();
    b.state.background.wait().await;
    b.srv.finish().await;
    let errors: u64 = measured?.iter().map(Row::errors).sum();
    if errors > 0 {
        return Err(format!("{errors} requests failed"));
    }
    Ok(())
}

/// Every row at every level, printed as they land and written to `--out`.
async fn measure(args: &Args, b: &Bench) -> Result<Vec<Row>, String> {
    let mut rows: Vec<Row> = Vec::new();
    let mut rss = Vec::new();
    println!("{HEADER}");
    for &c in &args.concurrency {
        // The write rows of the level before emptied it.
        if b.read_cache.is_some() {
            read_cache::warm(&b.state, &b.ids).await?;
        }
        rows.push(read_by_id(b, c).await);
        rows.push(health(b, c).await);
        rows.push(list_page(b, c).await);
        rows.push(create_patient(b, c).await);
        rows.push(log_appointment(b, c).await);
        rows.push(dashboard(b, c).await);
        rows.push(login(b, c).await);
        let peak = b.srv.peak_rss().unwrap_or(0);
        rss.push((c, peak));
        println!(
            "| server peak RSS after concurrency {c}: {:.1} MiB |",
            peak as f64 / 1_048_576.0
        );
    }
    write_report(args, b.ids.len(), b.workers, &rows, &rss)?;
    Ok(rows)
}

/// Starts the server, loads the data set and signs the staff in.
async fn load(args: &Args) -> Result<Bench, String> {
    let binary = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("healthcrm");
    // /metrics on: the server's connection checkouts count its database
    // operations per request.
    let workers = args.server_workers.map(|n| n.to_string());
    let mut env = vec![("METRICS_TOKEN", bench::METRICS_TOKEN)];
    if let Some(n) = &workers {
        env.push(("WORKER_THREADS", n));
    }
    let read_cache = if args.read_cache {
        Some(ReadCache::start(&bench::mongodb_uri())?)
    } else {
        None
    };
    if let Some(cache) = &read_cache {
        eprintln!("database through {} (bench_readcache)", cache.uri);
        env.push(("MONGODB_URI", &cache.uri));
    }
    let srv = bench::spawn(&env, &binary).await?;
    // As the server reports them: the default may come from the
    // environment or a `.env` file.
    let running = srv.runtime_workers().await?;
    eprintln!(
        "server runtime workers: {running} ({}); this process's: {}",
        workers.map_or_else(|| "its default".into(), |n| format!("WORKER_THREADS={n}")),
        own_workers()
    );
    let admin = srv.admin_id().await?;
    let admin_token = srv.admin_token().await?;
    let started = std::time::Instant::now();
    let staff = data::staff(&srv.db, admin, 20).await?;
    let hospitals = data::hospitals(&srv.db, admin, 50).await?;
    let mut rng = StdRng::seed_from_u64(5);
    let shape = data::Shape {
        appointments: 3,
        treatments: 2,
    };
    let ids = data::load(
        &srv.db,
        &mut rng,
        0,
        args.patients,
        shape,
        admin,
        &hospitals,
    )
    .await?;
    eprintln!(
        "loaded 20 staff, 50 hospitals, {} patients (3 appointments, 2 treatments each) in {:.1} s",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    let mut tokens = Vec::new();
    for (_, email) in &staff {
        tokens.push(srv.login(email, data::STAFF_PASSWORD).await?);
    }
    let state = AppState::new(srv.db.clone(), srv.config.clone());
    Ok(Bench {
        srv,
        state,
        admin,
        admin_token,
        staff: Arc::new(staff),
        tokens: Arc::new(tokens),
        ids: Arc::new(ids),
        requests: args.requests,
        workers: running,
        read_cache,
    })
}

/// GET /patients/{id}, and directly the read and its audit event.
async fn read_by_id(b: &Bench, c: usize) -> Row {
    let ((http, base), t, ids) = (b.http(), b.tokens.clone(), b.ids.clone());
    let server = b
        .server(c, b.requests, move |i| {
            http.get(format!(
                "{base}/api/v1/patients/{}",
                ids[(i * 7919) % ids.len()]
            ))
            .bearer_auth(&t[i % t.len()])
        })
        .await;
    let (st, ids, who) = (b.state.clone(), b.ids.clone(), b.staff.clone());
    let direct = timed_direct(bench::measure_fn(c, b.requests, move |i| {
        let (st, id, actor) = (
            st.clone(),
            ids[(i * 7919) % ids.len()],
            who[i % who.len()].0,
        );
        async move {
            st.repos
                .patients
                .find(id)
                .await?
                .ok_or_else(|| AppError::not_found("patient"))?;
            audited(&st, actor, "/api/v1/patients/{id}", Some(id)).await
        }
    }))
    .await;
    row("GET /patients/{id}", c, server, direct)
}

/// GET /health: the HTTP stack alone (no token, no database), the floor
/// under every route's CPU. It has no direct path.
async fn health(b: &Bench, c: usize) -> Row {
    let (http, base) = b.http();
    let server = b
        .server(c, b.requests, move |_| http.get(format!("{base}/health")))
        .await;
    row(
        "GET /health (no database)",
        c,
        server,
        (Sample::default(), PerRequest::default()),
    )
}

/// A filtered, paginated GET /patients, and directly the same list call.
async fn list_page(b: &Bench, c: usize) -> Row {
    let list_n = (b.requests / 4).max(c);
    let ((http, base), t) = (b.http(), b.tokens.clone());
    let server = b
        .server(c, list_n, move |i| {
            http.get(format!(
                "{base}/api/v1/patients?country=DE&treatment_status=ready&per_page=20&page={}",
                1 + i % 5
            ))
            .bearer_auth(&t[i % t.len()])
        })
        .await;
    let (st, who) = (b.state.clone(), b.staff.clone());
    let direct = timed_direct(bench::measure_fn(c, list_n, move |i| {
        let (st, actor) = (st.clone(), who[i % who.len()].0);
        async move {
            let f = PatientFilter {
                deleted: false,
                country: Some("DE".into()),
                treatment_status: Some(TreatmentStatus::Ready),
                ..Default::default()
            };
            let page = PageRequest {
                page: 1 + (i % 5) as u64,
                per_page: 20,
            };
            st.repos
                .patients
                .list(&f, PatientSort::default(), page)
                .await?;
            audited(&st, actor, "/api/v1/patients", None).await
        }
    }))
    .await;
    row("GET /patients?country&treatment_status", c, server, direct)
}

/// POST /patients, and directly the same insert in its transaction.
async fn create_patient(b: &Bench, c: usize) -> Row {
    let ((http, base), t) = (b.http(), b.tokens.clone());
    let server = b
        .server(c, b.requests, move |i| {
            http.post(format!("{base}/api/v1/patients"))
                .bearer_auth(&t[i % t.len()])
                .json(&json!({"name": format!("New Patient {i}"), "country": "DE",
                              "medical_history": ["Cataract"], "age": 40}))
        })
        .await;
    let (st, who) = (b.state.clone(), b.staff.clone());
    let direct = timed_direct(bench::measure_fn(c, b.requests, move |i| {
        let (st, actor) = (st.clone(), who[i % who.len()].0);
        async move {
            let p = new_patient(i, actor);
            let ctx = &st.workflows;
            healthcrm::transaction!(ctx, |tx| {
                workflow::patients::insert(ctx, &mut tx, &p, actor).await
            })?;
            audited(&st, actor, "/api/v1/patients", Some(p.id)).await
        }
    }))
    .await;
    row("POST /patients", c, server, direct)
}

/// POST /patients/{id}/appointments, and directly the same workflow.
async fn log_appointment(b: &Bench, c: usize) -> Row {
    let ((http, base), t, ids) = (b.http(), b.tokens.clone(), b.ids.clone());
    let server = b
        .server(c, b.requests, move |i| {
            http.post(format!(
                "{base}/api/v1/patients/{}/appointments",
                ids[(i * 104_729) % ids.len()]
            ))
            .bearer_auth(&t[i % t.len()])
            .json(&json!({"discussion_notes": "Called about travel dates.", "status": "completed"}))
        })
        .await;
    let (st, ids, who) = (b.state.clone(), b.ids.clone(), b.staff.clone());
    let direct = timed_direct(bench::measure_fn(c, b.requests, move |i| {
        let (st, id, actor) = (
            st.clone(),
            ids[(i * 104_729) % ids.len()],
            who[i % who.len()].0,
        );
        async move {
            let input = NewAppointment {
                hospital_id: None,
                appointment_date: None,
                discussion_notes: "Called about travel dates.".into(),
                next_follow_up: None,
                status: AppointmentStatus::Completed,
            };
            workflow::appointments::log(&st.workflows, actor, id, input, Idem::none()).await?;
            audited(&st, actor, "/api/v1/patients/{id}/appointments", Some(id)).await
        }
    }))
    .await;
    row("POST /patients/{id}/appointments", c, server, direct)
}

/// GET /dashboard as the admin, and directly through the same cache.
async fn dashboard(b: &Bench, c: usize) -> Row {
    let dash_n = (b.requests / 8).max(c);
    let ((http, base), tok) = (b.http(), b.admin_token.clone());
    let server = b
        .server(c, dash_n, move |_| {
            http.get(format!("{base}/api/v1/dashboard"))
                .bearer_auth(&tok)
        })
        .await;
    let (st, admin) = (b.state.clone(), b.admin);
    let direct = timed_direct(bench::measure_fn(c, dash_n, move |_| {
        let st = st.clone();
        async move {
            workflow::reports::dashboard(&st.workflows, None, chrono_tz::Tz::UTC).await?;
            audited(&st, admin, "/api/v1/dashboard", None).await
        }
    }))
    .await;
    row("GET /dashboard", c, server, direct)
}

/// POST /auth/login, and directly the credentials lookup (no hash: the
/// server's figure is argon2id's by design).
async fn login(b: &Bench, c: usize) -> Row {
    let login_n = (b.requests / 4).max(c);
    let ((http, base), who) = (b.http(), b.staff.clone());
    let server = b
        .server(c, login_n, move |i| {
            http.post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"email": who[i % who.len()].1, "password": data::STAFF_PASSWORD}))
        })
        .await;
    let (st, who) = (b.state.clone(), b.staff.clone());
    let direct = timed_direct(bench::measure_fn(c, login_n, move |i| {
        let (st, email, actor) = (
            st.clone(),
            who[i % who.len()].1.clone(),
            who[i % who.len()].0,
        );
        async move {
            st.repos.users.credentials_by_email(&email).await?;
            audited(&st, actor, "/api/v1/auth/login", None).await
        }
    }))
    .await;
    row("POST /auth/login", c, server, direct)
}

/// The worker threads of this process's runtime: the direct path's.
fn own_workers() -> usize {
    tokio::runtime::Handle::current().metrics().num_workers()
}
