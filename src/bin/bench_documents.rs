//! Document throughput benchmark (`scripts/bench.sh documents`).
//!
//! Runs the release server as its own process on a throwaway database
//! with a local document store, then uploads `--rounds` documents of
//! `--mib` MiB per client at each concurrency (streamed multipart, the
//! bytes generated as they are sent) and downloads them all back
//! (streamed, hashed on arrival and compared). Prints MiB/s both ways,
//! the p50 of one transfer, and the server's peak RSS after each
//! concurrency.
//!
//!     bench_documents [--mib 25] [--concurrency 1,4] [--rounds 4]

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use futures::{stream, StreamExt};
use healthcrm::bench::{self, cli, ms, percentile};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

struct Args {
    mib: usize,
    concurrency: Vec<usize>,
    rounds: usize,
}

const NAME: &str = "bench_documents";
const USAGE: &str = "bench_documents [--mib 25] [--concurrency 1,4] [--rounds 4]";
const MIB: usize = 1024 * 1024;
const BOUNDARY: &str = "bench-boundary-5b2c";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        mib: 25,
        concurrency: vec![1, 4],
        rounds: 4,
    };
    for (flag, value) in cli::pairs()? {
        match flag.as_str() {
            "--mib" => args.mib = cli::number(&flag, &value)?,
            "--concurrency" => args.concurrency = cli::numbers(&flag, &value)?,
            "--rounds" => args.rounds = cli::number(&flag, &value)?,
            _ => return Err(cli::unknown(&flag)),
        }
    }
    if args.mib == 0 || args.rounds == 0 || args.concurrency.contains(&0) {
        return Err("sizes, rounds and concurrencies must be at least 1".into());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::main(NAME, USAGE, parse_args(), run).await
}

/// The `seed`-th file of `len` bytes, in 1 MiB pieces (a PDF to the server).
fn pieces(len: usize, seed: u64) -> impl Iterator<Item = Vec<u8>> {
    let mut x = 0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut made = 0;
    std::iter::from_fn(move || {
        if made >= len {
            return None;
        }
        let n = MIB.min(len - made);
        let mut buf = Vec::with_capacity(n + 8);
        if made == 0 {
            buf.extend_from_slice(b"%PDF-1.7\n");
        }
        while buf.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.extend_from_slice(&x.to_le_bytes());
        }
        buf.truncate(n);
        made += n;
        Some(buf)
    })
}

async fn upload(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    len: usize,
    seed: u64,
) -> Result<(String, String, Duration), String> {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"category\"\r\n\r\nimaging\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let mut hasher = Sha256::new();
    for p in pieces(len, seed) {
        hasher.update(&p);
    }
    let want = format!("{:x}", hasher.finalize());
    let parts = std::iter::once(head.into_bytes())
        .chain(pieces(len, seed))
        .chain(std::iter::once(tail.into_bytes()))
        .map(Ok::<_, std::io::Error>);
    let started = Instant::now();
    let res = http
        .post(url)
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(reqwest::Body::wrap_stream(stream::iter(parts)))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status();
    let body: Value = res.json().await.map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if status.as_u16() != 201 || body["sha256"] != want.as_str() {
        return Err(format!("upload answered {status}: {body}"));
    }
    let id = body["id"].as_str().ok_or("no id")?.to_owned();
    Ok((id, want, took))
}

async fn download(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    want: &str,
) -> Result<(usize, Duration), String> {
    let started = Instant::now();
    let res = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("download answered {}", res.status()));
    }
    let mut body = res.bytes_stream();
    let mut hasher = Sha256::new();
    let mut n = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        n += chunk.len();
        hasher.update(&chunk);
    }
    let took = started.elapsed();
    if format!("{:x}", hasher.finalize()) != want {
        return Err("a download did not match its upload".into());
    }
    Ok((n, took))
}

async fn run(args: Args) -> Result<(), String> {
    let binary = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("healthcrm");
    let limit = (args.mib * MIB + MIB).to_string();
    let srv = bench::spawn(&[("DOCUMENT_MAX_BYTES", &limit)], &binary).await?;
    let token = srv.admin_token().await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| e.to_string())?;
    let patient: Value = http
        .post(format!("{}/api/v1/patients", srv.base))
        .bearer_auth(&token)
        .json(&json!({"name": "Bench Scan", "country": "DE"}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let patient = patient["id"].as_str().ok_or("no patient id")?.to_owned();
    let up_url = format!("{}/api/v1/patients/{patient}/documents", srv.base);
    let len = args.mib * MIB;

    println!(
        "Documents of {} MiB, {} per client, release server on the local stand-in (metadata) and a local directory store:\n",
        args.mib, args.rounds
    );
    println!("| concurrency | upload MiB/s | upload p50 | download MiB/s | download p50 | server peak RSS |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut seed = 0u64;
    for &c in &args.concurrency {
        let n = c * args.rounds;
        let seeds: Vec<u64> = (0..n as u64).map(|i| seed + i).collect();
        seed += n as u64;
        let started = Instant::now();
        let ups: Vec<Result<(String, String, Duration), String>> = stream::iter(seeds)
            .map(|s| {
                let (http, url, token) = (&http, &up_url, &token);
                async move { upload(http, url, token, len, s).await }
            })
            .buffer_unordered(c)
            .collect()
            .await;
        let up_elapsed = started.elapsed();
        let ups: Vec<(String, String, Duration)> = ups.into_iter().collect::<Result<_, _>>()?;
        let started = Instant::now();
        let downs: Vec<Result<(usize, Duration), String>> = stream::iter(&ups)
            .map(|(id, want, _)| {
                let url = format!("{}/api/v1/documents/{id}/content", srv.base);
                let (http, token) = (&http, &token);
                async move { download(http, &url, token, want).await }
            })
            .buffer_unordered(c)
            .collect()
            .await;
        let down_elapsed = started.elapsed();
        let downs: Vec<(usize, Duration)> = downs.into_iter().collect::<Result<_, _>>()?;
        let total_mib = (n * len) as f64 / MIB as f64;
        let mut up_lat: Vec<Duration> = ups.iter().map(|u| u.2).collect();
        up_lat.sort();
        let mut down_lat: Vec<Duration> = downs.iter().map(|d| d.1).collect();
        down_lat.sort();
        let peak = srv.peak_rss().unwrap_or(0) as f64 / MIB as f64;
        println!(
            "| {c} | {:.0} | {:.0} ms | {:.0} | {:.0} ms | {peak:.1} MiB |",
            total_mib / up_elapsed.as_secs_f64(),
            ms(percentile(&up_lat, 0.5)),
            total_mib / down_elapsed.as_secs_f64(),
            ms(percentile(&down_lat, 0.5)),
        );
    }
    srv.finish().await;
    Ok(())
}
