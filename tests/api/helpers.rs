//! Test harness: `TestApp::spawn()` and request helpers that read like the API.

use std::{collections::HashMap, time::Duration};

use axum::{
    body::Body,
    http::{header, HeaderMap, Method, Request, StatusCode},
    Router,
};
use bytes::Bytes;
use healthcrm::{build_app, config::Config, db, migrate, AppState};
use http_body_util::BodyExt;
use mongodb::Database;
use serde_json::Value;
use tower::ServiceExt;

pub const TEST_JWT_SECRET: &str = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";

/// Where the test database server is; `scripts/test.sh` sets it.
pub fn mongodb_uri() -> String {
    std::env::var("TEST_MONGODB_URI").unwrap_or_else(|_| "mongodb://127.0.0.1:27117".into())
}

pub fn test_config(overrides: &[(&str, &str)]) -> Config {
    let db_name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut env: HashMap<String, String> = HashMap::from([
        ("JWT_SECRET".into(), TEST_JWT_SECRET.into()),
        ("MONGODB_URI".into(), mongodb_uri()),
        ("MONGODB_DB".into(), db_name),
        ("MONGODB_TIMEOUT_MS".into(), "5000".into()),
    ]);
    for (k, v) in overrides {
        env.insert((*k).into(), (*v).into());
    }
    Config::from_lookup(|k| env.get(k).cloned()).expect("test config is valid")
}

pub struct TestApp {
    pub router: Router,
    pub db: Database,
    pub config: Config,
    drop_db: bool,
}

impl TestApp {
    /// A migrated app on a fresh database.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(overrides: &[(&str, &str)]) -> TestApp {
        let config = test_config(overrides);
        let client = db::client(&config).await.expect("client");
        let database = client.database(&config.mongodb_db);
        migrate::run(&database).await.expect("migrations apply");
        TestApp {
            router: build_app(AppState::new(database.clone(), config.clone())),
            db: database,
            config,
            drop_db: true,
        }
    }

    /// An app whose database cannot be reached (nothing listens on the port).
    pub async fn spawn_unreachable_db() -> TestApp {
        let config = test_config(&[
            (
                "MONGODB_URI",
                "mongodb://127.0.0.1:9/?directConnection=true",
            ),
            ("MONGODB_TIMEOUT_MS", "300"),
        ]);
        let client = db::client(&config).await.expect("client");
        let database = client.database(&config.mongodb_db);
        TestApp {
            router: build_app(AppState::new(database.clone(), config.clone())),
            db: database,
            config,
            drop_db: false,
        }
    }

    /// Another router on the same database and config (for middleware tests).
    /// It does not own the database: `base` drops it.
    pub fn from_router(router: Router, base: &TestApp) -> TestApp {
        TestApp {
            router,
            db: base.db.clone(),
            config: base.config.clone(),
            drop_db: false,
        }
    }

    pub async fn request(&self, req: Request<Body>) -> TestResponse {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.expect("body").to_bytes();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(path);
        let body = match body {
            Some(v) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(v).expect("json"))
            }
            None => Body::empty(),
        };
        self.request(builder.body(body).expect("request")).await
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, None).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> TestResponse {
        self.send(Method::POST, path, Some(body)).await
    }

    /// A POST with an arbitrary body and content type (for hostile input).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Bytes>,
    ) -> TestResponse {
        let mut builder = Request::builder().method(Method::POST).uri(path);
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        self.request(builder.body(Body::from(body.into())).expect("request"))
            .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !self.drop_db {
            return;
        }
        // The test's runtime is going away; drop the database from a thread
        // with its own runtime and client.
        let name = self.config.mongodb_db.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(client) = db::client_for_uri(&mongodb_uri(), Duration::from_secs(5)).await
                {
                    let _ = client.database(&name).drop().await;
                }
            });
        })
        .join();
    }
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and that the body is the contract's error shape
    /// with `code`; returns the `error` object.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let body = self.json();
        let error = body
            .get("error")
            .unwrap_or_else(|| panic!("no error object: {body}"));
        assert_eq!(error["code"], code, "{body}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(
            error.get("details").is_some(),
            "details key present (may be null): {body}"
        );
        let request_id = error["request_id"].as_str().expect("request_id in body");
        assert_eq!(
            Some(request_id),
            self.header("x-request-id"),
            "body and header ids agree"
        );
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "only `error` at top level"
        );
        error.clone()
    }
}
