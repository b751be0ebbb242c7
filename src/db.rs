//! MongoDB connection and the driver-error classification every repository shares.

use std::time::Duration;

use mongodb::{
    bson::doc,
    error::{Error, ErrorKind, WriteFailure},
    options::ClientOptions,
    Client, Database,
};
use secrecy::ExposeSecret;

use crate::config::Config;

/// Builds a client with timeouts short enough that a lost database turns
/// into a prompt 503 instead of a hung request. Connecting is lazy: this
/// succeeds even when the server is down.
/// With `METRICS_TOKEN` set, each operation's wait for a connection is
/// recorded, and with `METRICS_DB_COMMANDS=on` each command's round trip.
pub async fn client(config: &Config) -> Result<Client, Error> {
    let mut options =
        options_for_uri(config.mongodb_uri.expose_secret(), config.mongodb_timeout).await?;
    monitor(
        &mut options,
        config.metrics_token.is_some(),
        config.metrics_db_commands,
    );
    Client::with_options(options)
}

/// Installs the driver event handlers the metrics need: none without
/// metrics, the pool's checkouts with them, and each command only when
/// asked for (the driver then copies and decodes every command and reply).
fn monitor(options: &mut ClientOptions, metrics: bool, commands: bool) {
    if metrics {
        options.cmap_event_handler = Some(crate::metrics::pool_events());
        if commands {
            options.command_event_handler = Some(crate::metrics::command_events());
        }
    }
}

pub async fn client_for_uri(uri: &str, timeout: Duration) -> Result<Client, Error> {
    Client::with_options(options_for_uri(uri, timeout).await?)
}

async fn options_for_uri(uri: &str, timeout: Duration) -> Result<ClientOptions, Error> {
    let mut options = ClientOptions::parse(uri).await?;
    options.app_name.get_or_insert_with(|| "healthcrm".into());
    options.server_selection_timeout.get_or_insert(timeout);
    options
        .connect_timeout
        .get_or_insert(timeout.min(Duration::from_secs(10)));
    options.max_pool_size.get_or_insert(50);
    Ok(options)
}

/// One round trip to the server: `/ready` and startup use it.
pub async fn ping(db: &Database) -> Result<(), Error> {
    db.run_command(doc! { "ping": 1 }).await.map(|_| ())
}

const DUPLICATE_KEY: i32 = 11000;

/// True when a unique index refused the write (error 11000), whichever
/// driver error kind carries it.
pub fn is_duplicate_key(err: &Error) -> bool {
    match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errors| errors.iter().any(|w| w.code == DUPLICATE_KEY)),
        _ => false,
    }
}

/// True for errors that mean "the database cannot be reached right now".
pub fn is_unavailable(err: &Error) -> bool {
    matches!(
        err.kind.as_ref(),
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. }
    )
}

/// Reads a boolean that the local stand-in may return as 0/1 after a `$set`
/// (see the README's compatibility notes); real MongoDB returns a boolean.
pub fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
    }
    match <Flag as serde::Deserialize>::deserialize(d)? {
        Flag::Bool(b) => Ok(b),
        Flag::Int(0) => Ok(false),
        Flag::Int(1) => Ok(true),
        Flag::Int(n) => Err(serde::de::Error::custom(format!(
            "expected a boolean, got {n}"
        ))),
    }
}

/// Counts the documents matching `filter` with the `count` command.
///
/// Exact on MongoDB whenever a query is given (the same answer as
/// `count_documents`). On the local stand-in it is the only formulation that
/// is both right and fast: the driver's `$group`-based `count_documents` is
/// two orders of magnitude slower and reads `{field: null}` as "missing",
/// and a `$match` + `$count` pipeline misses date ranges and array elements
/// (see the README's compatibility notes).
pub async fn count<T: Send + Sync>(
    coll: &mongodb::Collection<T>,
    filter: mongodb::bson::Document,
) -> Result<u64, Error> {
    let ns = coll.namespace();
    let reply = coll
        .client()
        .database(&ns.db)
        .run_command(doc! { "count": &ns.coll, "query": filter })
        .await?;
    Ok(match reply.get("n") {
        Some(mongodb::bson::Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
        Some(mongodb::bson::Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
        Some(mongodb::bson::Bson::Double(n)) => *n as u64,
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitors(metrics: bool, commands: bool) -> (bool, bool) {
        let mut options = ClientOptions::default();
        monitor(&mut options, metrics, commands);
        (
            options.cmap_event_handler.is_some(),
            options.command_event_handler.is_some(),
        )
    }

    #[test]
    fn commands_are_monitored_only_when_asked_for() {
        assert_eq!(monitors(false, false), (false, false));
        // METRICS_DB_COMMANDS alone records nothing: /metrics is off.
        assert_eq!(monitors(false, true), (false, false));
        assert_eq!(monitors(true, false), (true, false));
        assert_eq!(monitors(true, true), (true, true));
    }
}
