//! Service configuration: one value built once from the environment (and `.env`).
//!
//! Every key is listed with a comment in `.env.example`. Unsafe or malformed
//! values stop the server at startup with a message naming the key, rather
//! than surfacing later as odd behaviour.

use std::{net::SocketAddr, time::Duration};

use secrecy::{ExposeSecret, SecretString};

mod documents;
pub use documents::{DocumentSettings, DocumentStore};

/// The JWT secret shipped in `.env.example`; a deployment that copies the
/// example file verbatim must not start with a publicly known secret.
pub const EXAMPLE_JWT_SECRET: &str = "change-me-to-a-long-random-secret-of-at-least-32-bytes";

/// Minimum length of the HS256 signing secret (RFC 7518 §3.2: key >= hash size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// A shorter `METRICS_TOKEN` could be guessed.
pub const MIN_METRICS_TOKEN_BYTES: usize = 16;

/// Upper bound of `MAX_CONNECTIONS`: each connection holds a file descriptor,
/// and no process here is allowed a million of them.
pub const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind_addr: SocketAddr,
    pub mongodb_uri: SecretString,
    pub mongodb_db: String,
    /// How long the driver looks for a usable server before an operation fails
    /// (and the request answers 503).
    pub mongodb_timeout: Duration,
    pub jwt_secret: SecretString,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Origins allowed to call the API from a browser; empty means none.
    pub cors_origins: Vec<String>,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// How long a client may take to send a request's headers, counted from
    /// the connection's opening or the request's first byte.
    pub http_header_read_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub http_idle_timeout: Duration,
    /// Open connections at most; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// The server's runtime worker threads (`WORKER_THREADS`); `None`, one
    /// per core.
    pub worker_threads: Option<usize>,
    pub log_format: LogFormat,
    /// Consecutive failed logins that lock an account, and for how long.
    pub lockout_threshold: i32,
    pub lockout_duration: Duration,
    /// Requests per minute per client IP on the login and refresh endpoints.
    pub auth_rate_limit_per_minute: u32,
    /// Audit events being written at once; past it responses wait.
    pub audit_queue_capacity: usize,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` is believed
    /// (`TRUSTED_PROXIES`); from anyone else the socket peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The one header those proxies write (`TRUSTED_PROXY_HEADER`).
    pub trusted_proxy_header: ProxyHeader,
    /// Password hashes computed at once (each takes ~19 MiB and a core).
    pub password_hash_concurrency: usize,
    /// How long another instance's change to a user or to the permission
    /// matrix may take to be seen here.
    pub user_cache_ttl: Duration,
    pub permission_cache_ttl: Duration,
    /// How long this instance reuses the write counts it read before
    /// reading them again (another instance's writes show within it).
    pub report_cache_poll: Duration,
    /// Reports and dashboards kept at once (0: computed every request).
    pub report_cache_entries: usize,
    /// How long user and hospital names are reused in responses.
    pub name_cache_ttl: Duration,
    /// Whether transactions run one at a time (`TRANSACTION_GATE`).
    pub transaction_gate: TransactionGate,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_ttl: Duration,
    /// What the consistency check at start-up does (`DOCTOR_ON_START`).
    pub doctor_on_start: DoctorOnStart,
    /// Patient documents: key, store and size limit.
    pub documents: DocumentSettings,
    /// The bearer token `/metrics` asks for (`METRICS_TOKEN`); unset, the
    /// route answers 404 and nothing is recorded.
    pub metrics_token: Option<SecretString>,
    /// Whether `/metrics` also times each database command by name
    /// (`METRICS_DB_COMMANDS=on`; off by default, as it costs a copy and a
    /// decode of every command and reply).
    pub metrics_db_commands: bool,
    /// Where traces go (`OTEL_EXPORTER_OTLP_ENDPOINT`, an http(s) base URL;
    /// the exporter posts to `{endpoint}/v1/traces`). Exported only by a
    /// build with the `otel` feature; unset, nothing is exported.
    pub otel_endpoint: Option<String>,
    pub seed_admin_email: Option<String>,
    pub seed_admin_password: Option<SecretString>,
    pub seed_admin_name: String,
}

/// An absolute http(s) URL with a host.
fn is_http_url(s: &str) -> bool {
    s.parse::<axum::http::Uri>().is_ok_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https"))
            && u.authority().is_some_and(|a| !a.host().is_empty())
    })
}

/// `TRANSACTION_GATE`: `auto` decides from the deployment (serial on a
/// server that runs transactions without isolating them, the local
/// stand-in); `serial` and `open` force it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionGate {
    Auto,
    Serial,
    Open,
}

/// `TRUSTED_PROXY_HEADER`: which forwarding header the trusted proxies
/// write. Only that one is read: a proxy that appends to `X-Forwarded-For`
/// passes a client's own `Forwarded` through untouched, and believing it
/// would let the client choose its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    XForwardedFor,
    Forwarded,
}

/// `DOCTOR_ON_START`: `repair` books missing ledger entries, sets disagreeing
/// deletion marks and reports the rest, `report` only reports, `off` skips
/// the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoctorOnStart {
    Repair,
    Report,
    Off,
}

/// All problems found in the environment, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Reads the process environment (after loading `.env` if one exists).
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// [`Config::from_env`] for the tools that sign no tokens (the doctor,
    /// the demo seed): a missing JWT secret must not stop them, so a random
    /// one stands in.
    pub fn for_tools() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        let placeholder = uuid::Uuid::new_v4().simple().to_string().repeat(2);
        Self::from_lookup(|k| {
            std::env::var(k)
                .ok()
                .or_else(|| (k == "JWT_SECRET").then(|| placeholder.clone()))
        })
    }

    /// Builds the configuration from any key lookup, so tests need not touch
    /// the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        let get = |key: &str| {
            lookup(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let bind_addr = parse_opt(&get, "BIND_ADDR", &mut errors)
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080)));
        let mongodb_uri = get("MONGODB_URI").unwrap_or_else(|| "mongodb://127.0.0.1:27017".into());
        if !(mongodb_uri.starts_with("mongodb://") || mongodb_uri.starts_with("mongodb+srv://")) {
            errors.push("MONGODB_URI must start with mongodb:// or mongodb+srv://".into());
        }
        let mongodb_db = get("MONGODB_DB").unwrap_or_else(|| "healthcrm".into());
        if !valid_db_name(&mongodb_db) {
            errors
                .push("MONGODB_DB may contain only letters, digits and underscores (1-63)".into());
        }
        let mongodb_timeout_ms: u64 =
            parse_opt(&get, "MONGODB_TIMEOUT_MS", &mut errors).unwrap_or(5_000);

        let jwt_secret = match get("JWT_SECRET") {
            None => {
                errors.push("JWT_SECRET is required (at least 32 random bytes)".into());
                String::new()
            }
            Some(s) if s == EXAMPLE_JWT_SECRET => {
                errors
                    .push("JWT_SECRET is the value from .env.example; set a random secret".into());
                s
            }
            Some(s) if s.len() < MIN_JWT_SECRET_BYTES => {
                errors.push(format!(
                    "JWT_SECRET is {} bytes; it must be at least {MIN_JWT_SECRET_BYTES}",
                    s.len()
                ));
                s
            }
            Some(s) => s,
        };

        let access_secs: u64 = parse_opt(&get, "ACCESS_TOKEN_TTL_SECS", &mut errors).unwrap_or(900);
        let refresh_secs: u64 =
            parse_opt(&get, "REFRESH_TOKEN_TTL_SECS", &mut errors).unwrap_or(14 * 24 * 3600);
        if access_secs == 0 || refresh_secs == 0 {
            errors.push("token lifetimes must be greater than zero".into());
        }
        if access_secs >= refresh_secs {
            errors.push("ACCESS_TOKEN_TTL_SECS must be shorter than REFRESH_TOKEN_TTL_SECS".into());
        }

        let cors_origins: Vec<String> = get("CORS_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for origin in &cors_origins {
            if origin == "*" {
                errors.push("CORS_ORIGINS may not be '*': list the SPA's origins".into());
            } else if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                errors.push(format!(
                    "CORS_ORIGINS entry '{origin}' must start with http(s)://"
                ));
            }
        }

        let body_limit_bytes: usize =
            parse_opt(&get, "BODY_LIMIT_BYTES", &mut errors).unwrap_or(1024 * 1024);
        if body_limit_bytes < 1024 {
            errors.push("BODY_LIMIT_BYTES must be at least 1024".into());
        }
        let timeout_secs: u64 = parse_opt(&get, "REQUEST_TIMEOUT_SECS", &mut errors).unwrap_or(30);
        if timeout_secs == 0 {
            errors.push("REQUEST_TIMEOUT_SECS must be greater than zero".into());
        }
        let header_read_secs = parse_in(
            &get,
            "HTTP_HEADER_READ_TIMEOUT_SECS",
            10_u64,
            1..=3600,
            &mut errors,
        );
        let idle_secs = parse_in(
            &get,
            "HTTP_IDLE_TIMEOUT_SECS",
            60_u64,
            1..=86_400,
            &mut errors,
        );
        let max_connections = parse_in(
            &get,
            "MAX_CONNECTIONS",
            1024,
            1..=MAX_CONNECTIONS_LIMIT,
            &mut errors,
        );
        let worker_threads: Option<usize> = parse_opt(&get, "WORKER_THREADS", &mut errors);
        if worker_threads.is_some_and(|n| !(1..=1024).contains(&n)) {
            errors.push("WORKER_THREADS must be between 1 and 1024".into());
        }

        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                errors.push(format!(
                    "LOG_FORMAT must be 'text' or 'json', not '{other}'"
                ));
                LogFormat::Text
            }
        };

        let lockout_threshold: i32 =
            parse_opt(&get, "LOGIN_LOCKOUT_THRESHOLD", &mut errors).unwrap_or(10);
        let lockout_secs: u64 = parse_opt(&get, "LOGIN_LOCKOUT_SECS", &mut errors).unwrap_or(900);
        if lockout_threshold < 1 {
            errors.push("LOGIN_LOCKOUT_THRESHOLD must be at least 1".into());
        }
        let auth_rate_limit_per_minute: u32 =
            parse_opt(&get, "AUTH_RATE_LIMIT_PER_MINUTE", &mut errors).unwrap_or(60);
        let audit_queue_capacity = parse_in(
            &get,
            "AUDIT_QUEUE_CAPACITY",
            1024_usize,
            1..=1_000_000,
            &mut errors,
        );
        let trusted_proxies = get("TRUSTED_PROXIES")
            .map(|v| parse_networks("TRUSTED_PROXIES", &v, &mut errors))
            .unwrap_or_default();
        let trusted_proxy_header = parse_proxy_header(get("TRUSTED_PROXY_HEADER"), &mut errors);
        if auth_rate_limit_per_minute < 1 {
            errors.push("AUTH_RATE_LIMIT_PER_MINUTE must be at least 1".into());
        }
        let default_hashers = std::thread::available_parallelism()
            .map(|n| n.get() / 2)
            .unwrap_or(1)
            .max(1);
        let password_hash_concurrency: usize =
            parse_opt(&get, "PASSWORD_HASH_CONCURRENCY", &mut errors).unwrap_or(default_hashers);
        if password_hash_concurrency < 1 {
            errors.push("PASSWORD_HASH_CONCURRENCY must be at least 1".into());
        }
        let user_cache_ms: u64 = parse_opt(&get, "USER_CACHE_TTL_MS", &mut errors).unwrap_or(5_000);
        let permission_cache_ms: u64 =
            parse_opt(&get, "PERMISSION_CACHE_TTL_MS", &mut errors).unwrap_or(30_000);
        let report_cache_poll_ms: u64 =
            parse_opt(&get, "REPORT_CACHE_POLL_MS", &mut errors).unwrap_or(1_000);
        let report_cache_entries: usize =
            parse_opt(&get, "REPORT_CACHE_ENTRIES", &mut errors).unwrap_or(256);

        let name_cache_ms: u64 =
            parse_opt(&get, "NAME_CACHE_TTL_MS", &mut errors).unwrap_or(30_000);

        let transaction_gate = match get("TRANSACTION_GATE").as_deref() {
            None | Some("auto") => TransactionGate::Auto,
            Some("serial") => TransactionGate::Serial,
            Some("open") => TransactionGate::Open,
            Some(other) => {
                errors.push(format!(
                    "TRANSACTION_GATE must be 'auto', 'serial' or 'open', not '{other}'"
                ));
                TransactionGate::Auto
            }
        };
        let idempotency_secs: u64 =
            parse_opt(&get, "IDEMPOTENCY_TTL_SECS", &mut errors).unwrap_or(86_400);
        if idempotency_secs == 0 {
            errors.push("IDEMPOTENCY_TTL_SECS must be greater than zero".into());
        }
        let doctor_on_start = match get("DOCTOR_ON_START").as_deref() {
            None | Some("repair") => DoctorOnStart::Repair,
            Some("report") => DoctorOnStart::Report,
            Some("off") => DoctorOnStart::Off,
            Some(other) => {
                errors.push(format!(
                    "DOCTOR_ON_START must be 'repair', 'report' or 'off', not '{other}'"
                ));
                DoctorOnStart::Repair
            }
        };

        let documents = documents::parse(&get, &mut errors);
        let metrics_token = get("METRICS_TOKEN");
        if metrics_token
            .as_ref()
            .is_some_and(|t| t.len() < MIN_METRICS_TOKEN_BYTES)
        {
            errors.push(format!(
                "METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_BYTES} characters (or unset, which turns /metrics off)"
            ));
        }

        let metrics_db_commands = match get("METRICS_DB_COMMANDS").as_deref() {
            None | Some("off") => false,
            Some("on") => true,
            Some(other) => {
                errors.push(format!(
                    "METRICS_DB_COMMANDS must be 'on' or 'off', not '{other}'"
                ));
                false
            }
        };

        let otel_endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT");
        if let Some(e) = &otel_endpoint {
            if !is_http_url(e) {
                errors.push(format!(
                    "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL \
                     (e.g. http://127.0.0.1:4318), not '{e}'"
                ));
            }
        }

        let seed_admin_email = get("SEED_ADMIN_EMAIL").map(|e| e.to_lowercase());
        let seed_admin_password = get("SEED_ADMIN_PASSWORD").map(SecretString::from);
        let seed_admin_name = get("SEED_ADMIN_NAME").unwrap_or_else(|| "Administrator".into());

        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        Ok(Config {
            bind_addr,
            mongodb_uri: SecretString::from(mongodb_uri),
            mongodb_db,
            mongodb_timeout: Duration::from_millis(mongodb_timeout_ms),
            jwt_secret: SecretString::from(jwt_secret),
            access_token_ttl: Duration::from_secs(access_secs),
            refresh_token_ttl: Duration::from_secs(refresh_secs),
            cors_origins,
            body_limit_bytes,
            request_timeout: Duration::from_secs(timeout_secs),
            http_header_read_timeout: Duration::from_secs(header_read_secs),
            http_idle_timeout: Duration::from_secs(idle_secs),
            max_connections,
            worker_threads,
            log_format,
            lockout_threshold,
            lockout_duration: Duration::from_secs(lockout_secs),
            auth_rate_limit_per_minute,
            trusted_proxies,
            trusted_proxy_header,
            audit_queue_capacity,
            password_hash_concurrency,
            user_cache_ttl: Duration::from_millis(user_cache_ms),
            permission_cache_ttl: Duration::from_millis(permission_cache_ms),
            report_cache_poll: Duration::from_millis(report_cache_poll_ms),
            report_cache_entries,
            name_cache_ttl: Duration::from_millis(name_cache_ms),
            transaction_gate,
            idempotency_ttl: Duration::from_secs(idempotency_secs),
            doctor_on_start,
            documents,
            metrics_token: metrics_token.map(SecretString::from),
            metrics_db_commands,
            otel_endpoint,
            seed_admin_email,
            seed_admin_password,
            seed_admin_name,
        })
    }

    pub fn jwt_secret_bytes(&self) -> &[u8] {
        self.jwt_secret.expose_secret().as_bytes()
    }
}

/// The parsed value of `key`, or `None` when unset; a value that does not
/// parse is recorded in `errors` (and also yields `None`).
fn parse_opt<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    errors: &mut Vec<String>,
) -> Option<T> {
    let raw = get(key)?;
    match raw.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(format!("{key} has an invalid value '{raw}'"));
            None
        }
    }
}

/// `key` as a number within `range`, `default` when unset; a value that
/// does not parse or lies outside is an error naming the key and the range.
fn parse_in<T>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: T,
    range: std::ops::RangeInclusive<T>,
    errors: &mut Vec<String>,
) -> T
where
    T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display,
{
    let Some(value) = parse_opt(get, key, errors) else {
        return default;
    };
    if range.contains(&value) {
        return value;
    }
    errors.push(format!(
        "{key} must be between {} and {}",
        range.start(),
        range.end()
    ));
    default
}

fn parse_proxy_header(raw: Option<String>, errors: &mut Vec<String>) -> ProxyHeader {
    match raw.map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("x-forwarded-for") => ProxyHeader::XForwardedFor,
        Some("forwarded") => ProxyHeader::Forwarded,
        Some(other) => {
            errors.push(format!(
                "TRUSTED_PROXY_HEADER must be x-forwarded-for or forwarded, not '{other}'"
            ));
            ProxyHeader::XForwardedFor
        }
    }
}

/// A comma-separated list of networks (`10.0.0.0/8`, `fd00::/8`) or single
/// addresses (`192.0.2.7`, taken as /32 or /128).
fn parse_networks(key: &str, raw: &str, errors: &mut Vec<String>) -> Vec<ipnet::IpNet> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let parsed = s
                .parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => Some(net.trunc()),
                Err(_) => {
                    errors.push(format!(
                        "{key} entry '{s}' is not an address or a network like 10.0.0.0/8"
                    ));
                    None
                }
            }
        })
        .collect()
}

/// Database names the local stand-in and MongoDB both accept.
pub fn valid_db_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
