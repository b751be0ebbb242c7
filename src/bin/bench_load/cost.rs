//! What a route's requests cost: the server's CPU (and the kernel's part
//! of it) and database operations per request, and the direct path's CPU.

use healthcrm::bench::{self, Sample};

/// CPU ms per request, and how much of it the kernel spent.
#[derive(Clone, Copy, Default)]
pub struct Ms {
    pub total: f64,
    pub system: f64,
}

impl Ms {
    fn per_request(before: bench::CpuTimes, after: bench::CpuTimes, n: f64) -> Ms {
        Ms {
            total: (after.total() - before.total()) * 1000.0 / n,
            system: (after.system - before.system) * 1000.0 / n,
        }
    }
}

/// What the server spent per request: its CPU and its database commands.
#[derive(Clone, Copy, Default)]
pub struct Cost {
    pub cpu: Ms,
    pub db_ops: f64,
}

/// The server's CPU seconds and database commands so far.
pub async fn usage(srv: &bench::BenchServer) -> (bench::CpuTimes, f64) {
    // Let the audit batches of the last requests land first.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    (
        srv.cpu().unwrap_or_default(),
        srv.db_commands().await.unwrap_or(0.0),
    )
}

/// Runs the direct path and times this process's CPU over it, per request:
/// what the repositories, the driver and the runtime cost without HTTP,
/// the floor under the server's own figure.
pub async fn timed_direct(run: impl std::future::Future<Output = Sample>) -> (Sample, Ms) {
    let before = bench::process_cpu("self").unwrap_or_default();
    let sample = run.await;
    // As for the server: the last audit batch lands first.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let after = bench::process_cpu("self").unwrap_or_default();
    let n = (sample.latencies.len() + sample.errors as usize).max(1) as f64;
    (sample, Ms::per_request(before, after, n))
}

/// Per request, from the usage before and after `requests` were sent.
pub fn cost(
    before: (bench::CpuTimes, f64),
    after: (bench::CpuTimes, f64),
    requests: usize,
) -> Cost {
    let n = requests.max(1) as f64;
    Cost {
        cpu: Ms::per_request(before.0, after.0, n),
        db_ops: (after.1 - before.1) / n,
    }
}
