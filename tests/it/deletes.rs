//! `--deletes`: rows deleted at the source are deleted in the destination after a pass — a
//! key-only comparison up to the watermark — and nothing else is, under a concurrent writer
//! that deletes and re-inserts keys too.

use crate::harness::{assert_tables_equal, fixtures, Pgsync, TestDb};
use std::time::Duration;

/// Counts the destination's DELETE trigger firings in `deleted_audit`.
fn audit_deletes(dst: &TestDb) {
    dst.exec(
        "CREATE TABLE deleted_audit (id uuid);
         CREATE FUNCTION audit_delete() RETURNS trigger AS $$
         BEGIN INSERT INTO deleted_audit VALUES (OLD.id); RETURN OLD; END $$ LANGUAGE plpgsql;
         CREATE TRIGGER audit_delete AFTER DELETE ON transactions FOR EACH ROW EXECUTE FUNCTION audit_delete();",
    );
}

#[test]
fn a_pass_with_deletes_removes_exactly_the_rows_the_source_deleted() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 40_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "5000"]);
    job.run_ok("single", &[]);
    audit_deletes(&dst);
    // Deleted in the first, middle and last windows; one deleted and inserted again (new
    // cursor); updates and inserts besides.
    src.exec(
        "DELETE FROM transactions WHERE updated IN (SELECT DISTINCT updated FROM transactions ORDER BY updated LIMIT 1)
            OR id IN (SELECT id FROM transactions ORDER BY md5(id::text) LIMIT 60)
            OR updated = (SELECT max(updated) FROM transactions);
         WITH gone AS (DELETE FROM transactions WHERE id = (SELECT id FROM transactions ORDER BY md5(id::text) DESC LIMIT 1) RETURNING *)
         INSERT INTO transactions SELECT id, user_id, created, (SELECT max(updated) FROM transactions) + 5, NULL, amount, 'AGAIN' FROM gone;",
    );
    fixtures::churn(&src, 30, 97);
    let deleted_at_source =
        40_000 - src.scalar_i64("SELECT count(*) FROM transactions WHERE status <> 'NEW'");
    let out = job.run_ok("single", &["--deletes"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rows deleted (keys the source no longer has)"),
        "{text}"
    );
    assert_tables_equal(&src, &dst, "transactions", "id");
    // Each deleted row fired the destination's trigger once; the re-inserted one was updated, not deleted.
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM deleted_audit"),
        deleted_at_source
    );
    // Nothing left to delete: a second sweep deletes nothing.
    let out = job.run_ok("single", &["--deletes"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(": 0 rows deleted"));
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM deleted_audit"),
        deleted_at_source
    );
}

#[test]
fn continuous_with_deletes_under_a_writer_deleting_and_reinserting_keys_ends_exact() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 30_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "-c",
        "2000",
        "--delay",
        "0",
        "--deletes",
    ]);
    let child = job.spawn("continuous", &[], &[]);
    // Deletes a few keys, puts some back with a new cursor (like updated = now()), updates.
    let writer = crate::harness::writer::repeating(
        &src,
        "WITH gone AS (DELETE FROM transactions WHERE id IN (SELECT id FROM transactions TABLESAMPLE SYSTEM (1) LIMIT 20) RETURNING *)
             INSERT INTO transactions SELECT id, user_id, created, (SELECT max(updated) FROM transactions) + 1, NULL, amount, 'BACK'
             FROM gone WHERE random() < 0.5;
             UPDATE transactions SET updated = (SELECT max(updated) FROM transactions) + 1, amount = amount + 1
             WHERE id IN (SELECT id FROM transactions TABLESAMPLE SYSTEM (1) LIMIT 20);",
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(writer.stop() > 10, "the writer hardly ran");
    crate::harness::bin::sigint(child);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
}
