//! Connection limits over real TCP: half-sent requests (slowloris) are
//! closed at the header-read timeout without starving other clients, the
//! connection cap holds new clients in the backlog until a slot frees, and
//! an idle keep-alive connection is closed at the idle timeout.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::oneshot,
    task::JoinHandle,
};

use crate::helpers::TestApp;

/// Allowance for scheduling on a busy 2-core machine running other tests.
const MARGIN: Duration = Duration::from_secs(3);

/// `server::serve` on a free port, stopped (and awaited) by `stop`.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _app: TestApp,
}

impl Server {
    async fn start(overrides: &[(&str, &str)]) -> Server {
        let app = TestApp::spawn_with(overrides).await;
        let state = healthcrm::AppState::new(app.db.clone(), app.config.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(healthcrm::server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task: Some(task),
            _app: app,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("serve returns after shutdown")
                .expect("server task")
                .expect("clean shutdown");
        }
    }
}

/// A connection that sent half a request line and then nothing.
async fn half_request(addr: SocketAddr) -> (TcpStream, Instant) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /health HT").await.expect("write");
    (s, Instant::now())
}

/// How long after `since` the server closed `s` (EOF or reset), or `None`
/// if it was still open at `give_up`.
async fn closed_after(mut s: TcpStream, since: Instant, give_up: Duration) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::from_std(since + give_up);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(since.elapsed()),
            // A response (none is expected; a 408 would be fine) then the close.
            Ok(Ok(_)) => continue,
        }
    }
}

fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count())
}

#[tokio::test]
async fn half_sent_requests_are_closed_at_the_header_timeout_while_others_are_served() {
    let timeout = Duration::from_secs(2);
    let server = Server::start(&[("HTTP_HEADER_READ_TIMEOUT_SECS", "2")]).await;
    let fds_before = open_fds();

    let started = Instant::now();
    let mut slow = Vec::with_capacity(500);
    for _ in 0..500 {
        slow.push(half_request(server.addr).await);
    }
    let opened_in = started.elapsed();

    // (a) Another client is served promptly while the 500 are open.
    let asked = Instant::now();
    let res = reqwest::Client::new()
        .get(server.url("/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("a normal request is served");
    let normal_took = asked.elapsed();
    assert_eq!(res.status(), 200);
    assert!(normal_took < Duration::from_secs(1), "{normal_took:?}");
    let fds_peak = open_fds();

    // (b) The server closes every one of them, none before its timeout.
    let closed = futures::future::join_all(
        slow.into_iter()
            .map(|(s, since)| closed_after(s, since, timeout + MARGIN)),
    )
    .await;
    let all_closed_in = started.elapsed();
    let still_open = closed.iter().filter(|c| c.is_none()).count();
    assert_eq!(still_open, 0, "half-sent requests left open by the server");
    let times: Vec<Duration> = closed.into_iter().flatten().collect();
    let (first, last) = (
        times.iter().min().copied().unwrap_or_default(),
        times.iter().max().copied().unwrap_or_default(),
    );
    assert!(
        first >= timeout - Duration::from_millis(100),
        "closed before the timeout: {first:?}"
    );
    let fds_after = open_fds();
    eprintln!(
        "500 half requests opened in {opened_in:?}; normal request took {normal_took:?}; \
         each closed {first:?}..{last:?} after it was sent, all within {all_closed_in:?}; \
         fds (client and server sides, whole test process) before {fds_before:?}, \
         peak {fds_peak:?}, after {fds_after:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn at_the_connection_cap_a_new_client_waits_for_a_free_slot() {
    let timeout = Duration::from_secs(2);
    let server = Server::start(&[
        ("HTTP_HEADER_READ_TIMEOUT_SECS", "2"),
        ("MAX_CONNECTIONS", "20"),
    ])
    .await;
    let started = Instant::now();
    let mut slow = Vec::with_capacity(20);
    for _ in 0..20 {
        slow.push(half_request(server.addr).await);
    }
    // Let the server accept all 20 (each one a slot) before the next client.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let asked = Instant::now();
    let res = reqwest::Client::new()
        .get(server.url("/health"))
        .timeout(timeout + MARGIN * 2)
        .send()
        .await
        .expect("served once a slot frees");
    let waited = asked.elapsed();
    assert_eq!(res.status(), 200);
    // The slots free at the header timeout after the 20 were accepted.
    let freed_at = timeout.saturating_sub(started.elapsed() - waited);
    assert!(
        waited + Duration::from_millis(200) >= freed_at,
        "served before a slot was free: waited {waited:?}, slots free after {freed_at:?}"
    );
    assert!(waited < timeout + MARGIN, "{waited:?}");
    for (s, since) in slow {
        assert!(
            closed_after(s, since, timeout + MARGIN).await.is_some(),
            "a held slot was never freed"
        );
    }
    eprintln!("at the cap of 20, a normal request waited {waited:?} for a slot");
    server.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let (header, idle) = (Duration::from_secs(1), Duration::from_secs(3));
    let server = Server::start(&[
        ("HTTP_HEADER_READ_TIMEOUT_SECS", "1"),
        ("HTTP_IDLE_TIMEOUT_SECS", "3"),
    ])
    .await;

    // A silent new connection is waiting for headers: the shorter timeout.
    let silent = TcpStream::connect(server.addr).await.expect("connect");
    let silent = tokio::spawn(closed_after(silent, Instant::now(), header + MARGIN));

    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !ends_a_response(&response) {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "closed before the response was complete");
        response.extend_from_slice(&buf[..n]);
    }
    let done = Instant::now();
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");

    let idle_closed = closed_after(s, done, idle + MARGIN)
        .await
        .expect("the idle connection is closed");
    assert!(
        idle_closed >= idle - Duration::from_millis(100),
        "closed after {idle_closed:?}, before the idle timeout"
    );
    let silent_closed = silent
        .await
        .expect("task")
        .expect("the silent connection is closed");
    assert!(
        silent_closed >= header - Duration::from_millis(100) && silent_closed < idle,
        "silent connection closed after {silent_closed:?}"
    );
    eprintln!(
        "idle keep-alive closed after {idle_closed:?}; silent connection after {silent_closed:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_on_half_sent_requests_past_the_header_timeout() {
    let timeout = Duration::from_secs(2);
    let server = Server::start(&[("HTTP_HEADER_READ_TIMEOUT_SECS", "2")]).await;
    let mut slow = Vec::new();
    for _ in 0..10 {
        slow.push(half_request(server.addr).await);
    }
    let _silent = TcpStream::connect(server.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = Instant::now();
    server.stop().await;
    let took = stopping.elapsed();
    assert!(took < timeout + MARGIN, "shutdown took {took:?}");
    eprintln!("shutdown with 11 half-open connections took {took:?}");
}

/// Whether `bytes` hold a whole response head and its `Content-Length` body.
fn ends_a_response(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= length
}
