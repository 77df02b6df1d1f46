//! `--jobs N`: several workers copy disjoint slices at once. The copy must be exact on every
//! path (created table, existing keyed table, incremental upsert), survive SIGKILL at random
//! moments (resumed with any number of jobs), and go on without the local state from the
//! receipts' resume point.

use crate::crash::{inserted, kill_after_windows, next, seed, wait_for_windows, windows_committed};
use crate::harness::{assert_tables_equal, fixtures, Pgsync, TestDb};
use std::time::Instant;

/// Windows whose number is lower than the previous window of another slice: the workers
/// really interleaved.
fn interleaved(dst: &TestDb) -> i64 {
    dst.scalar_i64(
        "SELECT count(*) FROM (SELECT slice, lag(slice) OVER (ORDER BY window_no) AS prev \
         FROM pgsync.receipts WHERE NOT pass_finished OR rows_read > 0) w WHERE slice < prev",
    )
}

#[test]
fn jobs_copy_fresh_existing_and_incremental_passes_exactly() {
    let (src, created, existing) = (TestDb::new("src"), TestDb::new("dst"), TestDb::new("dst"));
    fixtures::transactions(&src, 200_000, 40);
    fixtures::transactions_table(&existing);
    let three_jobs = |dst: &TestDb, extra: &[&str]| {
        // --max-rate: the load takes a second or more whatever the machine, so the three
        // workers overlap and their windows interleave.
        Pgsync::new(&src.url(), &dst.url(), "transactions").with(
            &[
                &[
                    "--jobs",
                    "3",
                    "--window-size",
                    "4000",
                    "--max-rate",
                    "150000",
                ],
                extra,
            ]
            .concat(),
        )
    };
    for dst in [&created, &existing] {
        let job = three_jobs(dst, &[]);
        job.run_ok("single", &[]);
        assert_tables_equal(&src, dst, "transactions", "id");
        let slices = dst.scalar_i64("SELECT count(DISTINCT slice) FROM pgsync.receipts");
        assert!(slices >= 9, "{slices} slices for 3 jobs");
        assert!(
            interleaved(dst) > 0,
            "the slices were copied one after the other"
        );
        assert_eq!(
            dst.scalar_i64("SELECT count(*) FROM pgsync.receipts WHERE pass_finished"),
            1
        );
        assert_eq!(job.status()["pass"]["finished"], true);
    }
    // Incremental: 10% changed plus new rows, upserted by three workers.
    fixtures::churn(&src, 5_000, 10);
    src.exec("ANALYZE transactions");
    for dst in [&created, &existing] {
        three_jobs(dst, &["--lookback", "0"]).run_ok("single", &[]);
        assert_tables_equal(&src, dst, "transactions", "id");
    }
}

#[test]
fn sigkill_during_a_parallel_load_then_resume_with_other_job_counts_is_exact() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    const ROWS: i64 = 400_000;
    const WINDOW: i64 = 5_000;
    fixtures::transactions(&src, ROWS as u64, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions")
        .with(&["--window-size", &WINDOW.to_string()]);
    let mut rng = seed() | 1;
    let (mut kills, mut target) = (0, 0);
    // Kill points: at most 3 × 11 windows + 2 of the run's 80, so every kill lands mid-copy.
    for jobs in ["4", "2", "3"] {
        let sub = if kills == 0 { "single" } else { "resume" };
        let (started, before) = (Instant::now(), windows_committed(&dst));
        let mut child = job.spawn(sub, &["--jobs", jobs], &[]);
        target += 4 + (next(&mut rng) % 8) as i64;
        if kill_after_windows(&dst, &mut child, target, &mut rng, started, before) {
            kills += 1;
        }
    }
    assert_eq!(
        kills, 3,
        "the copy finished before it was killed three times"
    );
    job.run_ok("resume", &["--jobs", "1"]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    // Each kill rolls back at most one window in flight per worker (4 at most).
    let ins = inserted(&dst, ROWS);
    assert!(
        ins <= ROWS + kills * 4 * WINDOW,
        "{ins} tuples inserted for {ROWS} rows and {kills} kills"
    );
    assert_eq!(job.status()["pass"]["finished"], true);
}

#[test]
fn a_parallel_pass_whose_state_is_lost_goes_on_from_the_receipts_without_losing_rows() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 300_000, 100);
    // An existing keyed table: the rest of the pass is upserted over what is there.
    fixtures::transactions_table(&dst);
    let mut job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "--window-size",
        "3000",
        "--jobs",
        "4",
    ]);
    let mut child = job.spawn("single", &[], &[]);
    wait_for_windows(&dst, &mut child, 25);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        interleaved(&dst) > 0,
        "the workers had not interleaved: the test proves nothing"
    );
    let copied = dst.scalar_i64("SELECT count(*) FROM transactions");
    assert!(copied < 300_000, "the copy finished before the kill");
    std::fs::remove_dir_all(job.state_dir()).unwrap();
    job.options.retain(|o| o != "--quiet");
    let out = job.run_ok("resume", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("every window committed"),
        "no note about the receipts' resume point: {stderr}"
    );
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn sigint_stops_every_worker_after_a_clean_checkpoint() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 300_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "--window-size",
        "2000",
        "--jobs",
        "3",
    ]);
    let mut child = job.spawn("single", &[], &[]);
    wait_for_windows(&dst, &mut child, 10);
    crate::harness::bin::sigint(child);
    let status = job.status();
    assert_eq!(status["pass"]["finished"], false, "{status}");
    assert_eq!(
        status["pass"]["windows_committed"].as_i64().unwrap(),
        dst.scalar_i64("SELECT count(*) FROM pgsync.receipts"),
        "state and receipts disagree after SIGINT: {status}"
    );
    job.run_ok("resume", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[cfg(feature = "failpoints")]
#[test]
fn sigkill_between_a_workers_commit_and_its_checkpoint_is_reconciled_from_its_slice_receipt() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 100_000, 50);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "--window-size",
        "2000",
        "--jobs",
        "3",
    ]);
    crate::crash::kill_at(&job, "after_dest_commit@12");
    let before = job.status();
    job.run_ok("resume", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    let after = job.status();
    let reconciled = after["pass"]["windows_reconciled"].as_i64().unwrap();
    assert!(
        (1..=3).contains(&reconciled),
        "{reconciled} windows reconciled (before: {before}, after: {after})"
    );
    assert_eq!(
        after["pass"]["windows_committed"].as_i64().unwrap(),
        dst.scalar_i64(
            "SELECT count(*) FROM pgsync.receipts WHERE rows_read > 0 OR NOT pass_finished"
        ),
        "{after}"
    );
}
