//! Reading PostgreSQL's cumulative statistics (`pg_stat_user_tables`) without racing them.
//! A backend reports its counts asynchronously — at the latest when it exits, after its
//! client has gone — so a count read right after a run may still grow. `settled` waits
//! until no other session is connected to the database (an exiting backend reports its
//! counts before it leaves `pg_stat_activity`), then until the value stops changing.

use super::TestDb;
use std::time::{Duration, Instant};

/// `sql` (one bigint) once the database's other sessions have ended and the value has been
/// the same for `quiet`, or has reached `at_least`.
pub fn settled(db: &TestDb, sql: &str, at_least: Option<i64>, quiet: Duration) -> i64 {
    let mut c = db.client();
    let mut read = |sql: &str| -> i64 {
        c.batch_execute("SELECT pg_stat_clear_snapshot()").unwrap();
        c.query_one(sql, &[]).map(|r| r.get(0)).unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let others = "SELECT count(*) FROM pg_stat_activity \
                  WHERE datname = current_database() AND pid <> pg_backend_pid()";
    while read(others) > 0 {
        assert!(
            Instant::now() < deadline,
            "sessions still connected to {}",
            db.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (mut last, mut since) = (read(sql), Instant::now());
    while at_least.is_none_or(|n| last < n) && since.elapsed() < quiet {
        assert!(Instant::now() < deadline, "{sql} never settled");
        std::thread::sleep(Duration::from_millis(50));
        let now = read(sql);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

/// Rows inserted plus updated (plus deleted) in `table`, settled.
pub fn changes(db: &TestDb, table: &str) -> i64 {
    let sql = format!(
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint \
         FROM pg_stat_user_tables WHERE relname = '{table}'"
    );
    settled(db, &sql, None, Duration::from_millis(500))
}
