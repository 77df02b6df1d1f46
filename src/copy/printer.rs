//! The second source connection of a read-ahead, which prints the ends of windows cut from a
//! statement still streaming (with the source's own types): checked out on a thread of its
//! own while the first statement starts, waited for at the first cut.

use crate::db::pool::{Conn, SidePool};
use crate::db::{DbError, DbErrorKind, Side};
use crate::error::Error;
use std::thread::JoinHandle;

/// The second source connection that prints the ends of windows cut from a statement
/// still streaming. It is checked out on a thread of its own while the first statement
/// starts (on a link with latency a new connection costs several round trips), and waited
/// for at the first cut.
pub struct Printer {
    pending: Option<JoinHandle<Result<Conn, DbError>>>,
    conn: Option<Conn>,
}

impl Printer {
    /// Starts checking out a connection from `pool`.
    pub fn checkout(pool: &SidePool) -> Printer {
        let pool = pool.clone();
        Printer {
            pending: Some(std::thread::spawn(move || pool.get())),
            conn: None,
        }
    }

    pub(super) fn client(&mut self) -> Result<&mut postgres::Client, Error> {
        let doing = "checking out a source connection";
        let conn = match (self.conn.take(), self.pending.take()) {
            (Some(conn), _) => conn,
            (None, Some(pending)) => pending.join().map_err(|_| Error::WorkerPanicked {
                side: Some(Side::Source),
                what: doing.into(),
            })??,
            (None, None) => Err(DbError::other(
                Side::Source,
                DbErrorKind::Unreachable,
                doing,
                "an earlier checkout failed",
            ))?,
        };
        Ok(self.conn.insert(conn))
    }
}
