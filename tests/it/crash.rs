//! Crashes: the real binary is killed (SIGKILL from this process) at random moments and at
//! each step of the checkpoint protocol, or interrupted with SIGINT; `resume` must then
//! finish with an exact copy, without recopying committed windows, and destination triggers
//! must have fired exactly once per row.

use crate::harness::{assert_tables_equal, fixtures, Pgsync, TestDb};
use std::process::Child;
use std::time::{Duration, Instant};

/// Tuples inserted into the destination table (rolled-back inserts included), once every
/// pgsync session has ended and the count has reached `at_least` or stayed unchanged for two
/// seconds (`harness::stats::settled`).
pub(crate) fn inserted(dst: &TestDb, at_least: i64) -> i64 {
    crate::harness::stats::settled(
        dst,
        "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'transactions'",
        Some(at_least),
        Duration::from_secs(2),
    )
}

pub(crate) fn seed() -> u64 {
    let seed = std::env::var("PGSYNC_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash seed: {seed} (replay with PGSYNC_CRASH_SEED={seed})");
    seed
}

/// xorshift64*: enough randomness for kill timings, replayable from the seed.
pub(crate) fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Receipts so far.
pub(crate) fn windows_committed(dst: &TestDb) -> i64 {
    dst.client()
        .query_one("SELECT count(*) FROM pgsync.receipts", &[])
        .map(|r| r.get::<_, i64>(0))
        .unwrap_or(0)
}

/// SIGKILLs the child at a random moment within about two windows after it has committed
/// `target` windows. The moment scales to the run: the pace is measured from the child's
/// own windows since `started`, when `before` windows were committed. True when it was
/// killed (false: it had exited already).
pub(crate) fn kill_after_windows(
    dst: &TestDb,
    child: &mut Child,
    target: i64,
    rng: &mut u64,
    started: Instant,
    before: i64,
) -> bool {
    wait_for_windows(dst, child, target);
    let done = (windows_committed(dst) - before).max(1);
    let per_window = started.elapsed() / done as u32;
    std::thread::sleep(per_window.mul_f64((next(rng) % 2_000) as f64 / 1_000.0));
    if child.try_wait().unwrap().is_some() {
        return false;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// Kills the child once it has committed `windows` windows; true when it was still running
/// then (false: it had exited already).
pub(crate) fn kill_at_windows(dst: &TestDb, child: &mut Child, windows: i64) -> bool {
    wait_for_windows(dst, child, windows);
    let running = child.try_wait().unwrap().is_none();
    child.kill().ok();
    child.wait().unwrap();
    running
}

/// Waits until the child has committed at least `windows` windows (per receipts) or exits.
pub(crate) fn wait_for_windows(dst: &TestDb, child: &mut Child, windows: i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        if windows_committed(dst) >= windows {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the child made no progress in 120 s");
}

#[test]
fn sigkill_at_random_moments_of_a_million_row_copy_then_resume_is_exact_and_recopies_at_most_the_windows_in_flight(
) {
    // A first load by heap block ranges (the default).
    random_kills(1_000_000, &[]);
}

#[test]
fn sigkill_at_random_moments_of_a_keyset_copy_then_resume_is_exact_and_recopies_at_most_the_windows_in_flight(
) {
    random_kills(400_000, &["--no-block-scan"]);
}

/// An incremental pass whose windows are sized by time reads several windows per source
/// statement and cuts them apart between rows: SIGKILLs among those cut windows (bursts of
/// 300 equal cursor values cross the cuts), then `resume` and one more pass: exact.
#[test]
fn sigkill_among_windows_cut_from_one_statement_then_resume_is_exact() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 120_000, 300);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions");
    job.run_ok("single", &[]);
    fixtures::churn(&src, 10_000, 1);
    // A tiny target shrinks windows to their floor (1,000 rows): statements of 4,000 rows,
    // each cut in four, the whole pass ~130 windows.
    let job = job.with(&["--window-target", "1ms"]);
    let mut rng = seed() | 1;
    let mut kills = 0;
    let mut target = windows_committed(&dst);
    for _ in 0..2 {
        let (started, before) = (Instant::now(), windows_committed(&dst));
        let mut child = job.spawn(if kills == 0 { "single" } else { "resume" }, &[], &[]);
        target += 5 + (next(&mut rng) % 20) as i64;
        if kill_after_windows(&dst, &mut child, target, &mut rng, started, before) {
            kills += 1;
        }
    }
    assert_eq!(kills, 2, "the pass finished before it was killed twice");
    job.run_ok("resume", &[]);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
}

/// Three SIGKILLs at random moments of a first load of `rows` rows in windows of about
/// 20,000, then `resume`: an exact copy, and each kill rolled back at most its window.
fn random_kills(rows: i64, path: &[&str]) {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, rows as u64, 300);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions")
        .with(&["--window-size", "20000"])
        .with(path);
    let mut rng = seed() | 1;
    let mut kills = 0;
    let mut target = 0;
    // Kill points: at most 3 × (windows / 6 + 1) + 2 windows, so every kill lands mid-copy.
    let step = (rows / 20_000 / 6).max(2) as u64;
    for _ in 0..3 {
        let (started, before) = (Instant::now(), windows_committed(&dst));
        let mut child = job.spawn(if kills == 0 { "single" } else { "resume" }, &[], &[]);
        target += 1 + (next(&mut rng) % step) as i64;
        if kill_after_windows(&dst, &mut child, target, &mut rng, started, before) {
            kills += 1;
        }
    }
    assert_eq!(
        kills, 3,
        "the copy finished before it was killed three times"
    );
    job.run_ok("resume", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    // Each kill can roll back at most the one window in flight (keyset windows hold 20,000
    // rows; block windows whole blocks, about as many: the receipts say).
    let window = dst.scalar_i64("SELECT max(rows_read) FROM pgsync.receipts");
    assert!(
        (20_000..21_000).contains(&window),
        "windows of {window} rows"
    );
    let ins = inserted(&dst, rows);
    assert!(
        ins <= rows + kills * window,
        "{ins} tuples inserted for {rows} rows and {kills} kills"
    );
    let status = job.status();
    assert_eq!(status["pass"]["finished"], true, "{status}");
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM pgsync.receipts WHERE pass_finished"),
        1
    );
}

/// Runs `single` with a failpoint armed, waits for it to stop there, SIGKILLs it.
#[cfg(feature = "failpoints")]
pub(crate) fn kill_at(job: &Pgsync, failpoint: &str) {
    use std::io::{BufRead, BufReader};
    let mut child = job.spawn("single", &[], &[("PGSYNC_FAILPOINT", failpoint)]);
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let name = failpoint.split('@').next().unwrap();
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        if line == format!("pgsync-failpoint: {name}") {
            child.kill().unwrap();
            child.wait().unwrap();
            return;
        }
        seen.push(line);
    }
    panic!(
        "failpoint {failpoint} never reached; stderr: {seen:?}; exit {:?}",
        child.wait()
    );
}

#[cfg(feature = "failpoints")]
fn failpoint_case(failpoint: &str, expect_recopied_windows: i64) {
    failpoint_case_on(failpoint, expect_recopied_windows, &["--no-block-scan"]);
    failpoint_case_on(failpoint, expect_recopied_windows, &[]);
}

/// One failpoint case on one read path: keyset windows of exactly 1,000 rows, or heap
/// block windows of about 1,000 (whole blocks: the receipts say how many).
#[cfg(feature = "failpoints")]
fn failpoint_case_on(failpoint: &str, expect_recopied_windows: i64, path: &[&str]) {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 12_000, 250);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions")
        .with(&["--window-size", "1000"])
        .with(path);
    kill_at(&job, failpoint);
    job.run_ok("resume", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    let window_rows = dst.scalar_i64("SELECT max(rows_read) FROM pgsync.receipts");
    assert!((1_000..1_200).contains(&window_rows), "{window_rows}");
    let expect_recopied_rows = expect_recopied_windows * window_rows;
    let ins = inserted(&dst, 12_000 + expect_recopied_rows);
    assert_eq!(
        ins,
        12_000 + expect_recopied_rows,
        "tuples inserted after a kill at {failpoint}"
    );
    // Re-running changes nothing.
    job.run_ok("single", &[]);
    assert_eq!(inserted(&dst, ins + 1), ins);
}

#[cfg(feature = "failpoints")]
#[test]
fn sigkill_after_the_plan_is_recorded_resumes_from_the_plan() {
    failpoint_case("after_plan", 0);
}

#[cfg(feature = "failpoints")]
#[test]
fn sigkill_before_the_destination_commit_recopies_only_the_window_in_flight() {
    // The killed transaction's 1,000 inserts are rolled back (they still count in n_tup_ins).
    failpoint_case("before_dest_commit@4", 1);
}

#[cfg(feature = "failpoints")]
#[test]
fn sigkill_after_the_destination_commit_before_the_checkpoint_recopies_nothing() {
    // The lost-acknowledgement case: the receipt proves the window is in.
    failpoint_case("after_dest_commit@4", 0);
}

#[cfg(feature = "failpoints")]
#[test]
fn sigkill_after_the_checkpoint_recopies_nothing() {
    failpoint_case("after_checkpoint@4", 0);
}

#[cfg(feature = "failpoints")]
#[test]
fn sigkill_after_the_destination_commit_reports_the_window_reconciled_from_receipts() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 5_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["--window-size", "1000"]);
    kill_at(&job, "after_dest_commit@2");
    // Window 2 is in the destination, not in the state. Window 1's checkpoint was handed to
    // the background flusher, which the kill may have beaten (checkpoint-protocol.md: up to
    // 4 windows per process): the state holds 0 or 1 windows, the receipts 2.
    let status = job.status();
    let checkpointed = status["pass"]["windows_committed"].as_i64().unwrap();
    assert!(checkpointed == 0 || checkpointed == 1, "{status}");
    assert_eq!(dst.scalar_i64("SELECT count(*) FROM pgsync.receipts"), 2);
    let child = job.spawn("resume", &[], &[]);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    // The one slice is moved to its last receipt: the windows reconciled are those the
    // state missed (window 2, and window 1 too when the kill beat its checkpoint).
    assert_eq!(job.status()["pass"]["windows_reconciled"], 2 - checkpointed);
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn sigint_exits_130_after_a_clean_checkpoint_and_resume_completes() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 200_000, 300);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["--window-size", "2000"]);
    let mut child = job.spawn("single", &[], &[]);
    wait_for_windows(&dst, &mut child, 5);
    let sent = Instant::now();
    let out = crate::harness::bin::sigint(child);
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "took {:?} to stop",
        sent.elapsed()
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("pgsync resume"));
    let status = job.status();
    assert_eq!(status["pass"]["finished"], false, "{status}");
    let committed = status["pass"]["windows_committed"].as_i64().unwrap();
    assert_eq!(
        committed,
        dst.scalar_i64("SELECT count(*) FROM pgsync.receipts"),
        "state and receipts disagree after SIGINT"
    );
    job.run_ok("resume", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn destination_triggers_fire_once_per_row_across_kills_and_resumes() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 150_000, 300);
    fixtures::balance_trigger(&dst);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["--window-size", "3000"]);
    for (i, windows) in [4, 12].into_iter().enumerate() {
        let mut child = job.spawn(if i == 0 { "single" } else { "resume" }, &[], &[]);
        wait_for_windows(&dst, &mut child, windows);
        let _ = child.kill();
        child.wait().unwrap();
    }
    job.run_ok("resume", &[]);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    // Committed firings: exactly one AFTER INSERT and one BEFORE INSERT per row, no UPDATE.
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM trigger_audit WHERE op = 'INSERT'"),
        150_000
    );
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM trigger_audit WHERE op = 'BEFORE INSERT'"),
        150_000
    );
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM trigger_audit WHERE op = 'UPDATE'"),
        0
    );
    // Balances equal those of a clean run: the sum of amounts per user.
    let src_bal: Vec<(String, String)> = src
        .client()
        .query(
            "SELECT user_id::text, sum(amount)::text FROM transactions GROUP BY 1 ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let dst_bal: Vec<(String, String)> = dst
        .client()
        .query(
            "SELECT user_id::text, balance::text FROM user_balance ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(src_bal, dst_bal);
}

#[cfg(feature = "failpoints")]
#[test]
fn sigkill_during_the_deferred_key_build_then_resume_builds_it_without_recopying() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 12_000, 250);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["--window-size", "1000"]);
    // The destination is created without its key, loaded, and killed inside the key build.
    kill_at(&job, "before_key_commit");
    let has_key = |dst: &TestDb| {
        dst.scalar_i64("SELECT count(*) FROM pg_constraint WHERE conrelid = 'transactions'::regclass AND contype = 'p'")
    };
    assert_eq!(has_key(&dst), 0, "the killed build left a key");
    job.run_ok("resume", &[]);
    assert_eq!(has_key(&dst), 1);
    assert_tables_equal(&src, &dst, "transactions", "id");
    assert_eq!(inserted(&dst, 12_000), 12_000, "rows were copied again");
    // An incremental pass works on the keyed table.
    fixtures::churn(&src, 100, 7);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn rows_moved_during_a_load_without_key_are_deduplicated_when_the_key_is_built() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    // Rows 5 and 6 (already copied, no key yet) move to cursors the load has not reached.
    fixtures::move_rows_mid_load(
        &src,
        &dst,
        "UPDATE t SET updated = 999000 + id, v = 'moved' WHERE id IN (5, 6)",
    );
    assert_tables_equal(&src, &dst, "t", "id");
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM t WHERE v = 'moved'"),
        2
    );
}

#[cfg(feature = "failpoints")]
#[test]
fn a_worker_panic_exits_2_naming_it_and_resume_completes() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 12_000, 250);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["--window-size", "1000"]);
    let child = job.spawn(
        "single",
        &[],
        &[("PGSYNC_FAILPOINT", "before_dest_commit@3:panic")],
    );
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("pgsync: worker: a pgsync thread panicked: failpoint before_dest_commit")
            && err.contains("this is a bug"),
        "{err}"
    );
    assert!(!err.contains("interrupted"), "{err}");
    // Two windows committed; the third rolled back with the panic.
    assert_eq!(dst.scalar_i64("SELECT count(*) FROM pgsync.receipts"), 2);
    job.run_ok("resume", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
}
