//! What a route's requests cost: the server's CPU (and the kernel's part
//! of it), context switches and database operations per request, and the
//! direct path's CPU and context switches.

use healthcrm::bench::{self, Sample};

/// What a process has used so far: CPU and context switches.
#[derive(Clone, Default)]
pub struct Used {
    cpu: bench::CpuTimes,
    switches: bench::Switches,
}

impl Used {
    fn of(pid: &str) -> Used {
        Used {
            cpu: bench::process_cpu(pid).unwrap_or_default(),
            switches: bench::process_switches(pid).unwrap_or_default(),
        }
    }
}

/// Per request: CPU ms, how much of it the kernel spent, and context
/// switches.
#[derive(Clone, Copy, Default)]
pub struct PerRequest {
    pub total: f64,
    pub system: f64,
    pub switches: f64,
}

impl PerRequest {
    fn between(before: &Used, after: &Used, n: f64) -> PerRequest {
        PerRequest {
            total: (after.cpu.total() - before.cpu.total()) * 1000.0 / n,
            system: (after.cpu.system - before.cpu.system) * 1000.0 / n,
            switches: after.switches.since(&before.switches) as f64 / n,
        }
    }
}

/// What the server spent per request: its CPU and its database commands.
#[derive(Clone, Copy, Default)]
pub struct Cost {
    pub cpu: PerRequest,
    pub db_ops: f64,
}

/// The server's CPU and context switches, and its database commands so far.
pub async fn usage(srv: &bench::BenchServer) -> (Used, f64) {
    // Let the audit batches of the last requests land first.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let used = srv.pid().map(|pid| Used::of(&pid)).unwrap_or_default();
    (used, srv.db_commands().await.unwrap_or(0.0))
}

/// Runs the direct path and times this process's CPU over it, per request:
/// what the repositories, the driver and the runtime cost without HTTP,
/// the floor under the server's own figure.
pub async fn timed_direct(run: impl std::future::Future<Output = Sample>) -> (Sample, PerRequest) {
    let before = Used::of("self");
    let sample = run.await;
    // As for the server: the last audit batch lands first.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let after = Used::of("self");
    let n = (sample.latencies.len() + sample.errors as usize).max(1) as f64;
    (sample, PerRequest::between(&before, &after, n))
}

/// Per request, from the usage before and after `requests` were sent.
pub fn cost(before: (Used, f64), after: (Used, f64), requests: usize) -> Cost {
    let n = requests.max(1) as f64;
    Cost {
        cpu: PerRequest::between(&before.0, &after.0, n),
        db_ops: (after.1 - before.1) / n,
    }
}
