//! `--read-cache yes`: `bench_readcache` in a process of its own between
//! the benchmark and the database, and the reads that fill it.

use healthcrm::{bench, domain::PatientId, error::AppError, AppState};

/// `bench_readcache`, running; stopped when dropped, however the run ends.
pub struct ReadCache {
    process: std::process::Child,
    /// The URI to reach the database through it.
    pub uri: String,
}

impl ReadCache {
    /// Starts it in front of the database at `uri`, beside this binary.
    pub fn start(uri: &str) -> Result<Self, String> {
        use std::io::BufRead as _;
        let upstream = single_host(uri)?;
        let binary = std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("bench_readcache");
        let mut process = std::process::Command::new(&binary)
            .args(["--upstream", &upstream])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut first = String::new();
        let read = process
            .stdout
            .take()
            .map(|out| std::io::BufReader::new(out).read_line(&mut first));
        let Some(addr) = first.trim().strip_prefix("listening on ") else {
            stop(&mut process);
            return Err(format!(
                "bench_readcache did not start ({read:?}: {first:?})"
            ));
        };
        // Direct: the driver must not follow the replica set's host list
        // round the proxy.
        let uri = format!("mongodb://{addr}/?directConnection=true");
        Ok(Self { process, uri })
    }
}

impl Drop for ReadCache {
    fn drop(&mut self) {
        stop(&mut self.process);
    }
}

fn stop(process: &mut std::process::Child) {
    let _ = process.kill();
    let _ = process.wait();
}

/// The `host:port` of a `mongodb://` URI naming one host without
/// credentials or TLS (MongoDB's port when it names none). Its other
/// options are not carried over: the read cache is reached with
/// `directConnection=true` alone.
pub fn single_host(uri: &str) -> Result<String, String> {
    let refuse = || {
        format!("--read-cache needs MONGODB_URI to be mongodb:// with one host, no credentials and no TLS, not {uri}")
    };
    let rest = uri.strip_prefix("mongodb://").ok_or_else(refuse)?;
    let (host, options) = match rest.split_once(['/', '?']) {
        Some((host, options)) => (host, options),
        None => (rest, ""),
    };
    let tls = ["tls=true", "ssl=true"]
        .iter()
        .any(|o| options.to_ascii_lowercase().contains(o));
    if host.is_empty() || host.contains([',', '@']) || tls {
        return Err(refuse());
    }
    // A port after the host (or after an IPv6 address's brackets).
    let has_port = match host.rsplit_once(']') {
        Some((_, after)) => after.starts_with(':'),
        None => host.contains(':'),
    };
    Ok(if has_port {
        host.to_owned()
    } else {
        format!("{host}:27017")
    })
}

/// Reads every patient through the cache, so that the read row is
/// answered from memory from its first request; then again, and fails
/// unless the second pass is at least twice as fast (so the cache did
/// answer) and every patient was found both times.
pub async fn warm(state: &AppState, ids: &std::sync::Arc<Vec<PatientId>>) -> Result<(), String> {
    let mut rates = [0.0; 2];
    for rate in &mut rates {
        let (st, all) = (state.clone(), ids.clone());
        let sample = bench::measure_fn(16, ids.len(), move |i| {
            let (st, id) = (st.clone(), all[i]);
            async move {
                st.repos
                    .patients
                    .find(id)
                    .await?
                    .map(|_| ())
                    .ok_or_else(|| AppError::not_found("patient"))
            }
        })
        .await;
        if sample.errors > 0 {
            return Err(format!(
                "{} of {} reads failed while filling the read cache",
                sample.errors,
                ids.len()
            ));
        }
        *rate = sample.per_second();
    }
    eprintln!(
        "read cache: {} patients read at {:.0}/s, then at {:.0}/s",
        ids.len(),
        rates[0],
        rates[1]
    );
    if rates[1] < 2.0 * rates[0] {
        return Err(
            "the read cache answered no faster than the database: is the read of a patient still a find by _id?"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::single_host;

    #[test]
    fn the_read_cache_takes_a_uri_of_one_host_without_credentials_or_tls() {
        for (uri, host) in [
            ("mongodb://127.0.0.1:27017", "127.0.0.1:27017"),
            ("mongodb://db.local:27018/?replicaSet=rs0", "db.local:27018"),
            ("mongodb://db.local/crm", "db.local:27017"),
            ("mongodb://db.local", "db.local:27017"),
            ("mongodb://[::1]:27019/", "[::1]:27019"),
            ("mongodb://[::1]", "[::1]:27017"),
        ] {
            assert_eq!(single_host(uri).as_deref(), Ok(host), "{uri}");
        }
        for bad in [
            "mongodb+srv://cluster.example.net",
            "mongodb://a:27017,b:27017/?replicaSet=rs0",
            "mongodb://user:pass@db.local:27017",
            "mongodb://db.local/?tls=true",
            "mongodb://db.local:27017/crm?authSource=admin&SSL=true",
            "mongodb://",
            "127.0.0.1:27017",
        ] {
            assert!(single_host(bad).is_err(), "{bad} was accepted");
        }
    }
}
