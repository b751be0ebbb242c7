//! A MongoDB wire-protocol proxy for `bench_load --read-cache`: it stands
//! between the load benchmark (server and direct path) and the database,
//! passes every message through, and answers a `find` of one patient by
//! `_id` that it has already seen answered, from memory. The load
//! benchmark's read by id then costs the server what it costs against a
//! database that answers at once, so the server's own CPU per read can be
//! told apart from what waiting on the stand-in (1,200-1,400 reads a
//! second on the 2-core development machine) costs it in parking and
//! waking.
//!
//!     bench_readcache --upstream 127.0.0.1:27017 [--listen 127.0.0.1:0]
//!
//! Prints `listening on <address>` once it accepts connections. Any
//! `insert`, `update`, `delete` or `findAndModify` on `patients`, and any
//! `commitTransaction`, empties the cache when it is sent and again when
//! its reply comes back, and a reply to a `find` sent before such a write
//! is not kept. Nothing but the benchmark should use it: it keeps replies
//! without regard to sessions or read concern.

use std::{
    collections::HashMap,
    process::ExitCode,
    sync::{Arc, Mutex},
};

use healthcrm::bench::cli;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

#[path = "bench_readcache/wire.rs"]
mod wire;
use wire::{classify, is_cacheable_reply, request_id, response_to, with_response_to, Kind};

const NAME: &str = "bench_readcache";
const USAGE: &str = "bench_readcache --upstream HOST:PORT [--listen 127.0.0.1:0]";

/// The largest message MongoDB sends or accepts (48 MB).
const MAX_MESSAGE: usize = 48_000_000;

struct Args {
    upstream: String,
    listen: String,
}

fn parse_args() -> Result<Args, String> {
    let mut upstream = None;
    let mut listen = "127.0.0.1:0".to_owned();
    for (flag, value) in cli::pairs()? {
        match flag.as_str() {
            "--upstream" => upstream = Some(value),
            "--listen" => listen = value,
            _ => return Err(cli::unknown(&flag)),
        }
    }
    let upstream = upstream.ok_or("--upstream HOST:PORT is required")?;
    Ok(Args { upstream, listen })
}

/// The kept replies, by the `find` they answer, and how many times the
/// cache has been emptied: a reply is kept only if no write came between
/// its request and it.
#[derive(Default)]
struct Cache {
    replies: HashMap<Vec<u8>, Arc<Vec<u8>>>,
    generation: u64,
}

impl Cache {
    fn empty(&mut self) {
        self.replies.clear();
        self.generation += 1;
    }
}

type Shared = Arc<Mutex<Cache>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The request on a connection waiting for its reply, when the reply
/// matters to the cache.
enum Pending {
    /// A `find` not yet kept: its key and the cache's generation when it
    /// went up.
    Find { key: Vec<u8>, generation: u64 },
    /// A write (or a commit): the cache is emptied again when it has taken
    /// effect, so that no reply read before it stays kept.
    Write,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    cli::main(NAME, USAGE, parse_args(), run).await
}

async fn run(args: Args) -> Result<(), String> {
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {addr}");
    let cache = Shared::default();
    loop {
        let (client, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let (upstream, cache) = (args.upstream.clone(), cache.clone());
        tokio::spawn(async move {
            if let Err(e) = proxy(client, &upstream, cache).await {
                eprintln!("{NAME}: connection closed: {e}");
            }
        });
    }
}

/// Reads one wire message (its 16-byte header and body), or `None` at a
/// clean end of stream.
async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = i32::from_le_bytes(len);
    let n = usize::try_from(n)
        .ok()
        .filter(|n| (16..=MAX_MESSAGE).contains(n))
        .ok_or_else(|| std::io::Error::other(format!("bad message length {n}")))?;
    let mut msg = vec![0u8; n];
    msg[..4].copy_from_slice(&len);
    r.read_exact(&mut msg[4..]).await?;
    Ok(Some(msg))
}

/// One client connection, with its own upstream connection. Requests go
/// up in order and replies come back in order; a kept reply goes back
/// without going up. Either side closing closes both.
async fn proxy(client: TcpStream, upstream: &str, cache: Shared) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    let (mut client_r, client_w) = client.into_split();
    let (mut up_r, mut up_w) = up.into_split();
    // Both directions write to the client: through one writer.
    let client_w = tokio::sync::Mutex::new(client_w);
    let send = |msg: Vec<u8>| {
        let client_w = &client_w;
        async move { client_w.lock().await.write_all(&msg).await }
    };
    // The request waiting for its reply, by its request id.
    let pending: Mutex<Option<(i32, Pending)>> = Mutex::new(None);
    let requests = async {
        while let Some(msg) = read_message(&mut client_r).await? {
            let Some(request_id) = request_id(&msg) else {
                break;
            };
            match classify(&msg) {
                Kind::Find { key } => {
                    let (kept, generation) = {
                        let c = lock(&cache);
                        (c.replies.get(&key).cloned(), c.generation)
                    };
                    if let Some(reply) = kept {
                        send(with_response_to(&reply, request_id)).await?;
                        continue;
                    }
                    *lock(&pending) = Some((request_id, Pending::Find { key, generation }));
                }
                Kind::Write => {
                    lock(&cache).empty();
                    *lock(&pending) = Some((request_id, Pending::Write));
                }
                Kind::Other => {}
            }
            up_w.write_all(&msg).await?;
        }
        std::io::Result::Ok(())
    };
    let replies = async {
        while let Some(msg) = read_message(&mut up_r).await? {
            let answered = {
                let mut p = lock(&pending);
                match p.as_ref() {
                    Some((id, _)) if response_to(&msg) == Some(*id) => p.take(),
                    _ => None,
                }
            };
            match answered {
                Some((_, Pending::Find { key, generation })) if is_cacheable_reply(&msg) => {
                    let mut c = lock(&cache);
                    if c.generation == generation {
                        c.replies.insert(key, Arc::new(msg.clone()));
                    }
                }
                Some((_, Pending::Write)) => lock(&cache).empty(),
                _ => {}
            }
            send(msg).await?;
        }
        std::io::Result::Ok(())
    };
    tokio::select! {
        r = requests => r,
        r = replies => r,
    }
}

#[cfg(test)]
#[path = "bench_readcache/tests.rs"]
mod tests;
