//! Everything that touches a PostgreSQL connection starts here: the `Side` a connection
//! belongs to, and the one place where a `postgres::Error` is classified (by SQLSTATE) into a
//! typed `DbError` that says which side failed, what pgsync was doing, and what to do.

pub mod conninfo;
pub mod ident;
pub mod pool;
pub mod tls;
pub mod txn;

use postgres::error::SqlState;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which database a connection or an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// The table being copied from (read-only).
    Source,
    /// The table being copied into.
    Destination,
}

impl Side {
    /// "source" or "destination".
    pub fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Destination => "destination",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What kind of database failure this is; decides the hint and whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// Wrong password or user, or no `pg_hba.conf` entry.
    Auth,
    /// Host unreachable, connection refused or connect timeout.
    Unreachable,
    /// The database does not exist.
    NoDatabase,
    /// The role lacks a privilege.
    Permission,
    /// `statement_timeout` or `lock_timeout` cancelled a statement.
    Timeout,
    /// The connection broke or the server shut the session down (retry can help).
    ConnectionLost,
    /// Serialization failure or deadlock (retry can help).
    Conflict,
    /// pgsync's own data on that side (a receipt) cannot be read: not written by pgsync.
    Corrupt,
    /// TLS failed: the server's certificate did not verify, or TLS was required and the
    /// server does not speak it.
    Tls,
    /// Anything else.
    Other,
}

/// A failed database operation, classified.
#[derive(Debug, thiserror::Error)]
#[error("{side}: {doing} failed: {message}")]
pub struct DbError {
    /// Which side failed.
    pub side: Side,
    /// Classification by SQLSTATE / I/O error.
    pub kind: DbErrorKind,
    /// What pgsync was doing, e.g. `connecting to user@host:5432/db`.
    pub doing: String,
    /// The server's (or socket's) message, without driver prefixes.
    pub message: String,
    /// SQLSTATE code, when the server sent one.
    pub code: Option<String>,
    /// The driver error.
    #[source]
    pub source: Option<postgres::Error>,
}

impl DbError {
    /// Classifies a driver error.
    pub fn from_pg(side: Side, doing: impl Into<String>, err: postgres::Error) -> Self {
        let (kind, message, code) = classify(&err);
        DbError {
            side,
            kind,
            doing: doing.into(),
            message,
            code,
            source: Some(err),
        }
    }

    /// An error that did not come from the driver (e.g. the pool), with an explicit kind.
    pub fn other(
        side: Side,
        kind: DbErrorKind,
        doing: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        DbError {
            side,
            kind,
            doing: doing.into(),
            message: message.into(),
            code: None,
            source: None,
        }
    }

    /// True when retrying the same work later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            DbErrorKind::ConnectionLost | DbErrorKind::Conflict | DbErrorKind::Unreachable
        )
    }

    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match (self.kind, self.side) {
            (DbErrorKind::Auth, _) if self.message.contains("no encryption") => {
                "the server takes only TLS connections from here: use sslmode=require or stronger (--sslmode, or sslmode= in the URL)".into()
            }
            (DbErrorKind::Auth, _) => "check the user name and password (URL, ~/.pgpass, service file, --password or PGPASSWORD) and pg_hba.conf".into(),
            (DbErrorKind::Tls, _) if self.message.contains("does not accept TLS") => {
                "the server has TLS off (ssl = off): turn it on, or use sslmode=prefer or disable, only on a network you trust".into()
            }
            (DbErrorKind::Tls, _) => {
                "check the TLS settings: sslrootcert must hold the CA that signed the server's certificate, and verify-full needs the host name the certificate names (docs/operations.md, Connecting)".into()
            }
            (DbErrorKind::Unreachable, _) => "check host and port (-h/-p, PGHOST/PGPORT or the URL) and that the server is running".into(),
            (DbErrorKind::NoDatabase, _) => "check the database name; pgsync does not create databases".into(),
            (DbErrorKind::Permission, Side::Source) => "the source role needs CONNECT on the database and SELECT on the table".into(),
            (DbErrorKind::Permission, Side::Destination) => {
                "the destination role needs CREATE on the schema (or an existing table) and INSERT/UPDATE on the table".into()
            }
            (DbErrorKind::Timeout, _) => "a statement hit the time limit; try a smaller --window-size or a larger --statement-timeout".into(),
            (DbErrorKind::ConnectionLost | DbErrorKind::Conflict, _) => {
                "nothing committed was lost; run `pgsync resume` (or the same command again) to continue from the last checkpoint".into()
            }
            (DbErrorKind::Corrupt, _) => {
                "a row of pgsync's receipts table was changed by hand; fix or delete it, then run again (`pgsync verify` checks the copy)".into()
            }
            (DbErrorKind::Other, _) => "see the server log for details".into(),
        }
    }
}

/// Round trips to either server on the window path, counted where they are made (a
/// statement waits for its answer; a prepared COPY costs two: prepare, then start), for
/// the `-v` timings.
static ROUND_TRIPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts `n` round trips of the window path.
pub fn round_trips(n: u64) {
    ROUND_TRIPS.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

/// Round trips of the window path counted so far in this process.
pub fn round_trips_so_far() -> u64 {
    ROUND_TRIPS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs statements that create objects if missing (`IF NOT EXISTS`) and, when another
/// session created one of them at the same moment (a unique violation on the catalog, a
/// duplicate schema, table or type), once more: the second time they see it.
pub fn create_if_missing(client: &mut postgres::Client, sql: &str) -> Result<(), postgres::Error> {
    use postgres::error::SqlState;
    let raced = [
        SqlState::UNIQUE_VIOLATION,
        SqlState::DUPLICATE_SCHEMA,
        SqlState::DUPLICATE_TABLE,
        SqlState::DUPLICATE_OBJECT,
    ];
    match client.batch_execute(sql) {
        Err(e) if e.code().is_some_and(|c| raced.contains(c)) => client.batch_execute(sql),
        done => done,
    }
}

/// Runs one statement as a simple query — one round trip, no separate prepare — and
/// returns the rows it affected.
pub fn rows_affected(client: &mut postgres::Client, sql: &str) -> Result<u64, postgres::Error> {
    Ok(client
        .simple_query(sql)?
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .last()
        .unwrap_or(0))
}

/// The kind of a server error, by SQLSTATE. Only what a retry can cure is transient: a lost
/// or refused session (class 08, shutdowns, too many connections) and conflicts (40001,
/// 40P01 — including a standby cancelling a query for replay). A protocol violation
/// (08P01) is the client's own bytes: it fails the same way again, so it is permanent.
pub fn kind_of(code: &SqlState) -> DbErrorKind {
    if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    {
        DbErrorKind::Auth
    } else if *code == SqlState::INVALID_CATALOG_NAME {
        DbErrorKind::NoDatabase
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        DbErrorKind::Permission
    } else if *code == SqlState::QUERY_CANCELED || *code == SqlState::LOCK_NOT_AVAILABLE {
        DbErrorKind::Timeout
    } else if *code == SqlState::PROTOCOL_VIOLATION {
        DbErrorKind::Other
    } else if *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
        || code.code().starts_with("08")
    {
        DbErrorKind::ConnectionLost
    } else if *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
    {
        DbErrorKind::Conflict
    } else {
        DbErrorKind::Other
    }
}

fn classify(err: &postgres::Error) -> (DbErrorKind, String, Option<String>) {
    if let Some(db) = err.as_db_error() {
        let code = db.code().clone();
        let kind = kind_of(&code);
        let mut message = db.message().to_string();
        if let Some(detail) = db.detail() {
            message.push_str(&format!(" ({detail})"));
        }
        return (kind, message, Some(code.code().to_string()));
    }
    if let Some(reason) = tls::tls_failure(err) {
        return (DbErrorKind::Tls, format!("TLS: {reason}"), None);
    }
    // Not a server error: a socket or protocol failure. The Display chain names the cause.
    let mut message = err.to_string();
    let mut io = false;
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        io |= s.is::<std::io::Error>();
        source = s.source();
    }
    let connecting = message.to_lowercase().contains("error connecting");
    let kind = if connecting {
        DbErrorKind::Unreachable
    } else if err.is_closed() || io {
        DbErrorKind::ConnectionLost
    } else {
        DbErrorKind::Other
    };
    (kind, message, None)
}

/// Shorthand: attach side and context to a driver result.
pub trait PgResultExt<T> {
    /// Maps the error into a classified `DbError`.
    fn on(self, side: Side, doing: &str) -> Result<T, DbError>;
}

impl<T> PgResultExt<T> for Result<T, postgres::Error> {
    fn on(self, side: Side, doing: &str) -> Result<T, DbError> {
        self.map_err(|e| DbError::from_pg(side, doing, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_retry_can_cure_is_transient() {
        let transient = |code: &str| {
            let kind = kind_of(&SqlState::from_code(code));
            DbError::other(Side::Source, kind, "x", "y").is_transient()
        };
        for code in [
            "08006", "08001", "08003", "57P01", "57P02", "57P03", "53300", "40001", "40P01",
        ] {
            assert!(transient(code), "{code} should be retried");
        }
        for code in [
            "08P01", // protocol violation: the same bytes fail again
            "22P03", // invalid binary representation
            "42P01", // undefined table
            "42703", // undefined column
            "428C9", // a generated column written to
            "23505", // unique violation
            "28P01", // wrong password
            "42501", // no privilege
            "57014", // statement timeout
            "XX000", // internal error
        ] {
            assert!(!transient(code), "{code} should not be retried");
        }
        assert_eq!(kind_of(&SqlState::from_code("28000")), DbErrorKind::Auth);
        assert_eq!(
            kind_of(&SqlState::from_code("3D000")),
            DbErrorKind::NoDatabase
        );
        assert_eq!(kind_of(&SqlState::from_code("55P03")), DbErrorKind::Timeout);
    }
}
