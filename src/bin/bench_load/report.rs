//! `bench_load`'s table: a row per route and level, printed as it lands,
//! and the report written to `--out`.

use std::fmt::Write as _;

use healthcrm::bench::{ms, Sample};

use super::{own_workers, Args};
use crate::cost::{Cost, PerRequest};

/// One route at one concurrency: what the server and the direct path did.
pub struct Row {
    route: &'static str,
    concurrency: usize,
    server: Sample,
    direct: Sample,
    cost: Cost,
    /// This process's CPU ms per request over the direct path.
    direct_cpu: PerRequest,
}

impl Row {
    /// The failed requests, over HTTP and on the direct path.
    pub fn errors(&self) -> u64 {
        self.server.errors + self.direct.errors
    }
}

fn line(r: &Row) -> String {
    let [ratio, direct_cpu, direct_sys, direct_switches] = if r.direct.latencies.is_empty() {
        std::array::from_fn(|_| "-".to_owned())
    } else {
        [
            format!("{:.2}", r.server.per_second() / r.direct.per_second()),
            format!("{:.3}", r.direct_cpu.total),
            format!("{:.3}", r.direct_cpu.system),
            format!("{:.2}", r.direct_cpu.switches),
        ]
    };
    format!(
        "| {:<38} | {:>4} | {:>5} | {:>6} | {:>8.1} | {:>8.2} | {:>8.2} | {:>9.1} | {:>5} | {:>6.3} | {:>6.3} | {:>6.2} | {:>6.2} | {:>10} | {:>10} | {:>9} |",
        r.route,
        r.concurrency,
        r.server.latencies.len(),
        r.server.errors,
        r.server.per_second(),
        ms(r.server.percentile(0.5)),
        ms(r.server.percentile(0.99)),
        r.direct.per_second(),
        ratio,
        r.cost.cpu.total,
        r.cost.cpu.system,
        r.cost.cpu.switches,
        r.cost.db_ops,
        direct_cpu,
        direct_sys,
        direct_switches
    )
}

/// A row of the table, printed as it lands.
pub fn row(
    route: &'static str,
    concurrency: usize,
    (server, cost): (Sample, Cost),
    (direct, direct_cpu): (Sample, PerRequest),
) -> Row {
    let row = Row {
        route,
        concurrency,
        server,
        direct,
        cost,
        direct_cpu,
    };
    println!("{}", line(&row));
    row
}

pub const HEADER: &str = "| route                                  | conc | ok    | errors | req/s    | p50 ms   | p99 ms   | direct/s  | ratio | CPU ms | sys ms | ctx sw | db ops | direct CPU | direct sys | direct sw |\n\
|----------------------------------------|-----:|------:|-------:|---------:|---------:|---------:|----------:|------:|-------:|-------:|-------:|-------:|-----------:|-----------:|----------:|";

/// Writes the table to `--out`.
pub fn write_report(
    args: &Args,
    patients: usize,
    workers: f64,
    rows: &[Row],
    rss: &[(usize, u64)],
) -> Result<(), String> {
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# Load benchmark\n\n{} patients (3 appointments and 2 treatments each), 20 staff, 50 hospitals; {} requests per route and level (list, login: a quarter; dashboard: an eighth). `direct/s` runs the same repository and workflow calls without HTTP (writes in the same transactions) at the same concurrency; `ratio` is req/s over direct/s. `CPU ms` and `db ops` are the server's per request; `direct CPU` is the CPU ms per request this process spent on the direct path, the same repository calls without HTTP. `sys ms` and `direct sys` are the kernel's part of each (system calls; on loopback a send also runs the receiver's network stack, counted to the sender). `ctx sw` and `direct sw` are context switches per request, over each process's threads alive at both ends of the row: a runtime worker parking and being woken again, or being preempted; the gap between two runtime workers and one shows here. `GET /health` (no token, no database) has no direct path: it is the HTTP stack's own cost.\n",
        patients,
        args.requests
    );
    let _ = writeln!(
        report,
        "Server runtime workers: {workers} ({}). The benchmark's own (its client and the direct path): {}.\n",
        args.server_workers
            .map_or_else(|| "its default".into(), |n| format!("WORKER_THREADS={n}")),
        own_workers()
    );
    if args.read_cache {
        let _ = writeln!(
            report,
            "With `--read-cache yes`: the server and the direct path reached the database through `bench_readcache`, which answered every `find` of one patient by id it had seen from memory (each patient was read through it before each level's read row). In the read rows the patient's find is answered at once (the audit batches still go to the database); they are not the stand-in's figures, and the later rows at each level are the stand-in's as usual.\n"
        );
    }
    let _ = writeln!(report, "{HEADER}");
    for r in rows {
        let _ = writeln!(report, "{}", line(r));
    }
    let _ = writeln!(report);
    for (c, peak) in rss {
        let _ = writeln!(
            report,
            "- server peak RSS after concurrency {c}: {:.1} MiB",
            *peak as f64 / 1_048_576.0
        );
    }
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(&args.out, &report).map_err(|e| e.to_string())?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
