//! A destination transaction whose COMMIT carries the transaction's last statement (a
//! window's receipt) in the same round trip: `INSERT …; COMMIT` as one simple query.
//! rust-postgres's `Transaction` commits with a statement of its own, which costs a round
//! trip per window. Like `Transaction`, it rolls back when dropped uncommitted.

use std::ops::{Deref, DerefMut};

/// An open transaction on a borrowed connection.
pub struct Txn<'a> {
    client: &'a mut postgres::Client,
    open: bool,
}

impl<'a> Txn<'a> {
    /// `BEGIN`.
    pub fn begin(client: &'a mut postgres::Client) -> Result<Self, postgres::Error> {
        client.batch_execute("BEGIN")?;
        super::round_trips(1);
        Ok(Txn { client, open: true })
    }

    /// Runs `last` (one or more statements, no transaction control) and `COMMIT` in one
    /// round trip; returns the first column of the last row `last` returned, if any. When
    /// `last` fails, the server skips the COMMIT and the transaction is rolled back here;
    /// when the COMMIT itself fails, the server has ended it already.
    pub fn commit_with(mut self, last: &str) -> Result<Option<String>, postgres::Error> {
        let result = self
            .client
            .simple_query(&format!("{last};\nCOMMIT"))
            .map(|messages| {
                messages.iter().rev().find_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
                    _ => None,
                })
            });
        super::round_trips(1);
        if result.is_ok() {
            self.open = false;
        } else if self.client.simple_query("SELECT 1").is_ok() {
            // The COMMIT ran and failed: no transaction is left to roll back (a ROLLBACK
            // would only earn a "no transaction in progress" warning).
            self.open = false;
        }
        result
    }
}

impl Deref for Txn<'_> {
    type Target = postgres::Client;

    fn deref(&self) -> &postgres::Client {
        self.client
    }
}

impl DerefMut for Txn<'_> {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.client
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if self.open {
            // Errors are ignored: a connection that died has lost the transaction anyway.
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }
}
