//! Test harness: `TestApp::spawn()` and request helpers that read like the API.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use axum::{
    body::Body,
    extract::ConnectInfo,
    http::{header, HeaderMap, Method, Request, StatusCode},
    Router,
};
use bytes::Bytes;
use healthcrm::{
    auth::password::Hasher,
    build_app,
    config::Config,
    db,
    domain::{user::Role, UserId},
    migrate,
    repo::{users::NewUser, Repos},
    seed, AppState,
};
use http_body_util::BodyExt;
use mongodb::Database;
use secrecy::SecretString;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const TEST_JWT_SECRET: &str = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
pub const TEST_DOCUMENT_KEY: &str =
    "6b1f0c9e2a7d4e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f";

/// A document store of the test's own under the system's temp directory.
pub fn test_document_dir(db_name: &str) -> String {
    std::env::temp_dir()
        .join("healthcrm-test-documents")
        .join(db_name)
        .display()
        .to_string()
}

/// Where the test database server is; `scripts/test.sh` sets it.
pub fn mongodb_uri() -> String {
    std::env::var("TEST_MONGODB_URI").unwrap_or_else(|_| "mongodb://127.0.0.1:27117".into())
}

/// Logs go to the test's captured output, so a failing test shows the
/// cause of any 5xx. `RUST_LOG` raises the level.
fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

pub fn test_config(overrides: &[(&str, &str)]) -> Config {
    init_tracing();
    let db_name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let documents = test_document_dir(&db_name);
    let mut env: HashMap<String, String> = HashMap::from([
        ("JWT_SECRET".into(), TEST_JWT_SECRET.into()),
        ("DOCUMENT_KEY".into(), TEST_DOCUMENT_KEY.into()),
        ("DOCUMENT_STORE".into(), documents),
        ("MONGODB_URI".into(), mongodb_uri()),
        ("MONGODB_DB".into(), db_name),
        ("MONGODB_TIMEOUT_MS".into(), "5000".into()),
        // Many tests write straight through the repositories, outside the
        // workflows' transactions, which is where a commit tells the report
        // cache to look again: read the write counts on every request. The
        // cache's own tests set the interval they test.
        ("REPORT_CACHE_POLL_MS".into(), "0".into()),
    ]);
    for (k, v) in overrides {
        env.insert((*k).into(), (*v).into());
    }
    Config::from_lookup(|k| env.get(k).cloned()).expect("test config is valid")
}

pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: UserId,
    pub email: String,
    pub token: String,
    pub refresh_token: String,
}

pub struct TestApp {
    pub router: Router,
    /// The workflows behind `router` (their fault switch, clock and gate).
    pub workflows: healthcrm::workflow::Ctx,
    /// The writes the app finishes after responding (audit events).
    pub background: tokio_util::task::TaskTracker,
    /// The app's password hasher (its counters).
    pub hasher: healthcrm::auth::password::Hasher,
    /// The app's audit writer and refused-call tally.
    pub audit: healthcrm::http::audit_log::AuditLog,
    pub db: Database,
    pub config: Config,
    /// The client address requests appear to come from.
    pub client_ip: SocketAddr,
    drop_db: bool,
}

/// `(command name, collection)` of every command an app's client sent
/// (the collection is empty for commands on no collection).
#[derive(Clone, Default)]
pub struct Commands(std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl Commands {
    /// How many have been sent so far.
    pub fn mark(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Those sent since `mark` to one of `collections`.
    pub fn since_on(&self, mark: usize, collections: &[&str]) -> Vec<(String, String)> {
        let seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        seen[mark..]
            .iter()
            .filter(|(_, c)| collections.contains(&c.as_str()))
            .cloned()
            .collect()
    }
}

static USER_SEQ: AtomicU32 = AtomicU32::new(1);

/// Applies the repository's own seed file (the default permission matrix).
pub async fn seed_permissions(db: &Database) {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(seed::DEFAULT_SEED_FILE),
    )
    .expect("seed file");
    let rules = seed::parse(
        "permissions.json",
        &text,
        healthcrm::http::protected_routes(),
    )
    .expect("seed file is valid");
    let opts = seed::Options {
        dry_run: false,
        reset: false,
        admin_email: None,
        admin_password: None,
        admin_name: "Admin".into(),
    };
    seed::run(db, &rules, &opts).await.expect("seed applies");
}

impl TestApp {
    /// A migrated app on a fresh database.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// A migrated, seeded app on a fresh database of the server at `uri`.
    pub async fn spawn_on(uri: &str, overrides: &[(&str, &str)]) -> TestApp {
        let mut all = vec![("MONGODB_URI", uri)];
        all.extend_from_slice(overrides);
        let mut app = Self::spawn_with(&all).await;
        // The database lives and dies with its server; nothing to drop.
        app.drop_db = false;
        app
    }

    pub async fn spawn_with(overrides: &[(&str, &str)]) -> TestApp {
        Self::spawn_clocked(overrides, None).await
    }

    /// An app whose clock reads `now` (what "today" is; records are still
    /// stamped by the database's clock).
    pub async fn spawn_at(now: chrono::DateTime<chrono::Utc>) -> TestApp {
        Self::spawn_clocked(&[], Some(now)).await
    }

    async fn spawn_clocked(
        overrides: &[(&str, &str)],
        now: Option<chrono::DateTime<chrono::Utc>>,
    ) -> TestApp {
        let config = test_config(overrides);
        let client = db::client(&config).await.expect("client");
        Self::spawn_on_client(client, config, now).await
    }

    /// A migrated app on a fresh database whose client records the
    /// collection of every command it sends (see [`Commands`]).
    pub async fn spawn_watched(overrides: &[(&str, &str)]) -> (TestApp, Commands) {
        use mongodb::event::{command::CommandEvent, EventHandler};
        let config = test_config(overrides);
        let mut options = mongodb::options::ClientOptions::parse(mongodb_uri())
            .await
            .expect("options");
        let commands = Commands::default();
        let seen = commands.0.clone();
        options.command_event_handler = Some(EventHandler::callback(move |e: CommandEvent| {
            if let CommandEvent::Started(s) = e {
                let target = s
                    .command
                    .get_str(&s.command_name)
                    .unwrap_or_default()
                    .to_owned();
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                seen.push((s.command_name, target));
            }
        }));
        let client = mongodb::Client::with_options(options).expect("client");
        (Self::spawn_on_client(client, config, None).await, commands)
    }

    async fn spawn_on_client(
        client: mongodb::Client,
        config: Config,
        now: Option<chrono::DateTime<chrono::Utc>>,
    ) -> TestApp {
        let database = client.database(&config.mongodb_db);
        migrate::run(&database).await.expect("migrations apply");
        seed_permissions(&database).await;
        let state = match now {
            Some(now) => AppState::with_clock(
                database.clone(),
                config.clone(),
                healthcrm::workflow::Clock::fixed(now),
            ),
            None => AppState::new(database.clone(), config.clone()),
        };
        Self::serving(state, database, config, true)
    }

    /// The app serving `state` on `db`; it drops `db` at the end when it
    /// owns it.
    fn serving(state: AppState, db: Database, config: Config, owns_db: bool) -> TestApp {
        TestApp {
            background: state.background.clone(),
            hasher: state.hasher.clone(),
            audit: state.audit.clone(),
            workflows: state.workflows.clone(),
            router: build_app(state),
            db,
            config,
            client_ip: SocketAddr::from(([127, 0, 0, 1], 40000)),
            drop_db: owns_db,
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
        let state = AppState::new(database.clone(), config.clone());
        Self::serving(state, database, config, false)
    }

    /// Another router on the same database and config (for middleware tests).
    /// It does not own the database: `base` drops it.
    pub fn from_router(router: Router, base: &TestApp) -> TestApp {
        TestApp {
            router,
            workflows: base.workflows.clone(),
            background: base.background.clone(),
            hasher: base.hasher.clone(),
            audit: base.audit.clone(),
            db: base.db.clone(),
            config: base.config.clone(),
            client_ip: base.client_ip,
            drop_db: false,
        }
    }

    /// A second instance of the server on the same database: its own
    /// caches, the same secrets. It does not own the database.
    pub fn another_instance(&self, overrides: &[(&str, &str)]) -> TestApp {
        let mut config = self.config.clone();
        for (k, v) in overrides {
            match *k {
                "REPORT_CACHE_POLL_MS" => {
                    config.report_cache_poll =
                        Duration::from_millis(v.parse().expect("milliseconds"))
                }
                other => panic!("another_instance does not set {other}"),
            }
        }
        let state = AppState::new(self.db.clone(), config.clone());
        Self::serving(state, self.db.clone(), config, false)
    }

    pub fn repos(&self) -> Repos {
        Repos::new(&self.db)
    }

    /// Waits for the audit events of the requests made so far (the
    /// refused-call tally included).
    pub async fn settle_background(&self) {
        self.audit.flush_tally(true).await;
        self.background.close();
        self.background.wait().await;
        self.background.reopen();
    }

    /// A driver session, for calling repository writes directly.
    pub async fn session(&self) -> mongodb::ClientSession {
        self.db.client().start_session().await.expect("session")
    }

    /// Creates an account directly in the database.
    pub async fn create_user(&self, role: Role) -> (UserId, String) {
        let n = USER_SEQ.fetch_add(1, Ordering::Relaxed);
        let email = format!("{}{n}@example.com", role.as_str());
        let hash = Hasher::new(2, Duration::from_secs(30))
            .hash(&SecretString::from(TEST_PASSWORD))
            .await
            .expect("hash");
        let user = self
            .repos()
            .users
            .create(NewUser {
                name: format!("{} {n}", role.as_str()),
                email: email.clone(),
                password_hash: hash,
                role,
                permission_overrides: vec![],
                created_by: None,
            })
            .await
            .expect("create user");
        (user.id, email)
    }

    pub async fn login(&self, email: &str, password: &str) -> TestResponse {
        self.post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// A new account of `role`, signed in.
    pub async fn login_as(&self, role: Role) -> Session {
        let (id, email) = self.create_user(role).await;
        self.session_for(id, &email).await
    }

    pub async fn session_for(&self, id: UserId, email: &str) -> Session {
        let res = self.login(email, TEST_PASSWORD).await;
        assert_eq!(
            res.status,
            StatusCode::OK,
            "login: {}",
            String::from_utf8_lossy(&res.body)
        );
        let body = res.json();
        Session {
            id,
            email: email.to_owned(),
            token: body["access_token"]
                .as_str()
                .expect("access token")
                .to_owned(),
            refresh_token: body["refresh_token"]
                .as_str()
                .expect("refresh token")
                .to_owned(),
        }
    }

    pub async fn request(&self, mut req: Request<Body>) -> TestResponse {
        req.extensions_mut().insert(ConnectInfo(self.client_ip));
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
        self.send_as(None, method, path, body).await
    }

    /// A request with `Authorization: Bearer <token>` when a token is given.
    pub async fn send_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
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

    pub async fn get_as(&self, s: &Session, path: &str) -> TestResponse {
        self.send_as(Some(&s.token), Method::GET, path, None).await
    }

    pub async fn post_as(&self, s: &Session, path: &str, body: &Value) -> TestResponse {
        self.send_as(Some(&s.token), Method::POST, path, Some(body))
            .await
    }

    pub async fn patch_as(&self, s: &Session, path: &str, body: &Value) -> TestResponse {
        self.send_as(Some(&s.token), Method::PATCH, path, Some(body))
            .await
    }

    pub async fn put_as(&self, s: &Session, path: &str, body: &Value) -> TestResponse {
        self.send_as(Some(&s.token), Method::PUT, path, Some(body))
            .await
    }

    pub async fn delete_as(&self, s: &Session, path: &str) -> TestResponse {
        self.send_as(Some(&s.token), Method::DELETE, path, None)
            .await
    }

    /// A POST carrying `Idempotency-Key: key`.
    pub async fn post_keyed(
        &self,
        s: &Session,
        path: &str,
        key: &str,
        body: &Value,
    ) -> TestResponse {
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", s.token))
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", key)
            .body(Body::from(serde_json::to_vec(body).expect("json")))
            .expect("request");
        self.request(req).await
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
        let _ = std::fs::remove_dir_all(test_document_dir(&name));
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
