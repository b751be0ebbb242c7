use super::*;
use std::collections::HashMap;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

#[test]
fn defaults_apply_when_only_the_secret_is_set() {
    let c = cfg(&[("JWT_SECRET", SECRET)]).expect("valid");
    assert_eq!(c.bind_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(c.mongodb_db, "healthcrm");
    assert_eq!(c.access_token_ttl, Duration::from_secs(900));
    assert_eq!(c.refresh_token_ttl, Duration::from_secs(14 * 24 * 3600));
    assert!(c.cors_origins.is_empty());
    assert_eq!(c.http_header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.http_idle_timeout, Duration::from_secs(60));
    assert_eq!(c.max_connections, 1024);
    assert_eq!(c.worker_threads, None);
    assert_eq!(c.report_cache_poll, Duration::from_secs(1));
    assert_eq!(c.report_cache_entries, 256);
}

#[test]
fn connection_limits_are_read_and_checked() {
    let c = cfg(&[
        ("JWT_SECRET", SECRET),
        ("HTTP_HEADER_READ_TIMEOUT_SECS", "2"),
        ("HTTP_IDLE_TIMEOUT_SECS", "30"),
        ("MAX_CONNECTIONS", "20"),
        ("WORKER_THREADS", "1"),
    ])
    .expect("valid");
    assert_eq!(c.http_header_read_timeout, Duration::from_secs(2));
    assert_eq!(c.http_idle_timeout, Duration::from_secs(30));
    assert_eq!(c.max_connections, 20);
    assert_eq!(c.worker_threads, Some(1));

    for (key, bad) in [
        ("HTTP_HEADER_READ_TIMEOUT_SECS", "0"),
        ("HTTP_HEADER_READ_TIMEOUT_SECS", "ten"),
        ("HTTP_IDLE_TIMEOUT_SECS", "0"),
        ("HTTP_IDLE_TIMEOUT_SECS", "-5"),
        ("MAX_CONNECTIONS", "0"),
        ("MAX_CONNECTIONS", "1000001"),
        ("MAX_CONNECTIONS", "lots"),
        ("WORKER_THREADS", "0"),
        ("WORKER_THREADS", "1025"),
        ("WORKER_THREADS", "-1"),
        ("WORKER_THREADS", "two"),
    ] {
        let e = cfg(&[("JWT_SECRET", SECRET), (key, bad)]).unwrap_err();
        assert_eq!(e.0.len(), 1, "{key}={bad}: {e}");
        assert!(e.to_string().contains(key), "{key}={bad}: {e}");
    }
}

#[test]
fn the_trace_endpoint_must_be_an_http_url() {
    for bad in [
        "127.0.0.1:4318",
        "grpc://collector:4317",
        "http://",
        "not a url",
    ] {
        let e = cfg(&[("JWT_SECRET", SECRET), ("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]).unwrap_err();
        assert!(
            e.to_string().contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
            "{bad}: {e}"
        );
    }
    for good in ["http://127.0.0.1:4318", "https://otel.example.com/otlp/"] {
        let c = cfg(&[
            ("JWT_SECRET", SECRET),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", good),
        ])
        .expect(good);
        assert_eq!(c.otel_endpoint.as_deref(), Some(good));
    }
    assert_eq!(
        cfg(&[("JWT_SECRET", SECRET)]).expect("ok").otel_endpoint,
        None
    );
}

#[test]
fn missing_short_or_example_secret_is_refused() {
    let e = cfg(&[]).unwrap_err();
    assert!(e.to_string().contains("JWT_SECRET is required"));
    let e = cfg(&[("JWT_SECRET", "short")]).unwrap_err();
    assert!(e.to_string().contains("at least 32"));
    let e = cfg(&[("JWT_SECRET", EXAMPLE_JWT_SECRET)]).unwrap_err();
    assert!(e.to_string().contains(".env.example"));
}

#[test]
fn every_bad_value_is_reported_at_once() {
    let e = cfg(&[
        ("JWT_SECRET", SECRET),
        ("BIND_ADDR", "nowhere"),
        ("LOG_FORMAT", "xml"),
        ("CORS_ORIGINS", "*"),
        ("MONGODB_DB", "bad-name"),
    ])
    .unwrap_err();
    assert_eq!(e.0.len(), 4, "{e}");
}

#[test]
fn trusted_proxies_are_networks_or_addresses() {
    let c = cfg(&[
        ("JWT_SECRET", SECRET),
        ("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7 ,fd00::1/8"),
    ])
    .expect("valid");
    let shown: Vec<String> = c.trusted_proxies.iter().map(|n| n.to_string()).collect();
    assert_eq!(shown, vec!["10.0.0.0/8", "192.0.2.7/32", "fd00::/8"]);
    let err =
        cfg(&[("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "10.0.0.0/33")]).expect_err("invalid");
    assert!(err.to_string().contains("TRUSTED_PROXIES"), "{err}");
    assert!(cfg(&[("JWT_SECRET", SECRET)])
        .expect("valid")
        .trusted_proxies
        .is_empty());
}

#[test]
fn cors_origins_are_split_and_trimmed() {
    let c = cfg(&[
        ("JWT_SECRET", SECRET),
        (
            "CORS_ORIGINS",
            "http://localhost:5173/, https://crm.example.com",
        ),
    ])
    .expect("valid");
    assert_eq!(
        c.cors_origins,
        vec!["http://localhost:5173", "https://crm.example.com"]
    );
}

#[test]
fn access_ttl_must_be_shorter_than_refresh_ttl() {
    let e = cfg(&[
        ("JWT_SECRET", SECRET),
        ("ACCESS_TOKEN_TTL_SECS", "100"),
        ("REFRESH_TOKEN_TTL_SECS", "50"),
    ])
    .unwrap_err();
    assert!(e.to_string().contains("shorter"));
}
