//! First loads by heap block ranges (TID range scans): a heap whose physical order is
//! unrelated to the cursor, created and pre-created destinations, `--jobs`, and SIGKILLs
//! during a load while a writer updates, inserts and deletes; later passes stay keyset.

use crate::crash::{kill_after_windows, next, seed, windows_committed};
use crate::harness::{assert_tables_equal, assert_tables_equal_but, fixtures, Pgsync, TestDb};
use std::time::Instant;

/// The prototype's table with rows inserted in random order, then 30% updated in place (so
/// the heap order is unrelated to `updated`), indexed on the cursor column alone.
pub fn unordered(db: &TestDb, rows: u64) {
    fixtures::transactions_table(db);
    db.exec(&format!(
        "INSERT INTO transactions
           SELECT gen_random_uuid(), gen_random_uuid(), 1500000000000 + g, 1500000000000 + g * 10,
                  CASE WHEN g % 20 = 0 THEN NULL ELSE g END, round((random() * 2000 - 1000)::numeric, 2), 'NEW'
           FROM generate_series(1, {rows}) g ORDER BY random();
         UPDATE transactions SET updated = updated + 5, status = 'UPDATED' WHERE random() < 0.3;
         CREATE INDEX ON transactions (updated);"
    ));
    db.exec("VACUUM ANALYZE transactions");
}

#[test]
fn a_first_load_of_an_unordered_heap_reads_block_ranges_and_later_passes_stay_keyset() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    unordered(&src, 60_000);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "4000"]);
    let plan = job.run_ok("plan", &[]);
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(plan.contains("first load by block ranges"), "{plan}");
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    fixtures::churn(&src, 300, 13);
    let plan = job.run_ok("plan", &[]);
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(!plan.contains("heap block"), "{plan}");
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn block_ranges_fill_a_pre_created_keyed_table_with_parallel_workers() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    unordered(&src, 80_000);
    fixtures::transactions_table(&dst);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "3000", "-j", "3"]);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    // --no-block-scan reads a first load in key order: the same rows.
    let dst2 = TestDb::new("dst2");
    Pgsync::new(&src.url(), &dst2.url(), "transactions")
        .with(&["-c", "3000", "--no-block-scan"])
        .run_ok("single", &[]);
    assert_tables_equal(&src, &dst2, "transactions", "id");
}

#[test]
fn sigkill_during_a_block_range_load_under_a_writer_then_resume_and_a_pass_are_exact_up_to_deletes()
{
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    const ROWS: u64 = 300_000;
    unordered(&src, ROWS);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["--window-size", "5000"]);
    // The writer: updates that move cursors forward (like updated = now()), inserts, and
    // deletes, until told to stop; it returns the deleted keys.
    let writer = crate::harness::writer::start(&src, Vec::<String>::new(), |c, deleted| {
        c.batch_execute(
            "UPDATE transactions SET updated = (SELECT max(updated) FROM transactions) + 1, amount = amount + 1, status = 'W'
               WHERE id IN (SELECT id FROM transactions TABLESAMPLE SYSTEM (0.2) LIMIT 100);
             INSERT INTO transactions SELECT gen_random_uuid(), gen_random_uuid(), 1,
               (SELECT max(updated) FROM transactions) + g, NULL, 1, 'I' FROM generate_series(1, 50) g",
        )
        .unwrap();
        let gone = c
            .query(
                "DELETE FROM transactions WHERE id IN (SELECT id FROM transactions TABLESAMPLE SYSTEM (0.1) LIMIT 2)
                 RETURNING id::text",
                &[],
            )
            .unwrap();
        deleted.extend(gone.iter().map(|r| r.get::<_, String>(0)));
    });
    let mut rng = seed() | 1;
    let mut kills = 0;
    let mut target = 0;
    // Kill points: at most 2 × 10 windows + 2 of the run's ~60, so each lands mid-load.
    for _ in 0..2 {
        let (started, before) = (Instant::now(), windows_committed(&dst));
        let mut child = job.spawn(if kills == 0 { "single" } else { "resume" }, &[], &[]);
        target += 3 + (next(&mut rng) % 8) as i64;
        if kill_after_windows(&dst, &mut child, target, &mut rng, started, before) {
            kills += 1;
        }
    }
    assert_eq!(kills, 2, "the load finished before it was killed twice");
    job.run_ok("resume", &[]);
    let deleted = writer.stop();
    assert!(!deleted.is_empty(), "the writer deleted nothing");
    job.run_ok("single", &[]);
    // Deletes are not synced by a cursor: the rows deleted after their block was read are
    // still in the destination. Every other row is exact, and verify reports those, which
    // --repair removes.
    let keys = deleted
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(",");
    let not_deleted = format!("id NOT IN ({keys})");
    assert_tables_equal_but(&src, &dst, "transactions", "id", &not_deleted);
    let extra = dst.scalar_i64(&format!(
        "SELECT count(*) FROM transactions WHERE NOT ({not_deleted})"
    ));
    let out = job.run("verify", &["--all"]);
    assert_eq!(
        out.status.code(),
        Some(if extra > 0 { 1 } else { 0 }),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    job.run_ok("verify", &["--all", "--repair"]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    job.run_ok("verify", &["--all"]);
}
