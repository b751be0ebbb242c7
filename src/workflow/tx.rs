//! Multi-document transactions with the driver's retry rules, and the
//! start-up probe that proves the deployment can run them.
//!
//! A workflow body runs inside [`transaction!`](crate::transaction): the whole
//! body is retried while the server labels its failure
//! `TransientTransactionError` (a write conflict with a concurrent
//! transaction, a primary step-down), and the commit alone is retried on
//! `UnknownTransactionCommitResult`, for at most [`RETRY_BUDGET`]. Any other
//! error aborts the transaction and is returned as it is.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use mongodb::{
    bson::doc,
    error::{Error, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT},
    options::{Acknowledgment, TransactionOptions, WriteConcern},
    Client, ClientSession, Database,
};

use tokio::sync::{OnceCell, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use super::{faults::Faults, Ctx};
use crate::{
    config::TransactionGate,
    error::{AppError, Result},
};

/// How long one workflow keeps retrying a transaction before it gives up
/// with the last error (well inside the request timeout).
pub const RETRY_BUDGET: Duration = Duration::from_secs(10);

/// One logical transaction: a session, and the attempt in progress.
pub struct Tx {
    /// `None` only once dropped.
    session: Option<ClientSession>,
    started: Instant,
    faults: Faults,
    /// Held from start to end where the deployment needs transactions to
    /// run one at a time (see [`Gate`]).
    turn: Option<OwnedRwLockWriteGuard<()>>,
    /// An attempt is open (begun, neither committed nor aborted).
    open: bool,
    /// Told of each commit, so the report cache reads the write counts
    /// this transaction may have changed.
    commits: super::reports::Commits,
}

impl Tx {
    pub async fn start(ctx: &Ctx) -> Result<Tx> {
        let turn = ctx.gate.exclusive().await;
        Ok(Tx {
            session: Some(ctx.client.start_session().await?),
            started: Instant::now(),
            faults: ctx.faults.clone(),
            turn,
            open: false,
            commits: ctx.report_cache.commits(),
        })
    }

    /// The session every read and write of the attempt goes through.
    pub fn session(&mut self) -> Result<&mut ClientSession> {
        // `None` only while being dropped; never seen by a caller.
        self.session
            .as_mut()
            .ok_or_else(|| AppError::internal("transaction session already released"))
    }

    /// Starts an attempt.
    pub async fn begin(&mut self) -> Result<()> {
        // No read concern: the server's default for transactions. The
        // stand-in stores a transaction's `readConcern` as a document of the
        // collection the first statement writes to (README, compatibility
        // notes), and every read that matters here is re-checked by a
        // version-guarded write anyway.
        let options = TransactionOptions::builder()
            .write_concern(WriteConcern::builder().w(Acknowledgment::Majority).build())
            .build();
        self.session()?
            .start_transaction()
            .with_options(options)
            .await?;
        self.open = true;
        Ok(())
    }

    /// A named point after one of the workflow's writes. Tests built with
    /// the `faults` feature can make it fail, to show that the writes before
    /// it are rolled back; otherwise it does nothing.
    pub fn point(&self, name: &'static str) -> Result<()> {
        self.faults.check(name)
    }

    /// Ends an attempt: commits on success, aborts on failure. `Ok(None)`
    /// asks the caller to run the body again (a transient failure within the
    /// retry budget).
    pub async fn end<T>(&mut self, outcome: Result<T>) -> Result<Option<T>> {
        let value = match outcome {
            Ok(v) => v,
            Err(e) => {
                // The server aborts on its own when this fails; the
                // original error is the one worth reporting.
                if let Ok(session) = self.session() {
                    let _ = session.abort_transaction().await;
                }
                self.open = false;
                return if e.is_transient() && self.within_budget() {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        loop {
            match self.session()?.commit_transaction().await {
                Ok(()) => {
                    self.open = false;
                    self.commits.committed();
                    return Ok(Some(value));
                }
                Err(e) if is_unknown_commit(&e) && self.within_budget() => continue,
                Err(e) if e.contains_label(TRANSIENT_TRANSACTION_ERROR) && self.within_budget() => {
                    self.open = false;
                    return Ok(None);
                }
                Err(e) => {
                    // Unknown outcome past the budget, or a definite
                    // failure: end the attempt either way.
                    if let Ok(session) = self.session() {
                        let _ = session.abort_transaction().await;
                    }
                    self.open = false;
                    return Err(e.into());
                }
            }
        }
    }

    fn within_budget(&self) -> bool {
        self.started.elapsed() < RETRY_BUDGET
    }
}

impl Drop for Tx {
    /// A request cancelled mid-transaction (client gone, timeout) drops its
    /// `Tx` between two awaits. The abort then runs in a task of its own
    /// that keeps this transaction's turn until the abort is answered, so
    /// on a gated deployment the next transaction cannot start inside the
    /// one being aborted.
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let Some(mut session) = self.session.take() else {
            return;
        };
        let turn = self.turn.take();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = session.abort_transaction().await;
                drop(turn);
            });
        }
    }
}

/// Whether transactions must run one at a time in this process.
///
/// Real MongoDB isolates transactions, and the gate is open. The local
/// stand-in runs a transaction as one SQLite transaction on a connection
/// shared by every client of the database, so an abort would also undo
/// writes that other requests made meanwhile, and two overlapping
/// transactions corrupt each other (README, compatibility notes). There the
/// gate lets one transaction run at a time, and writes that must not be
/// lost to another request's abort (the audit trail) take the shared side.
///
/// `TRANSACTION_GATE=auto` (the default) decides on first use: a deployment
/// that names its replica set (or is a mongos) is isolated; one that runs
/// transactions without naming a set is the stand-in.
#[derive(Clone)]
pub struct Gate {
    mode: TransactionGate,
    client: Client,
    lock: Arc<OnceCell<Option<Arc<RwLock<()>>>>>,
}

impl Gate {
    pub fn new(client: Client, mode: TransactionGate) -> Self {
        Gate {
            mode,
            client,
            lock: Arc::new(OnceCell::new()),
        }
    }

    async fn lock(&self) -> Option<Arc<RwLock<()>>> {
        let decided = self
            .lock
            .get_or_try_init(|| async {
                let serial = match self.mode {
                    TransactionGate::Serial => true,
                    TransactionGate::Open => false,
                    // Undecided while the server cannot be asked: the
                    // caller's own request fails on that anyway.
                    TransactionGate::Auto => !isolates(&self.client).await?,
                };
                if serial {
                    tracing::warn!(
                        "the database does not isolate transactions (the local stand-in): \
                         running them one at a time"
                    );
                }
                Ok::<_, Error>(serial.then(|| Arc::new(RwLock::new(()))))
            })
            .await;
        decided.ok().cloned().flatten()
    }

    /// Whether transactions run one at a time (decided on first use).
    pub async fn is_serial(&self) -> bool {
        self.lock().await.is_some()
    }

    async fn exclusive(&self) -> Option<OwnedRwLockWriteGuard<()>> {
        match self.lock().await {
            Some(l) => Some(l.write_owned().await),
            None => None,
        }
    }

    /// Held around a write outside any transaction that another request's
    /// abort must not undo.
    pub async fn shared(&self) -> Option<OwnedRwLockReadGuard<()>> {
        match self.lock().await {
            Some(l) => Some(l.read_owned().await),
            None => None,
        }
    }
}

/// True for a replica set member or a mongos, as `hello` describes the
/// server.
async fn isolates(client: &Client) -> std::result::Result<bool, Error> {
    let reply = client
        .database("admin")
        .run_command(doc! { "hello": 1 })
        .await?;
    Ok(reply.contains_key("setName") || reply.get_str("msg") == Ok("isdbgrid"))
}

fn is_unknown_commit(e: &Error) -> bool {
    e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
}

/// Runs `$body` (an expression that may use `.await` and `?`, with the
/// [`Tx`] bound to `$tx`) in a transaction of `$ctx` (a `&Ctx`), retried by
/// the rules above. Evaluates to `Result` of the body's value.
#[macro_export]
macro_rules! transaction {
    ($ctx:expr, |$tx:ident| $body:expr) => {
        async {
            let mut $tx = $crate::workflow::tx::Tx::start($ctx).await?;
            loop {
                $tx.begin().await?;
                let outcome: $crate::error::Result<_> = async { $body }.await;
                if let Some(value) = $tx.end(outcome).await? {
                    break Ok::<_, $crate::error::AppError>(value);
                }
            }
        }
        .await
    };
}

/// Proves that the deployment runs transactions: start one, read once,
/// abort. A standalone `mongod` refuses ("Transaction numbers are only
/// allowed on a replica set member or mongos"); the server then must not
/// start, since every multi-document write relies on them.
pub async fn probe(client: &Client, db: &Database) -> std::result::Result<(), String> {
    let attempt = async {
        let mut session = client.start_session().await?;
        session.start_transaction().await?;
        db.collection::<mongodb::bson::Document>("permissions")
            .find_one(doc! {})
            .session(&mut session)
            .await?;
        session.abort_transaction().await
    };
    attempt.await.map_err(|e: Error| {
        format!(
            "the database does not run multi-document transactions ({e}). \
             healthcrm needs a replica set: start mongod with --replSet rs0 and run \
             rs.initiate() once (docker-compose.yml does both), then connect with \
             ?replicaSet=rs0 or directConnection=true"
        )
    })
}
