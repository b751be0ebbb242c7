//! The consistency checker (`cargo run --release --bin doctor [-- --repair]`).
//!
//! Checks the invariants that span collections (every completed treatment
//! has exactly one credit and every completed-then-cancelled one exactly one
//! reversal, ledger amounts match their treatments, each patient's reached
//! statuses and completion agree with its history, no reference to a missing
//! hospital, user or patient, the deletion marks of appointments and
//! treatments agree with their patient) and prints each violation. `--repair` books missing
//! ledger entries, idempotently, sets disagreeing deletion marks from the
//! patient, and says what it did. Exit status: 0 when nothing is left to
//! fix, 1 when violations remain, 2 on error.
//!
//! Reads MONGODB_URI and MONGODB_DB (and .env), like the server.

use std::{process::ExitCode, sync::Arc};

use healthcrm::{config::Config, db, workflow};

const USAGE: &str = "doctor [--repair]";

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let mut repair = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--repair" => repair = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return fail(&format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    let config = match Config::for_tools() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let client = match db::client(&config).await {
        Ok(c) => c,
        Err(e) => return fail(&format!("MONGODB_URI is invalid: {e}")),
    };
    let database = client.database(&config.mongodb_db);
    let ctx = workflow::Ctx::new(&database, Arc::new(config));
    let report = match workflow::doctor::check(&ctx, repair).await {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    for v in &report.violations {
        let fix = if v.repairable { " (repairable)" } else { "" };
        println!("{}: {}{fix}", v.kind, v.detail);
    }
    for r in &report.repaired {
        println!("repaired: {r}");
    }
    println!(
        "doctor: {} treatments and {} patients checked; {} violation(s), {} repaired",
        report.treatments,
        report.patients,
        report.violations.len(),
        report.repaired.len()
    );
    if report.remaining() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("doctor: {message}");
    ExitCode::from(2)
}
