//! `bench_load`'s arguments.

use std::path::PathBuf;

use healthcrm::bench::cli;

pub struct Args {
    pub patients: usize,
    pub requests: usize,
    pub concurrency: Vec<usize>,
    /// The server's runtime worker threads; `None` = its default.
    pub server_workers: Option<usize>,
    /// Reads of patients answered by `bench_readcache` once seen.
    pub read_cache: bool,
    pub out: PathBuf,
}

pub const USAGE: &str = "bench_load [--patients 10000] [--requests 320] [--concurrency 1,16,64] \
     [--server-workers N] [--read-cache yes|no] [--out FILE]";

pub fn parse_args() -> Result<Args, String> {
    args_from(cli::pairs()?)
}

fn args_from(pairs: Vec<(String, String)>) -> Result<Args, String> {
    let mut args = Args {
        patients: 10_000,
        requests: 320,
        concurrency: vec![1, 16, 64],
        server_workers: None,
        read_cache: false,
        out: PathBuf::from("target/bench/load.md"),
    };
    for (flag, value) in pairs {
        match flag.as_str() {
            "--patients" => args.patients = cli::number(&flag, &value)?,
            "--requests" => args.requests = cli::number(&flag, &value)?,
            "--concurrency" => args.concurrency = cli::numbers(&flag, &value)?,
            "--server-workers" => match cli::number(&flag, &value)? {
                0 => return Err("--server-workers must be at least 1".into()),
                n => args.server_workers = Some(n),
            },
            "--read-cache" => {
                args.read_cache = match value.as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(format!("--read-cache: '{value}' is not yes or no")),
                }
            }
            "--out" => args.out = PathBuf::from(value),
            _ => return Err(cli::unknown(&flag)),
        }
    }
    Ok(args)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
