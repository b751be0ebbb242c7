//! Serving: an accept loop that caps open connections and gives each one a
//! header-read and an idle timeout (`connection`), and graceful shutdown:
//! stop accepting, finish in-flight requests, then wait for the background
//! writes they started.

mod connection;
pub mod healthcheck;

use std::{
    future::Future,
    io,
    sync::Arc,
    time::{Duration, Instant},
};

use hyper_util::server::graceful::GracefulShutdown;
use tokio::{
    net::TcpListener,
    sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError},
};

use crate::{build_app, config::Config, AppState};

/// How long shutdown waits for background writes after the last response.
const DRAIN_BACKGROUND: Duration = Duration::from_secs(10);

/// Added to the request and header timeouts to bound the wait for open
/// connections at shutdown.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(5);

/// How often ended minutes of the refused-call tally are written.
const TALLY_EVERY: Duration = Duration::from_secs(10);

/// Pause after an accept error that is not the peer's (EMFILE, ENFILE,
/// ENOMEM): retrying at once would spin while nothing has changed.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The same warning at most this often, with a count of those held back.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What each connection is allowed (`HTTP_HEADER_READ_TIMEOUT_SECS`,
/// `HTTP_IDLE_TIMEOUT_SECS`, `MAX_CONNECTIONS`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            request_timeout: config.request_timeout,
            header_read_timeout: config.http_header_read_timeout,
            idle_timeout: config.http_idle_timeout,
            max_connections: config.max_connections,
        }
    }
}

/// Serves until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let background = state.background.clone();
    let limits = Limits::from_config(&state.config);
    let audit = state.audit.clone();
    let app = build_app(state);
    // Each minute's tally of refused calls is written soon after the minute
    // ends, even when no later call closes it.
    let ticker = {
        let audit = audit.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TALLY_EVERY);
            loop {
                every.tick().await;
                audit.flush_tally(false).await;
            }
        })
    };
    accept_until(listener, app, limits, shutdown).await;
    ticker.abort();
    audit.flush_tally(true).await;
    background.close();
    if tokio::time::timeout(DRAIN_BACKGROUND, background.wait())
        .await
        .is_err()
    {
        tracing::error!(
            pending = background.len(),
            "background writes still pending at shutdown"
        );
    }
    Ok(())
}

/// Accepts while a connection slot is free: at the cap it stops calling
/// `accept`, so new clients wait in the kernel's listen backlog (and past
/// it are refused by the kernel) instead of costing us a descriptor each.
/// Returns once `shutdown` has resolved and every connection has closed.
async fn accept_until(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut at_cap = Occasional::new(WARN_EVERY);
    let mut accept_failed = Occasional::new(WARN_EVERY);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = next_slot(&slots, limits.max_connections, &mut at_cap) => slot,
        };
        let Some(slot) = slot else { break };
        let (stream, remote) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    on_accept_error(e, &mut accept_failed).await;
                    continue;
                }
            },
        };
        tokio::spawn(connection::serve(
            stream,
            remote,
            app.clone(),
            limits,
            graceful.watcher(),
            slot,
        ));
    }
    drop(listener);
    tracing::debug!(
        open = graceful.count(),
        "stopped accepting; waiting for open connections"
    );
    // A request finishes within its timeout and a new connection gets the
    // header timeout; what is still open after both (a client that stopped
    // reading its response) must not keep the process from exiting.
    let grace = limits.request_timeout + limits.header_read_timeout + SHUTDOWN_SLACK;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = grace.as_secs(),
            "connections still open after the shutdown grace period; closing them"
        );
    }
}

/// A free connection slot, waiting for one at the cap (`None`: the
/// semaphore was closed, which nothing does).
async fn next_slot(
    slots: &Arc<Semaphore>,
    max: usize,
    at_cap: &mut Occasional,
) -> Option<OwnedSemaphorePermit> {
    match slots.clone().try_acquire_owned() {
        Ok(slot) => return Some(slot),
        Err(TryAcquireError::Closed) => return None,
        Err(TryAcquireError::NoPermits) => {}
    }
    if let Some(held_back) = at_cap.due() {
        tracing::warn!(
            max_connections = max,
            times_since_last_warning = held_back,
            "connection limit reached; new connections wait in the listen backlog"
        );
    }
    slots.clone().acquire_owned().await.ok()
}

/// A failed `accept` never ends the loop. The peer's errors (it reset or
/// gave up before we accepted) are routine; the rest (out of descriptors,
/// out of memory) are warned about occasionally and retried after a pause.
async fn on_accept_error(e: io::Error, failed: &mut Occasional) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        tracing::debug!("accept: {e}");
        return;
    }
    if let Some(held_back) = failed.due() {
        tracing::error!(times_since_last_warning = held_back, "accept failed: {e}");
    }
    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
}

/// Rate limit for a repeated log line: due at most once per `every`,
/// counting the occurrences held back in between.
struct Occasional {
    every: Duration,
    last: Option<Instant>,
    held_back: u64,
}

impl Occasional {
    fn new(every: Duration) -> Occasional {
        Occasional {
            every,
            last: None,
            held_back: 0,
        }
    }

    /// `Some(occurrences held back since the last one)` when due.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < self.every)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_warning_is_due_once_per_period_with_the_count_held_back() {
        let mut o = Occasional::new(Duration::from_secs(3600));
        assert_eq!(o.due(), Some(0));
        assert_eq!(o.due(), None);
        assert_eq!(o.due(), None);
        o.last = Instant::now().checked_sub(Duration::from_secs(3601));
        assert_eq!(o.due(), Some(2));
    }

    #[tokio::test]
    async fn shutdown_does_not_wait_for_ever_on_a_client_that_stopped_reading() {
        use tokio::io::AsyncWriteExt;
        // A response without end, to a client that reads none of it: the
        // connection stays busy once the socket buffers are full.
        let app = axum::Router::new().route(
            "/endless",
            axum::routing::get(|| async {
                let chunk = axum::body::Bytes::from(vec![b'x'; 64 * 1024]);
                axum::body::Body::from_stream(futures::stream::repeat_with(move || {
                    Ok::<_, std::convert::Infallible>(chunk.clone())
                }))
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let limits = Limits {
            request_timeout: Duration::from_millis(300),
            header_read_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_secs(5),
            max_connections: 4,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(accept_until(listener, app, limits, async {
            let _ = stopped.await;
        }));
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        client
            .write_all(b"GET /endless HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let asked = Instant::now();
        let _ = stop.send(());
        let grace = limits.request_timeout + limits.header_read_timeout + SHUTDOWN_SLACK;
        tokio::time::timeout(grace + Duration::from_secs(5), server)
            .await
            .expect("serving ended within the grace period")
            .expect("no panic");
        assert!(asked.elapsed() >= grace - Duration::from_millis(100));
        drop(client);
    }
}
