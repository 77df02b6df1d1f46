//! A live source: late-committing transactions (held open across passes, or aborted),
//! and a concurrent writer moving cursors while windows are copied.

use crate::harness::{assert_tables_equal, fixtures, Pgsync, TestDb};
use std::time::{Duration, Instant};

/// Inserts a row in a transaction left open; returns the open client and the row's key.
pub(crate) fn open_transaction_with_old_row(
    src: &TestDb,
    older_by_ms: i64,
) -> (postgres::Client, String) {
    let mut c = src.client();
    c.batch_execute("BEGIN").unwrap();
    let key: String = c
        .query_one(
            "INSERT INTO transactions SELECT gen_random_uuid(), gen_random_uuid(), 1, max(updated) - $1, NULL, 42, 'LATE'
             FROM transactions RETURNING id::text",
            &[&older_by_ms],
        )
        .unwrap()
        .get(0);
    (c, key)
}

pub(crate) fn has_row(db: &TestDb, key: &str) -> bool {
    db.client()
        .query_opt("SELECT 1 FROM transactions WHERE id::text = $1", &[&key])
        .unwrap()
        .is_some()
}

/// Rows with cursors far above everything (as hours of traffic would make).
fn jump(src: &TestDb, rows: i64) {
    src.exec(&format!(
        "INSERT INTO transactions SELECT gen_random_uuid(), gen_random_uuid(), 1, (SELECT max(updated) FROM transactions) + 3600000 + g, NULL, 1, 'JUMP'
         FROM generate_series(1, {rows}) g"
    ));
}

#[test]
fn a_transaction_open_across_a_whole_pass_is_caught_by_the_next_pass_with_default_settings() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 20_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "2000"]);
    let (mut open, key) = open_transaction_with_old_row(&src, 60_000);
    fixtures::churn(&src, 200, 11);
    job.run_ok("single", &[]);
    assert!(!has_row(&dst, &key), "an uncommitted row was copied");
    assert!(!job.status()["pending_transactions"]
        .as_array()
        .unwrap()
        .is_empty());
    open.batch_execute("COMMIT").unwrap();
    job.run_ok("single", &[]);
    assert!(has_row(&dst, &key), "the late-committed row was lost");
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn the_holdback_keeps_a_long_transaction_in_reach_when_the_watermark_races_past_the_lookback() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 10_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "2000"]);
    job.run_ok("single", &[]);
    // A writer's cursor from its clock: at the max cursor of the last plan, not below it.
    let (mut open, key) = open_transaction_with_old_row(&src, 0);
    // Three passes while it stays open, the max cursor jumping an hour each time: far past
    // the lookback, so only the holdback can still reach the row.
    for _ in 0..3 {
        jump(&src, 100);
        job.run_ok("single", &[]);
    }
    open.batch_execute("COMMIT").unwrap();
    jump(&src, 100);
    job.run_ok("single", &[]);
    assert!(has_row(&dst, &key), "the late-committed row was lost");
    assert_tables_equal(&src, &dst, "transactions", "id");
    // Resolved transactions are released: after one more pass nothing of ours is pending.
    job.run_ok("single", &[]);
    let pending = job.status()["pending_transactions"].clone();
    let xid: i64 = src
        .client()
        .query_one(
            "SELECT xmin::text::bigint FROM transactions WHERE id::text = $1",
            &[&key],
        )
        .unwrap()
        .get(0);
    assert!(
        !pending
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str() == Some(&format!("xid:{xid}"))),
        "{pending}"
    );
}

#[test]
fn a_transaction_that_had_not_written_when_the_pass_was_planned_is_caught() {
    // Like `updated = now()`: the cursor is the transaction's start, taken before the pass,
    // and the write comes after the pass has read that range. No lookback to help.
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 5_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "-c",
        "1000",
        "--lookback",
        "0",
    ]);
    let mut open = src.client();
    open.batch_execute("BEGIN; SELECT 1").unwrap();
    job.run_ok("single", &[]);
    assert!(job.status()["pending_transactions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t.as_str().unwrap().starts_with("vxid:")));
    let key: String = open
        .query_one(
            "INSERT INTO transactions SELECT gen_random_uuid(), gen_random_uuid(), 1, max(updated) - 5, NULL, 7, 'STARTED-EARLY'
             FROM transactions RETURNING id::text",
            &[],
        )
        .unwrap()
        .get(0);
    open.batch_execute("COMMIT").unwrap();
    fixtures::churn(&src, 50, 97);
    job.run_ok("single", &[]);
    assert!(
        has_row(&dst, &key),
        "the row of a transaction that wrote late was lost"
    );
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn transactions_of_other_databases_do_not_hold_a_pass_back() {
    let (src, dst, other) = (TestDb::new("src"), TestDb::new("dst"), TestDb::new("other"));
    fixtures::transactions(&src, 6_000, 100);
    other.exec("CREATE TABLE busy (n int)");
    let mut writer = other.client();
    writer
        .batch_execute("BEGIN; INSERT INTO busy VALUES (1)")
        .unwrap();
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "-c",
        "1000",
        "--lookback",
        "0",
    ]);
    job.run_ok("single", &[]);
    assert_eq!(job.status()["pending_transactions"], serde_json::json!([]));
    src.exec(
        "INSERT INTO transactions SELECT gen_random_uuid(), gen_random_uuid(), 1, (SELECT max(updated) FROM transactions) + g, NULL, 1, 'NEW'
         FROM generate_series(1, 40) g",
    );
    job.run_ok("single", &[]);
    // Only the new rows: the whole first load is not read again for the other database's writer.
    assert_eq!(job.status()["last_pass"]["rows_read"], 40);
    writer.batch_execute("ROLLBACK").unwrap();
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn an_aborted_transaction_releases_the_holdback() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 5_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "1000"]);
    let (mut open, key) = open_transaction_with_old_row(&src, 1);
    let xid: i64 = open
        .query_one("SELECT txid_current() % 4294967296", &[])
        .unwrap()
        .get(0);
    job.run_ok("single", &[]);
    let pending = job.status()["pending_transactions"].clone();
    assert!(
        pending
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str() == Some(&format!("xid:{xid}"))),
        "{pending}"
    );
    open.batch_execute("ROLLBACK").unwrap();
    job.run_ok("single", &[]);
    let pending = job.status()["pending_transactions"].clone();
    assert!(
        !pending
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str() == Some(&format!("xid:{xid}"))),
        "{pending}"
    );
    assert!(!has_row(&dst, &key));
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn continuous_under_a_concurrent_writer_ends_exactly_equal() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 50_000, 100);
    let job =
        Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "1000", "--delay", "0"]);
    let child = job.spawn("continuous", &[], &[]);
    // The writer: for a bounded time, batches of inserts and of updates that move rows'
    // cursors forward (to the clock in epoch ms, like updated = now()), while windows copy.
    let writer_db = TestDb {
        name: src.name.clone(),
    };
    let writes = std::thread::spawn(move || {
        let mut c = writer_db.client();
        let until = Instant::now() + Duration::from_secs(6);
        let mut writes = 0u64;
        while Instant::now() < until {
            let n = c
                .execute(
                    "UPDATE transactions SET updated = (extract(epoch from clock_timestamp()) * 1000)::bigint, amount = amount + 1
                     WHERE id IN (SELECT id FROM transactions TABLESAMPLE SYSTEM (1) LIMIT 200)",
                    &[],
                )
                .unwrap();
            writes += n;
            writes += c
                .execute(
                    "INSERT INTO transactions SELECT gen_random_uuid(), gen_random_uuid(), 1,
                       (extract(epoch from clock_timestamp()) * 1000)::bigint, NULL, 1, 'W' FROM generate_series(1, 100)",
                    &[],
                )
                .unwrap();
        }
        std::mem::forget(writer_db); // the database belongs to the test
        writes
    });
    let writes = writes.join().unwrap();
    assert!(writes > 5_000, "the writer made only {writes} writes");
    crate::harness::bin::sigint(child);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
}
