//! Test harness modules.
pub mod bin;
pub mod compare;
pub mod fixtures;
pub mod server;
pub mod stats;
pub mod writer;

pub use bin::Pgsync;
pub use compare::{assert_tables_equal, assert_tables_equal_but};
pub use server::TestDb;

/// Polls `done` every 20 ms until it holds, failing the test after 60 s.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// One i64 from a query, or 0 while the query cannot run yet (table not created…).
pub fn count_or_zero(db: &TestDb, sql: &str) -> i64 {
    db.client()
        .query_one(sql, &[])
        .map(|r| r.get(0))
        .unwrap_or(0)
}
