//! Operational metrics in the Prometheus text format, served at `/metrics`
//! behind `METRICS_TOKEN` (see `http::routes::metrics`).
//!
//! Recorded through the `metrics` facade into one process-wide recorder.
//! Labels are closed sets only: route templates (never a raw path, which
//! holds record ids), methods, statuses, database command names, cache
//! names. Nothing about a patient or a user reaches a label or a value.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{OnceLock, PoisonError, RwLock},
    time::{Duration, Instant},
};

use metrics::{Counter, Gauge, Histogram};

use crate::http::per_route::PerRoute;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use mongodb::event::{
    cmap::{CmapEvent, ConnectionCheckoutFailedReason},
    command::CommandEvent,
    EventHandler,
};

/// Requests served, by `method`, `route` (the template) and `status`.
pub const HTTP_REQUESTS: &str = "healthcrm_http_requests_total";
/// Time to the response's head, by `method`, `route` and `status`.
pub const HTTP_DURATION: &str = "healthcrm_http_request_duration_seconds";
/// Database commands' round trips, by `command` and `outcome`; recorded
/// only with `METRICS_DB_COMMANDS=on` ([`command_events`]).
pub const DB_DURATION: &str = "healthcrm_db_command_duration_seconds";
/// Time to take a connection from the driver's pool, by `outcome` (`ok`,
/// `timeout`, `error`). One checkout per operation sent (a command, a
/// cursor's next batch, a commit), so its `ok` count is the operations.
pub const DB_CHECKOUT: &str = "healthcrm_db_pool_checkout_seconds";
/// Audit batches waiting for or being written.
pub const AUDIT_QUEUE: &str = "healthcrm_audit_queue_depth";
/// Time a password hash waited for its turn (`outcome`: `ran`, `refused`).
pub const HASH_WAIT: &str = "healthcrm_password_hash_wait_seconds";
/// Cache lookups, by `cache` and `result` (`hit`, `miss`).
pub const CACHE: &str = "healthcrm_cache_lookups_total";
/// The runtime's worker threads (`WORKER_THREADS`, else
/// `TOKIO_WORKER_THREADS`, else one per core).
pub const RUNTIME_WORKERS: &str = "healthcrm_runtime_workers";

/// Latency buckets, 1 ms to 30 s.
const BUCKETS: [f64; 15] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0,
];

/// The recorder, once [`handle`] has installed it.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use. Metrics recorded before
/// it is installed are dropped, so the server installs it at start-up.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = match PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
        {
            Ok(with_buckets) => with_buckets,
            Err(e) => {
                tracing::warn!(error = %e, "metrics buckets refused; latencies become summaries");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "Requests served, by method, route template and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its response's head."
    );
    describe_histogram!(
        DB_DURATION,
        Unit::Seconds,
        "Database command round trips, by command name and outcome."
    );
    describe_histogram!(
        DB_CHECKOUT,
        Unit::Seconds,
        "Time to take a pooled connection; one checkout per database operation."
    );
    describe_gauge!(AUDIT_QUEUE, "Audit events waiting for or being written.");
    describe_histogram!(
        HASH_WAIT,
        Unit::Seconds,
        "Time a password hash waited for a free hashing slot."
    );
    describe_counter!(CACHE, "Cache lookups, by cache and result (hit or miss).");
    describe_gauge!(RUNTIME_WORKERS, "The runtime's worker threads.");
}

/// Renders every metric; also folds recent histogram samples in.
pub fn render() -> String {
    handle().render()
}

/// Keeps the recorder's memory bounded between scrapes: histograms are
/// folded into their buckets every few seconds. Runs until the process ends.
/// Also records the runtime's worker threads, as this runs on it.
pub fn spawn_upkeep() {
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    metrics::gauge!(RUNTIME_WORKERS).set(workers as f64);
    let handle = handle().clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}

/// Handles registered with the recorder once and kept, by their labels.
///
/// A `metrics::counter!` with labels builds its key (a vector, owned
/// label values) and looks it up in the recorder's registry on every
/// call; an authenticated read made about seven such calls. A kept handle
/// is one lookup in a small map. Nothing is kept, and nothing recorded,
/// until the recorder is installed: the facade would have dropped those
/// samples anyway, and a handle taken then would stay a no-op. This holds
/// while the recorder keeps every series it registered (no `idle_timeout`
/// on the builder in [`handle`]): one that dropped idle series would leave
/// a kept handle writing to storage it no longer renders.
struct Kept<K, H>(OnceLock<RwLock<HashMap<K, H>>>);

impl<K: Hash + Eq, H: Clone> Kept<K, H> {
    const fn new() -> Self {
        Kept(OnceLock::new())
    }

    /// The handle for `key`, registered by `register` the first time.
    fn get(&self, key: K, register: impl FnOnce(&K) -> H) -> Option<H> {
        HANDLE.get()?;
        let kept = self.0.get_or_init(Default::default);
        if let Some(h) = kept
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Some(h.clone());
        }
        let h = register(&key);
        let mut kept = kept.write().unwrap_or_else(PoisonError::into_inner);
        Some(kept.entry(key).or_insert(h).clone())
    }
}

/// Counts a request served and records its time to the response's head.
/// `route` is the template (a closed set), so the handles kept are bounded
/// by routes times methods times statuses.
pub fn request_served(method: &'static str, route: &str, status: u16, took: Duration) {
    static KEPT: PerRoute<(&'static str, u16), (Counter, Histogram)> = PerRoute::new();
    if HANDLE.get().is_none() {
        return;
    }
    let (count, time) = KEPT.get(route, &(method, status), || {
        let labels = [
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        (
            metrics::counter!(HTTP_REQUESTS, &labels),
            metrics::histogram!(HTTP_DURATION, &labels),
        )
    });
    count.increment(1);
    time.record(took);
}

/// Counts a cache lookup.
pub fn cache_lookup(cache: &'static str, hit: bool) {
    static KEPT: Kept<(&'static str, bool), Counter> = Kept::new();
    let counter = KEPT.get((cache, hit), |&(cache, hit)| {
        metrics::counter!(CACHE, "cache" => cache, "result" => if hit { "hit" } else { "miss" })
    });
    if let Some(counter) = counter {
        counter.increment(1);
    }
}

/// Records how long a password hash waited for its slot.
pub fn hash_waited(since: Instant, ran: bool) {
    metrics::histogram!(HASH_WAIT, "outcome" => if ran { "ran" } else { "refused" })
        .record(since.elapsed());
}

/// Moves the audit queue's depth by `delta` (one per batch taken or
/// written), so concurrent writers never overwrite each other's reading.
pub fn audit_queue_add(delta: f64) {
    static KEPT: Kept<(), Gauge> = Kept::new();
    if let Some(gauge) = KEPT.get((), |()| metrics::gauge!(AUDIT_QUEUE)) {
        gauge.increment(delta);
    }
}

/// A driver event handler counting the operations sent and timing each
/// wait for a pooled connection. Cheap: the driver's pool events carry no
/// documents. Installed whenever metrics are served.
pub fn pool_events() -> EventHandler<CmapEvent> {
    EventHandler::callback(|event: CmapEvent| {
        let (duration, outcome) = match event {
            CmapEvent::ConnectionCheckedOut(e) => (e.duration, "ok"),
            CmapEvent::ConnectionCheckoutFailed(e) => (
                e.duration,
                match e.reason {
                    ConnectionCheckoutFailedReason::Timeout => "timeout",
                    _ => "error",
                },
            ),
            _ => return,
        };
        static KEPT: Kept<&'static str, Histogram> = Kept::new();
        if let Some(h) = KEPT.get(
            outcome,
            |&o| metrics::histogram!(DB_CHECKOUT, "outcome" => o),
        ) {
            h.record(duration);
        }
    })
}

/// A driver event handler recording each command's round trip, by name.
/// Installed only with `METRICS_DB_COMMANDS=on`: once a handler is set,
/// the driver copies every command and reply and decodes both into
/// documents for the event: about a fifth of a read by id's server CPU in
/// the load benchmark (docs/benchmarks.md).
pub fn command_events() -> EventHandler<CommandEvent> {
    EventHandler::callback(|event: CommandEvent| {
        let (name, duration, outcome) = match event {
            CommandEvent::Succeeded(e) => (e.command_name, e.duration, "ok"),
            CommandEvent::Failed(e) => (e.command_name, e.duration, "error"),
            CommandEvent::Started(_) => return,
            _ => return,
        };
        metrics::histogram!(DB_DURATION, "command" => name, "outcome" => outcome).record(duration);
    })
}
