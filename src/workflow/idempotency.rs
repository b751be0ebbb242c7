//! Safe retries of creating requests: `Idempotency-Key`.
//!
//! A key is claimed before the work starts (so a second request with it
//! while the first runs is a 409 `request_in_progress`), and the response is
//! stored in the same transaction as the work it guards, so a record exists
//! exactly when the work committed. Replays return that response; the same
//! key with another request is a 422 `idempotency_key_reused`. A failed
//! request releases its claim so the client can retry; a claim whose process
//! died is taken over once its lease (the request timeout plus the
//! transaction retry budget) has passed.

use chrono::Duration as ChronoDuration;
use mongodb::bson::DateTime as BsonDateTime;
use sha2::{Digest, Sha256};

use super::{tx::Tx, Ctx};
use crate::{
    domain::UserId,
    error::{AppError, Result},
    repo::idempotency::KeyRecord,
};

/// What the HTTP layer read from a request carrying `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct KeyedRequest {
    pub key: String,
    /// SHA-256 of the method, path and body, hex.
    pub fingerprint: String,
}

/// A stored first response, to send again.
#[derive(Debug, Clone)]
pub struct Replay {
    pub status: u16,
    /// The JSON body, byte for byte as first sent.
    pub body: String,
}

/// What a creating workflow did: created something now, or found that the
/// same request already had.
#[derive(Debug)]
pub enum Created<T> {
    New(T),
    Replayed(Replay),
}

/// How a creating workflow stores its response for replays: the status and
/// the body the handler sends for the created value.
pub struct Idem<'a, T> {
    pub request: Option<&'a KeyedRequest>,
    pub status: u16,
    pub render: &'a (dyn Fn(&T) -> Result<String> + Send + Sync),
}

impl<T> Idem<'_, T> {
    /// No key: nothing to remember (benchmarks, the seed, tests).
    pub fn none() -> Self {
        Idem {
            request: None,
            status: 0,
            render: &no_body::<T>,
        }
    }
}

fn no_body<T>(_: &T) -> Result<String> {
    Ok(String::new())
}

/// A held claim on a key.
#[derive(Debug)]
pub struct Claim {
    id: String,
    token: String,
}

pub enum Claimed {
    Proceed(Option<Claim>),
    Replay(Replay),
}

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    format!("{:x}", h.finalize())
}

/// The fingerprint of a request: its method, path and body, keyed with
/// `key` (HMAC-SHA256). Keyed because a body can hold a password (`POST
/// /users`): a plain hash kept for a day would let anyone who reads the
/// collection test guesses offline.
pub fn fingerprint(key: &[u8], method: &str, path: &str, body: &[u8]) -> Result<String> {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(AppError::internal)?;
    for part in [method.as_bytes(), path.as_bytes(), body] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    Ok(format!("{:x}", mac.finalize().into_bytes()))
}

fn chrono(d: std::time::Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::days(1))
}

/// Where `actor`'s `key` is stored: a hash, so keys of any shape make ids
/// of one size.
pub fn record_id(actor: UserId, key: &str) -> String {
    hex_sha256(&[actor.to_string().as_bytes(), key.as_bytes()])
}

/// Claims `request`'s key for `actor`, or says why not.
pub async fn claim(ctx: &Ctx, actor: UserId, request: Option<&KeyedRequest>) -> Result<Claimed> {
    let Some(req) = request else {
        return Ok(Claimed::Proceed(None));
    };
    let id = record_id(actor, &req.key);
    let repo = &ctx.repos.idempotency;
    // A claim is a write outside any transaction: keep it out of reach of
    // another request's abort where the deployment does not isolate them.
    let _turn = ctx.gate.shared().await;
    for _ in 0..3 {
        let now = ctx.clock.now();
        let lease = ctx.config.request_timeout + super::tx::RETRY_BUDGET;
        let record = KeyRecord {
            id: id.clone(),
            user_id: actor,
            fingerprint: req.fingerprint.clone(),
            state: "running".into(),
            token: uuid::Uuid::new_v4().simple().to_string(),
            status: None,
            body: None,
            created_at: BsonDateTime::from_chrono(now),
            expires_at: BsonDateTime::from_chrono(now + chrono(ctx.config.idempotency_ttl)),
            lease_until: BsonDateTime::from_chrono(now + chrono(lease)),
        };
        let held = Claim {
            id: id.clone(),
            token: record.token.clone(),
        };
        if repo.insert(&record).await? {
            return Ok(Claimed::Proceed(Some(held)));
        }
        let Some(existing) = repo.find(&id).await? else {
            continue; // released meanwhile: claim it afresh
        };
        let now = record.created_at;
        let expired = existing.expires_at <= now;
        if !expired && existing.fingerprint != req.fingerprint {
            return Err(AppError::IdempotencyKeyReused);
        }
        let abandoned = existing.state == "running" && existing.lease_until <= now;
        if expired || abandoned {
            if repo.take_over(&existing, &record).await? {
                return Ok(Claimed::Proceed(Some(held)));
            }
            continue;
        }
        if existing.state == "done" {
            let status = existing
                .status
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| AppError::internal("idempotency record without a status"))?;
            return Ok(Claimed::Replay(Replay {
                status,
                body: existing.body.unwrap_or_default(),
            }));
        }
        return Err(AppError::RequestInProgress);
    }
    Err(AppError::RequestInProgress)
}

/// Stores the response for `value` under `claim`, in the work's own
/// transaction `tx`.
pub async fn complete<T>(
    ctx: &Ctx,
    tx: &mut Tx,
    claim: Option<&Claim>,
    idem: &Idem<'_, T>,
    value: &T,
) -> Result<()> {
    let Some(claim) = claim else {
        return Ok(());
    };
    let body = (idem.render)(value)?;
    let held = ctx
        .repos
        .idempotency
        .complete(tx.session()?, &claim.id, &claim.token, idem.status, &body)
        .await?;
    if !held {
        // Our lease ran out and another request took the key over: let
        // that one win, and undo this.
        return Err(AppError::RequestInProgress);
    }
    tx.point("idempotency:complete")
}

/// Ends a claimed request: releases the claim when the work failed.
pub async fn finish<T>(ctx: &Ctx, claim: Option<Claim>, result: Result<T>) -> Result<Created<T>> {
    match result {
        Ok(v) => Ok(Created::New(v)),
        Err(e) => {
            if let Some(c) = claim {
                let _turn = ctx.gate.shared().await;
                if let Err(release) = ctx.repos.idempotency.release(&c.id, &c.token).await {
                    // The lease expires on its own; the client sees the
                    // original error.
                    tracing::warn!(error = %release, "idempotency claim not released");
                }
            }
            Err(e)
        }
    }
}
