//! A hot standby as the source (scripts/test-standby.sh makes one on port 5433, streaming
//! from the test server): the primary's late commits are held back from the standby's
//! snapshot, since the standby's `pg_locks` shows none of the primary's transactions.

use crate::consistency::{has_row, open_transaction_with_old_row};
use crate::harness::{assert_tables_equal, fixtures, Pgsync, TestDb};
use std::time::{Duration, Instant};

/// The standby's URL for a database of the test server.
fn standby_url(db: &TestDb) -> String {
    let base = std::env::var("PGSYNC_TEST_STANDBY_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5433/postgres".into());
    let cut = base.rfind('/').expect("a URL with a database");
    format!("{}/{}", &base[..cut], db.name)
}

fn standby(db: &TestDb) -> postgres::Client {
    postgres::Client::connect(&standby_url(db), postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "no hot standby at {} ({e}); scripts/test-standby.sh makes one",
            standby_url(db)
        )
    })
}

/// Waits until the standby has replayed everything the primary has written so far. The
/// whole suite's WAL goes through the standby, so on a busy machine replay may lag by
/// minutes: the wait lasts while replay advances, and fails (with the standby's receiver
/// state) when it stalls for 60 s, or after 10 minutes.
fn replayed(primary: &TestDb) {
    let lsn: String = primary
        .client()
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .unwrap()
        .get(0);
    let started = Instant::now();
    let (mut seen, mut moved) = (String::new(), Instant::now());
    loop {
        let now = postgres::Client::connect(&standby_url(primary), postgres::NoTls)
            .ok()
            .and_then(|mut c| {
                c.query_one(
                    "SELECT coalesce(pg_last_wal_replay_lsn()::text, ''),                             coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false),                             coalesce((SELECT status || ' since ' || coalesce(last_msg_receipt_time::text, '?')                                         FROM pg_stat_wal_receiver), 'no WAL receiver')                             || ', replay ' || pg_get_wal_replay_pause_state()",
                    &[&lsn],
                )
                .ok()
            });
        if let Some(row) = &now {
            if row.get::<_, bool>(1) {
                return;
            }
            let replayed: String = row.get(0);
            if replayed != seen {
                (seen, moved) = (replayed, Instant::now());
            }
        }
        let receiver = now.map_or("not answering".to_string(), |r| r.get(2));
        assert!(
            moved.elapsed() < Duration::from_secs(60) && started.elapsed() < Duration::from_secs(600),
            "the standby did not replay {lsn}: replay at {seen:?}, unchanged for {:?} ({:?} in all); receiver: {receiver}",
            moved.elapsed(),
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_standby_source_holds_back_a_primary_transaction_open_across_a_pass() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 8_000, 100);
    // A transaction on the primary, open across the first pass, writing a row whose cursor
    // is a minute below the others.
    let (mut open, key) = open_transaction_with_old_row(&src, 60_000);
    let xid: String = open
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .unwrap()
        .get(0);
    // A later transaction commits (a busy primary): the standby's snapshot then places ours
    // between its xmin and xmax, i.e. running.
    src.client()
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .unwrap();
    replayed(&src);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !standby(&src)
        .query_one(
            "SELECT pg_snapshot_xmin(s) <= $1::text::xid8 AND $1::text::xid8 < pg_snapshot_xmax(s)
             FROM pg_current_snapshot() s",
            &[&xid],
        )
        .unwrap()
        .get::<_, bool>(0)
    {
        assert!(
            Instant::now() < deadline,
            "the standby never saw xid {xid} running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut job = Pgsync::new(&standby_url(&src), &dst.url(), "transactions").with(&[
        "-c",
        "2000",
        "--lookback",
        "0",
    ]);
    job.options.retain(|o| o != "--quiet");
    let plan = job.run_ok("plan", &[]);
    assert!(String::from_utf8_lossy(&plan.stdout).contains("a hot standby, replay lag"));
    let out = job.run_ok("single", &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("source: a hot standby"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        job.status()["pending_transactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().starts_with("standby-xmax:")),
        "{}",
        job.status()
    );
    open.batch_execute("COMMIT").unwrap();
    fixtures::churn(&src, 100, 13);
    replayed(&src);
    job.run_ok("single", &[]);
    assert!(
        has_row(&dst, &key),
        "the late commit read from the standby was lost"
    );
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn a_set_read_from_a_standby_warns_once_and_copies_every_table() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 3_000, 100);
    src.exec(
        "CREATE TABLE accounts (id int PRIMARY KEY, updated bigint NOT NULL, name text);
         INSERT INTO accounts SELECT g, 1000 + g, 'a' || g FROM generate_series(1, 500) g;",
    );
    replayed(&src);
    let mut job = Pgsync::new(&standby_url(&src), &dst.url(), "public.*");
    job.options.retain(|o| o != "--quiet");
    let out = job.run_ok("single", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("source: a hot standby").count(),
        1,
        "{stderr}"
    );
    assert_tables_equal(&src, &dst, "transactions", "id");
    assert_tables_equal(&src, &dst, "accounts", "id");
}
