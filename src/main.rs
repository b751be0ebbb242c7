//! The server binary: config -> runtime (`WORKER_THREADS`) -> telemetry ->
//! database -> migrations ->
//! transaction probe -> consistency check -> serve
//! (until SIGINT/SIGTERM, then drain; see `server::serve`).
//! `healthcrm healthcheck` instead asks a running server whether it is
//! ready (the container health check; `server::healthcheck`).

use std::process::ExitCode;

use healthcrm::{
    config::{Config, DoctorOnStart},
    db, migrate, server, storage, telemetry, workflow, AppState,
};
use tokio::net::TcpListener;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("healthcheck") => {
            return match runtime(Some(1)) {
                Ok(rt) => rt.block_on(healthcheck()),
                Err(e) => {
                    eprintln!("healthcrm healthcheck: cannot start the runtime: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(other) => {
            eprintln!("healthcrm: unknown argument {other:?}; usage: healthcrm [healthcheck]");
            return ExitCode::from(2);
        }
    }
    // Read before the runtime exists: `WORKER_THREADS` sizes it.
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("healthcrm: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime(config.worker_threads) {
        Ok(rt) => rt.block_on(serve_main(config)),
        Err(e) => {
            eprintln!("healthcrm: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The multi-threaded runtime, with `workers` threads (`None`: one per
/// core, or tokio's own `TOKIO_WORKER_THREADS`).
fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    builder.build()
}

async fn serve_main(config: Config) -> ExitCode {
    let telemetry = telemetry::init(config.log_format, config.otel_endpoint.as_deref());
    let result = run(config).await;
    if let Err(e) = &result {
        tracing::error!("{e}");
        eprintln!("healthcrm: {e}");
    }
    // After the drain: the last requests' spans go out before exiting.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// `healthcrm healthcheck`: 0 when the server on `BIND_ADDR` is ready.
async fn healthcheck() -> ExitCode {
    use server::healthcheck::{probe, probe_addr};
    let _ = dotenvy::dotenv();
    let bind = std::env::var("BIND_ADDR").ok();
    let result = match probe_addr(bind.as_deref()) {
        Ok(addr) => probe(addr, std::time::Duration::from_secs(3)).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("healthcrm healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    match storage::Vault::open(&config)? {
        Some(vault) => tracing::info!(store = %vault.location, key_id = vault.key_id(), "document store ready"),
        None => {
            return Err("DOCUMENT_KEY is required: 64 hex characters (32 random bytes, e.g. `openssl rand -hex 32`); scripts/run.sh generates one".into())
        }
    }
    let client = db::client(&config)
        .await
        .map_err(|e| format!("MONGODB_URI is invalid: {e}"))?;
    let database = client.database(&config.mongodb_db);
    db::ping(&database)
        .await
        .map_err(|e| format!("cannot reach MongoDB (is it running? ./scripts/db.sh start): {e}"))?;
    let report = migrate::run(&database).await.map_err(|e| e.to_string())?;
    tracing::info!(created = ?report.created, updated = report.updated.len(), "migrations applied");
    workflow::tx::probe(&client, &database).await?;

    let bind_addr = config.bind_addr;
    if config.metrics_token.is_some() {
        healthcrm::metrics::handle();
        healthcrm::metrics::spawn_upkeep();
    }
    let state = AppState::new(database, config);
    doctor_on_start(&state).await?;
    let listener = TcpListener::bind(bind_addr)
        .await
        .map_err(|e| format!("cannot bind {bind_addr}: {e}"))?;
    tracing::info!("listening on http://{bind_addr}");
    server::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// The consistency check before serving (`DOCTOR_ON_START`): a process
/// that died inside a transaction the database did not roll back leaves a
/// completed treatment without its credit, which `repair` books (and
/// disagreeing deletion marks, which it sets).
async fn doctor_on_start(state: &AppState) -> Result<(), String> {
    let repair = match state.config.doctor_on_start {
        DoctorOnStart::Off => return Ok(()),
        DoctorOnStart::Report => false,
        DoctorOnStart::Repair => true,
    };
    let started = std::time::Instant::now();
    let report = workflow::doctor::check(&state.workflows, repair)
        .await
        .map_err(|e| format!("consistency check failed: {e}"))?;
    // The first few in full, then a count per kind: `doctor` prints them all.
    for v in report.violations.iter().take(20) {
        tracing::warn!(kind = v.kind, "consistency: {}", v.detail);
    }
    if report.violations.len() > 20 {
        let mut per_kind = std::collections::BTreeMap::<&str, usize>::new();
        for v in &report.violations {
            *per_kind.entry(v.kind).or_default() += 1;
        }
        tracing::warn!(
            ?per_kind,
            "consistency: more violations; the doctor binary lists them"
        );
    }
    for r in report.repaired.iter().take(20) {
        tracing::warn!("consistency: repaired: {r}");
    }
    tracing::info!(
        treatments = report.treatments,
        patients = report.patients,
        violations = report.violations.len(),
        repaired = report.repaired.len(),
        ms = started.elapsed().as_millis() as u64,
        "consistency check done"
    );
    Ok(())
}

/// Resolves on SIGINT or SIGTERM; `serve` then stops accepting and drains
/// in-flight requests before `serve` returns.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
