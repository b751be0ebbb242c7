//! `seed`: applies seeds/permissions.json and creates the first admin;
//! with `--demo`, then loads the demo data set (`healthcrm::demo`).
//!
//!     seed [--dry-run] [--reset] [--file PATH] [--demo [--force]] | --routes
//!
//! Reads MONGODB_URI, MONGODB_DB, SEED_ADMIN_EMAIL, SEED_ADMIN_PASSWORD and
//! SEED_ADMIN_NAME from the environment (and .env).

use std::{process::ExitCode, sync::Arc, time::Duration};

use healthcrm::{auth::password::Hasher, config::Config, db, demo, migrate, seed, workflow};
use secrecy::SecretString;

const USAGE: &str = "usage: seed [--dry-run] [--reset] [--file PATH] [--demo [--force]] | --routes
  --routes    print every protected route (what rules may name) and exit
  --dry-run   print what would change and write nothing
  --reset     also restore rules an admin changed to the seed file's values
  --file      seed file (default seeds/permissions.json)
  --demo      then load the demo data set: 15 hospitals, 4 coordinators and
              300 patients with 18 months of discussions, quotes, treatments
              and trips (idempotent: a second run adds only what is missing)
  --force     load the demo even beside patients it did not register";

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let mut dry_run = false;
    let mut reset = false;
    let mut demo = false;
    let mut force = false;
    let mut file = seed::DEFAULT_SEED_FILE.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--routes" => {
                for r in healthcrm::http::protected_routes() {
                    println!("{} {}", r.method, r.path);
                }
                return ExitCode::SUCCESS;
            }
            "--dry-run" => dry_run = true,
            "--reset" => reset = true,
            "--demo" => demo = true,
            "--force" => force = true,
            "--file" => match args.next() {
                Some(f) => file = f,
                None => return fail("--file needs a path"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return fail(&format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    if force && !demo {
        return fail("--force only applies to --demo");
    }
    if demo && dry_run {
        return fail("--demo writes; it has no dry run");
    }
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let uri = env("MONGODB_URI").unwrap_or_else(|| "mongodb://127.0.0.1:27017".into());
    let db_name = env("MONGODB_DB").unwrap_or_else(|| "healthcrm".into());

    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => return fail(&format!("cannot read {file}: {e}")),
    };
    let rules = match seed::parse(&file, &text, healthcrm::http::protected_routes()) {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    let client = match db::client_for_uri(&uri, Duration::from_secs(5)).await {
        Ok(c) => c,
        Err(e) => return fail(&format!("MONGODB_URI is invalid: {e}")),
    };
    let database = client.database(&db_name);
    let result = seed_rules(&database, &rules, &opts_from(&env, dry_run, reset)).await;
    if result != ExitCode::SUCCESS || !demo {
        return result;
    }
    load_demo(&database, force).await
}

fn opts_from(env: &dyn Fn(&str) -> Option<String>, dry_run: bool, reset: bool) -> seed::Options {
    seed::Options {
        dry_run,
        reset,
        admin_email: env("SEED_ADMIN_EMAIL"),
        admin_password: env("SEED_ADMIN_PASSWORD").map(SecretString::from),
        admin_name: env("SEED_ADMIN_NAME").unwrap_or_else(|| "Administrator".into()),
    }
}

async fn seed_rules(
    database: &mongodb::Database,
    rules: &std::collections::BTreeMap<
        healthcrm::domain::role::Role,
        Vec<healthcrm::domain::permission::Rule>,
    >,
    opts: &seed::Options,
) -> ExitCode {
    let dry_run = opts.dry_run;
    if !dry_run {
        if let Err(e) = migrate::run(database).await {
            return fail(&e.to_string());
        }
    }
    match seed::run(database, rules, opts).await {
        Ok(changes) => {
            for c in &changes {
                println!("{c}");
            }
            let writes = changes.iter().filter(|c| c.writes()).count();
            let verb = if dry_run { "would change" } else { "changed" };
            if writes == 0 {
                println!("seed: nothing to change");
            } else {
                println!(
                    "seed: {verb} {writes} item(s){}",
                    if dry_run {
                        " (dry run: nothing written)"
                    } else {
                        ""
                    }
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Loads the demo data through the workflows, as the server would have.
async fn load_demo(database: &mongodb::Database, force: bool) -> ExitCode {
    let config = match Config::for_tools() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let ctx = workflow::Ctx::new(database, Arc::new(config));
    let hasher = Hasher::new(1, Duration::from_secs(30));
    let opts = demo::Options {
        force,
        now: chrono::Utc::now(),
        patients: demo::PATIENTS,
    };
    match demo::run(&ctx, &hasher, &opts).await {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("seed: {message}");
    ExitCode::from(2)
}
