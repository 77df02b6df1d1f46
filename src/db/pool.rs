//! One r2d2 pool per side, and the session set-up every connection gets. The first
//! connection is opened directly, so a wrong password or an unreachable host becomes a typed
//! error at once instead of r2d2's 30-second "timed out waiting for connection"; it is then
//! the pool's first connection (over a link with latency, a connection costs several round
//! trips). Check-outs are not tested with a query (a round trip each): a connection that
//! broke fails its next statement, which the retry loop treats as transient.
//! Source sessions are read-only with a bounded `statement_timeout` and `lock_timeout`;
//! both sides pin the settings that change how values print, so a key read as text on one
//! side means the same value on the other.

use super::{DbError, DbErrorKind, Side};
use crate::db::conninfo::{self, ConnInfo};
use crate::db::tls::SslMode;
use r2d2_postgres::PostgresConnectionManager;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A pooled connection.
pub type Conn = r2d2::PooledConnection<FirstThenConnect>;

/// The pool's connection manager: hands out the connection opened to check the settings
/// first, then connects as `PostgresConnectionManager` does.
pub struct FirstThenConnect {
    first: Mutex<Option<postgres::Client>>,
    inner: PostgresConnectionManager<MakeRustlsConnect>,
}

impl std::fmt::Debug for FirstThenConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FirstThenConnect")
    }
}

impl r2d2::ManageConnection for FirstThenConnect {
    type Connection = postgres::Client;
    type Error = postgres::Error;

    fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        match self.first.lock().ok().and_then(|mut f| f.take()) {
            Some(client) => Ok(client),
            None => self.inner.connect(),
        }
    }

    fn is_valid(&self, conn: &mut postgres::Client) -> Result<(), postgres::Error> {
        self.inner.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut postgres::Client) -> bool {
        self.inner.has_broken(conn)
    }
}

/// Settings pinned on both sides so values have one text form (keys travel as text).
const PINNED_TEXT_SETTINGS: &str =
    "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex";

/// Session limits for the source.
#[derive(Debug, Clone, Copy)]
pub struct SourceLimits {
    /// `statement_timeout` for every source statement.
    pub statement_timeout: Duration,
    /// `lock_timeout` for every source statement.
    pub lock_timeout: Duration,
}

/// A side's pool plus what is needed to describe its failures.
#[derive(Clone)]
pub struct SidePool {
    /// Which side.
    pub side: Side,
    /// `user@host:port/db`, for messages.
    pub target: String,
    /// How the connections are protected: `TLSv1.3 TLS_AES_256_GCM_SHA384` (as the server's
    /// `pg_stat_ssl` reports it), or `none`.
    pub encryption: String,
    pool: r2d2::Pool<FirstThenConnect>,
    last_error: Arc<Mutex<Option<postgres::Error>>>,
}

#[derive(Debug)]
struct KeepLastError(Arc<Mutex<Option<postgres::Error>>>);

impl r2d2::HandleError<postgres::Error> for KeepLastError {
    fn handle_error(&self, error: postgres::Error) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(error);
        }
    }
}

impl SidePool {
    /// Connects once directly (typed errors), then builds a pool of up to `connections`.
    pub fn open(
        side: Side,
        info: &ConnInfo,
        job_tag: &str,
        limits: SourceLimits,
        connections: u32,
    ) -> Result<Self, DbError> {
        let mut config = info.config.clone();
        config.application_name(&format!("pgsync:{}:{job_tag}", side_tag(side)));
        let options = match side {
            Side::Source => format!(
                "-c default_transaction_read_only=on -c statement_timeout={} -c lock_timeout={} {PINNED_TEXT_SETTINGS}",
                limits.statement_timeout.as_millis(),
                limits.lock_timeout.as_millis()
            ),
            Side::Destination => format!("-c statement_timeout=0 -c synchronous_commit=off {PINNED_TEXT_SETTINGS}"),
        };
        config.options(&options);
        let doing = format!("connecting to {}", info.redacted);
        let failed = |e: postgres::Error| {
            let mut err = DbError::from_pg(side, doing.clone(), e);
            if err.kind == DbErrorKind::Tls {
                err.message = format!("{} (sslmode={})", err.message, info.tls.mode);
            }
            err
        };
        // allow and prefer try the other way when the first fails for a reason the other
        // can cure (libpq's rule): prefer after a failed handshake, allow after pg_hba
        // refused a plain session. Every pooled connection then goes the way that worked.
        let mut probe = config.connect(info.connector.clone()).map_err(failed);
        if let (Err(first), Some(second)) = (&probe, conninfo::second_attempt(info.tls.mode)) {
            let curable = match info.tls.mode {
                SslMode::Prefer => first.kind == DbErrorKind::Tls,
                _ => first.kind == DbErrorKind::Auth,
            };
            if curable {
                let mut retry = config.clone();
                retry.ssl_mode(second);
                if let Ok(client) = retry.connect(info.connector.clone()) {
                    config = retry;
                    probe = Ok(client);
                }
            }
        }
        let mut probe = probe?;
        let encryption =
            encryption(&mut probe).map_err(|e| DbError::from_pg(side, doing.clone(), e))?;
        log::debug!(
            "{side}: connected to {}, encryption: {encryption}",
            info.redacted
        );
        let last_error = Arc::new(Mutex::new(None));
        let pool = r2d2::Pool::builder()
            .max_size(connections.max(2))
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(15))
            .error_handler(Box::new(KeepLastError(last_error.clone())))
            .build_unchecked(FirstThenConnect {
                first: Mutex::new(Some(probe)),
                inner: PostgresConnectionManager::new(config, info.connector.clone()),
            });
        Ok(SidePool {
            side,
            target: info.redacted.clone(),
            encryption,
            pool,
            last_error,
        })
    }

    /// Checks out a healthy connection, with the last real connection error on failure.
    pub fn get(&self) -> Result<Conn, DbError> {
        let doing = format!("connecting to {}", self.target);
        self.pool.get().map_err(|timeout| {
            match self.last_error.lock().ok().and_then(|mut slot| slot.take()) {
                Some(e) => DbError::from_pg(self.side, doing, e),
                None => DbError::other(
                    self.side,
                    DbErrorKind::Unreachable,
                    doing,
                    timeout.to_string(),
                ),
            }
        })
    }
}

/// The session's protection as the server sees it (`pg_stat_ssl`).
fn encryption(client: &mut postgres::Client) -> Result<String, postgres::Error> {
    let row = client.query_typed_one(
        "SELECT ssl, coalesce(version, ''), coalesce(cipher, '') FROM pg_catalog.pg_stat_ssl \
         WHERE pid = pg_catalog.pg_backend_pid()",
        &[],
    )?;
    Ok(if row.get::<_, bool>(0) {
        format!("{} {}", row.get::<_, String>(1), row.get::<_, String>(2))
    } else {
        "none".into()
    })
}

fn side_tag(side: Side) -> &'static str {
    match side {
        Side::Source => "source",
        Side::Destination => "dest",
    }
}
