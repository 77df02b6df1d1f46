//! The window transaction (`db::txn::Txn`): the last statement and COMMIT in one round
//! trip commit together or not at all, and whatever failed, the connection is left with no
//! transaction open.

use crate::harness::TestDb;
use pgsync::db::txn::Txn;

fn setup() -> (TestDb, postgres::Client) {
    let db = TestDb::new("txn");
    db.exec(
        "CREATE TABLE rows_ (n int PRIMARY KEY); \
         CREATE TABLE receipts (n int PRIMARY KEY); \
         CREATE TABLE deferred (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)",
    );
    let client = db.client();
    (db, client)
}

/// No transaction is open on the connection: outside one, `now()` is the statement's time.
/// (A simple query: in the extended protocol the two times differ even outside one.)
fn idle(client: &mut postgres::Client) -> bool {
    let messages = client
        .simple_query("SELECT now() = statement_timestamp()")
        .expect("the connection is usable");
    messages.iter().any(|m| match m {
        postgres::SimpleQueryMessage::Row(row) => row.get(0) == Some("t"),
        _ => false,
    })
}

#[test]
fn rows_and_last_statement_commit_together() {
    let (db, mut client) = setup();
    let mut txn = Txn::begin(&mut client).unwrap();
    txn.batch_execute("INSERT INTO rows_ VALUES (1), (2)")
        .unwrap();
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM rows_"),
        0,
        "not before the commit"
    );
    txn.commit_with("INSERT INTO receipts VALUES (7)").unwrap();
    assert_eq!(db.scalar_i64("SELECT count(*) FROM rows_"), 2);
    assert_eq!(db.scalar_i64("SELECT count(*) FROM receipts"), 1);
    assert!(idle(&mut client));
}

/// `work` in a window transaction, then `INSERT INTO receipts VALUES (7)` with the COMMIT,
/// which must fail with a unique violation; the connection must be left with no
/// transaction open.
fn failed_commit(db: &TestDb, client: &mut postgres::Client, work: &str) {
    let mut txn = Txn::begin(client).unwrap();
    txn.batch_execute(work).unwrap();
    let err = txn
        .commit_with("INSERT INTO receipts VALUES (7)")
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
    );
    assert!(idle(client));
    assert_eq!(db.scalar_i64("SELECT count(*) FROM rows_"), 0);
    assert_eq!(db.scalar_i64("SELECT count(*) FROM deferred"), 0);
}

#[test]
fn a_failing_last_statement_commits_nothing_and_rolls_back() {
    let (db, mut client) = setup();
    db.exec("INSERT INTO receipts VALUES (7)");
    failed_commit(&db, &mut client, "INSERT INTO rows_ VALUES (1)");
}

#[test]
fn a_failing_commit_commits_nothing_and_leaves_the_connection_idle() {
    let (db, mut client) = setup();
    failed_commit(&db, &mut client, "INSERT INTO deferred VALUES (1), (1)");
    assert_eq!(db.scalar_i64("SELECT count(*) FROM receipts"), 0);
}

#[test]
fn the_commit_returns_what_the_last_statement_returned() {
    let (db, mut client) = setup();
    let txn = Txn::begin(&mut client).unwrap();
    let returned = txn
        .commit_with(
            "WITH applied AS (INSERT INTO rows_ VALUES (1), (2), (3) RETURNING 1) \
             INSERT INTO receipts SELECT count(*) FROM applied RETURNING n",
        )
        .unwrap();
    assert_eq!(returned.as_deref(), Some("3"));
    assert_eq!(db.scalar_i64("SELECT n::bigint FROM receipts"), 3);
    let txn = Txn::begin(&mut client).unwrap();
    assert_eq!(
        txn.commit_with("INSERT INTO rows_ VALUES (4)").unwrap(),
        None
    );
    assert!(idle(&mut client));
}

#[test]
fn dropped_uncommitted_it_rolls_back() {
    let (db, mut client) = setup();
    {
        let mut txn = Txn::begin(&mut client).unwrap();
        txn.batch_execute("INSERT INTO rows_ VALUES (1)").unwrap();
    }
    assert_eq!(db.scalar_i64("SELECT count(*) FROM rows_"), 0);
    assert!(idle(&mut client));
}
