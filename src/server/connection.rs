//! One connection: hyper's HTTP/1 over a socket whose reads are watched, so
//! that it is closed when a request's headers take longer than the
//! header-read timeout or when it waits for its next request longer than the
//! idle timeout.
//!
//! hyper's own `header_read_timeout` is off: it runs from the end of the
//! previous response, so on a keep-alive connection it is also the idle
//! timeout and the two could not differ. Here the header clock starts at the
//! connection's opening (like nginx's `client_header_timeout`: a client that
//! connects and says nothing is a slowloris too) or at the first byte after
//! an idle spell, and stops when hyper hands the request to the app.

use std::{
    convert::Infallible,
    fmt, io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use axum::{body::Body, extract::ConnectInfo, Router};
use http_body_util::BodyExt;
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request};
use hyper_util::{rt::TokioIo, server::graceful::Watcher};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::OwnedSemaphorePermit,
    time::Instant,
};
use tower::ServiceExt;

use super::Limits;

/// Serves one accepted connection until the client closes it, a timeout
/// closes it, or graceful shutdown ends it after its in-flight request.
/// `_slot` is its place under `MAX_CONNECTIONS`, freed when this returns.
pub(super) async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    app: Router,
    limits: Limits,
    shutdown: Watcher,
    _slot: OwnedSemaphorePermit,
) {
    // Small JSON responses should not wait on Nagle for the client's ACK.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%remote, "TCP_NODELAY: {e}");
    }
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let requests = activity.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let in_flight = requests.request_started();
        let mut req = req.map(Body::new);
        // What `into_make_service_with_connect_info` did: `ClientIp` reads it.
        req.extensions_mut().insert(ConnectInfo(remote));
        let app = app.clone();
        async move {
            let res = app.oneshot(req).await?;
            // In flight until hyper has written (and dropped) the whole body,
            // so a long download is not cut by the idle timeout.
            Ok::<_, Infallible>(res.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _held = &in_flight;
                    frame
                }))
            }))
        }
    });
    let conn = http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::select! {
        served = shutdown.watch(conn) => {
            if let Err(e) = served {
                tracing::debug!(%remote, "connection ended: {e}");
            }
        }
        expired = activity.expired(limits) => {
            tracing::debug!(%remote, "closing connection: {expired}");
        }
    }
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    HeaderRead,
    Idle,
}

impl fmt::Display for Expired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expired::HeaderRead => "request headers not received within the header-read timeout",
            Expired::Idle => "no request within the idle timeout",
        })
    }
}

/// Where a connection is between requests, shared by its socket (bytes
/// arrived), its service (a request started or finished) and its watchdog.
///
/// A change of phase wakes nobody: the watchdog looks at the phase when its
/// own timer fires (see [`Activity::expired`]), so a request costs its
/// connection no extra wake-up and no timer.
struct Activity {
    phase: Mutex<Phase>,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request's headers since the connection opened or since
    /// the first byte after an idle spell.
    Head { since: Instant },
    /// Requests handed to the app and not finished; no connection timeout
    /// applies (`REQUEST_TIMEOUT_SECS` bounds the handler).
    Busy { in_flight: usize },
    /// Keep-alive with nothing received since the last response.
    Idle { since: Instant },
}

impl Activity {
    fn new() -> Activity {
        Activity {
            phase: Mutex::new(Phase::Head {
                since: Instant::now(),
            }),
        }
    }

    fn update(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        *phase = f(*phase);
    }

    fn bytes_arrived(&self) {
        self.update(|phase| match phase {
            Phase::Idle { .. } => Phase::Head {
                since: Instant::now(),
            },
            other => other,
        });
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.update(|phase| match phase {
            Phase::Busy { in_flight } => Phase::Busy {
                in_flight: in_flight + 1,
            },
            _ => Phase::Busy { in_flight: 1 },
        });
        InFlight(self.clone())
    }

    fn deadline(&self, limits: Limits) -> Option<(Instant, Expired)> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Head { since } => {
                Some((since + limits.header_read_timeout, Expired::HeaderRead))
            }
            Phase::Idle { since } => Some((since + limits.idle_timeout, Expired::Idle)),
            Phase::Busy { .. } => None,
        }
    }

    /// Resolves when the current phase has outlived its timeout.
    ///
    /// Nothing signals a change of phase; instead the watchdog never sleeps
    /// past `now + min(timeouts)`. Any phase that begins while it sleeps
    /// begins after `now`, so its deadline is at least that far off and the
    /// watchdog, waking by then, sees it in time. So a connection is looked
    /// at once per that interval at least (at the defaults, every 10 s),
    /// whatever its phase. The interval is at least 1 ms, so `Limits` built
    /// with a zero timeout cannot make it spin (the config refuses zero).
    async fn expired(&self, limits: Limits) -> Expired {
        let recheck = limits
            .header_read_timeout
            .min(limits.idle_timeout)
            .max(Duration::from_millis(1));
        loop {
            let now = Instant::now();
            let wake = match self.deadline(limits) {
                Some((at, why)) if at <= now => return why,
                Some((at, _)) => at.min(now + recheck),
                None => now + recheck,
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// A request handed to the app; dropping it (response body written, or the
/// request abandoned) ends it.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|phase| match phase {
            Phase::Busy { in_flight } if in_flight > 1 => Phase::Busy {
                in_flight: in_flight - 1,
            },
            _ => Phase::Idle {
                since: Instant::now(),
            },
        });
    }
}

/// The socket, telling `Activity` when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMITS: Limits = Limits {
        request_timeout: Duration::from_millis(500),
        header_read_timeout: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(300),
        max_connections: 1,
    };

    #[tokio::test]
    async fn the_clock_follows_the_phase() {
        let opened = Instant::now();
        let a = Arc::new(Activity::new());
        let (head_deadline, why) = a.deadline(LIMITS).expect("a deadline");
        assert_eq!(why, Expired::HeaderRead);
        assert!(head_deadline >= opened + LIMITS.header_read_timeout);
        tokio::time::sleep(Duration::from_millis(20)).await;
        a.bytes_arrived();
        assert_eq!(
            a.deadline(LIMITS),
            Some((head_deadline, Expired::HeaderRead)),
            "bytes of the same head do not extend the header clock"
        );

        let request = a.request_started();
        assert_eq!(a.deadline(LIMITS), None, "no connection timeout while busy");
        a.bytes_arrived();
        assert_eq!(a.deadline(LIMITS), None, "a pipelined byte changes nothing");
        let finished = Instant::now();
        drop(request);
        let (idle_deadline, why) = a.deadline(LIMITS).expect("a deadline");
        assert_eq!(why, Expired::Idle);
        assert!(idle_deadline >= finished + LIMITS.idle_timeout);

        tokio::time::sleep(Duration::from_millis(20)).await;
        let first_byte = Instant::now();
        a.bytes_arrived();
        let (next_head, why) = a.deadline(LIMITS).expect("a deadline");
        assert_eq!(why, Expired::HeaderRead, "the next request's first byte");
        assert!(next_head >= first_byte + LIMITS.header_read_timeout);
    }

    #[tokio::test]
    async fn the_watchdog_fires_at_the_deadline_of_the_phase_it_ends_in() {
        let a = Arc::new(Activity::new());
        let request = a.request_started();
        let watchdog = {
            let a = a.clone();
            tokio::spawn(async move { (a.expired(LIMITS).await, Instant::now()) })
        };
        // Busy past both timeouts: nothing fires.
        tokio::time::sleep(LIMITS.idle_timeout * 2).await;
        assert!(!watchdog.is_finished());
        let idle_since = Instant::now();
        drop(request);
        let (why, at) = watchdog.await.expect("watchdog");
        assert_eq!(why, Expired::Idle);
        assert!(at >= idle_since + LIMITS.idle_timeout);
        assert!(
            at < idle_since + LIMITS.idle_timeout * 2,
            "{:?}",
            at - idle_since
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_phase_that_begins_while_the_watchdog_sleeps_is_not_missed() {
        // The idle timeout is the shorter one here: the connection goes idle
        // while the watchdog is waiting out the first head's longer clock,
        // and must be closed at the idle deadline exactly, not the head's
        // (or a recheck later). The clock is paused: it moves only when
        // every task waits, so the instants below are exact.
        let limits = Limits {
            header_read_timeout: Duration::from_millis(600),
            idle_timeout: Duration::from_millis(150),
            ..LIMITS
        };
        let a = Arc::new(Activity::new());
        let watchdog = {
            let a = a.clone();
            tokio::spawn(async move { (a.expired(limits).await, Instant::now()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let request = a.request_started();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let idle_since = Instant::now();
        drop(request);
        let (why, at) = watchdog.await.expect("watchdog");
        assert_eq!(why, Expired::Idle);
        assert_eq!(at - idle_since, limits.idle_timeout);
    }
}
