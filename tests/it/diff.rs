//! `--mode diff`: tables synced without a cursor by comparing window checksums, then
//! copying and deleting only the differing rows — inserts, updates and deletes in the first,
//! middle and last windows; each real change applied once (trigger counts), equal rows not
//! touched; SIGKILL inside a diff pass then a rerun or `resume`; a concurrent writer.

use crate::harness::{assert_tables_equal, Pgsync, TestDb};
use std::time::Duration;

/// `items (id int PRIMARY KEY, name text, qty int)` with ids 1..=rows (one to five digits:
/// window bounds must be ordered as integers, not as text), analyzed.
fn items(db: &TestDb, rows: u64) {
    db.exec(&format!(
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int);
         INSERT INTO items SELECT g, 'item ' || g, g % 7 FROM generate_series(1, {rows}) g;
         ANALYZE items;"
    ));
}

/// Counts the destination's row trigger firings by operation in `items_audit`.
fn audit(dst: &TestDb) {
    dst.exec(
        "CREATE TABLE items_audit (id int, op text);
         CREATE FUNCTION items_audit() RETURNS trigger AS $$
         BEGIN
           INSERT INTO items_audit VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END, TG_OP);
           RETURN NULL;
         END $$ LANGUAGE plpgsql;
         CREATE TRIGGER items_audit AFTER INSERT OR UPDATE OR DELETE ON items
           FOR EACH ROW EXECUTE FUNCTION items_audit();",
    );
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_diff_pass_applies_inserts_updates_and_deletes_once_each_and_touches_nothing_else() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    items(&src, 30_000);
    let job = Pgsync::new(&src.url(), &dst.url(), "items").with(&["--mode", "diff"]);
    let out = job.run_ok("single", &[]);
    assert!(
        stdout(&out).contains("diff: 30000 rows compared"),
        "{}",
        stdout(&out)
    );
    assert_tables_equal(&src, &dst, "items", "id");
    audit(&dst);
    // Changes in the first, middle and last windows and scattered; an update that changes
    // nothing; a key deleted and inserted again with other contents.
    src.exec(
        "UPDATE items SET qty = qty + 100 WHERE id <= 5 OR id BETWEEN 15000 AND 15004 OR id >= 29996 OR id % 997 = 0;
         UPDATE items SET name = name WHERE id BETWEEN 100 AND 120;
         DELETE FROM items WHERE id IN (6, 7, 15010, 29990) OR id % 1009 = 0;
         DELETE FROM items WHERE id = 20000; INSERT INTO items VALUES (20000, 'again', -1);
         INSERT INTO items SELECT g, 'new ' || g, NULL FROM generate_series(30001, 30040) g;
         INSERT INTO items VALUES (-3, 'below every window', 1);",
    );
    // 45 rows updated and key 20000 replaced; 33 deleted; 40 keys above the largest and
    // one below the smallest inserted.
    let (updated, deleted, inserted) = (45 + 1, 4 + 29, 40 + 1);
    let out = job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "items", "id");
    // The keys above the largest come with the pass on the key; the rest with the diff pass.
    assert!(stdout(&out).contains("40 rows written"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("{} rows written, {deleted} deleted", updated + 1)),
        "{}",
        stdout(&out)
    );
    let fired = |op: &str| {
        dst.scalar_i64(&format!(
            "SELECT count(*) FROM items_audit WHERE op = '{op}'"
        ))
    };
    // Each real change fired once; the update that changed nothing did not fire.
    assert_eq!(fired("UPDATE"), updated as i64);
    assert_eq!(fired("DELETE"), deleted as i64);
    assert_eq!(fired("INSERT"), inserted as i64);
    // Equal tables: the next pass compares, finds nothing, changes nothing.
    let out = job.run_ok("single", &[]);
    assert!(
        stdout(&out).contains("0 differed: 0 rows written, 0 deleted"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM items_audit"),
        (updated + deleted + inserted) as i64
    );
    // verify of a diff job compares the whole table; with small chunks it agrees.
    let out = job.run_ok("verify", &[]);
    assert!(stdout(&out).contains("the whole table"), "{}", stdout(&out));
    dst.exec("DELETE FROM items WHERE id = 12345");
    let out = job.assert_exit("verify", &["--chunk-blocks", "3"], 1);
    assert!(
        stdout(&out).contains("missing in destination: key (12345)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn auto_mode_syncs_a_table_without_the_cursor_column_by_diff_and_says_so() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TABLE codes (code text PRIMARY KEY, label text);
         INSERT INTO codes SELECT 'c' || g, 'label ' || g FROM generate_series(1, 2000) g;
         ANALYZE codes;",
    );
    // Without a mode the missing cursor is refused, as ever.
    Pgsync::new(&src.url(), &dst.url(), "codes").assert_exit("single", &[], 2);
    let mut job = Pgsync::new(&src.url(), &dst.url(), "codes").with(&["--mode", "auto"]);
    job.options.retain(|o| o != "--quiet");
    let out = job.run_ok("single", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no column \"updated\"; synced by diff"),
        "{err}"
    );
    src.exec("UPDATE codes SET label = 'changed' WHERE code IN ('c1', 'c1000', 'c2000'); DELETE FROM codes WHERE code = 'c500';");
    let out = job.run_ok("single", &[]);
    assert!(
        stdout(&out).contains("3 rows written, 1 deleted"),
        "{}",
        stdout(&out)
    );
    assert_tables_equal(&src, &dst, "codes", "code");
    // status with the same arguments finds the job auto made a diff job.
    let status = job.status();
    assert_eq!(status["diff_pass"]["rows_deleted"], 1, "{status}");
    assert!(
        status["job"].as_str().unwrap().ends_with("by diff"),
        "{status}"
    );
}

#[test]
fn a_cursor_with_values_of_different_lengths_is_bounded_by_its_largest_value() {
    // The pass's upper bound and the slice bounds order by the cursor's type: 10 > 9.
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, updated int NOT NULL);
         INSERT INTO t SELECT g, g FROM generate_series(1, 10) g;",
    );
    let job = Pgsync::new(&src.url(), &dst.url(), "t");
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "t", "id");
}

#[cfg(feature = "failpoints")]
#[test]
fn a_diff_pass_killed_anywhere_is_finished_by_a_rerun_or_resume() {
    for (failpoint, then) in [
        ("diff_before_commit@2", "single"),
        ("diff_after_commit@1", "resume"),
        ("diff_after_commit@3", "single"),
    ] {
        let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
        items(&src, 20_000);
        // Small windows, ~400 changed keys each, applied ~1,000 keys a transaction: the kill
        // comes after some transactions and before others.
        let job = Pgsync::new(&src.url(), &dst.url(), "items").with(&[
            "--mode",
            "diff",
            "--window-size",
            "2000",
        ]);
        job.run_ok("single", &[]);
        src.exec(
            "UPDATE items SET qty = -qty - 1 WHERE id % 5 = 1;
             DELETE FROM items WHERE id % 211 = 0;",
        );
        crate::crash::kill_at(&job, failpoint);
        let out = job.run_ok(then, &[]);
        assert!(
            stdout(&out).contains(" diff: "),
            "{failpoint}: {}",
            stdout(&out)
        );
        assert_tables_equal(&src, &dst, "items", "id");
        let out = job.run_ok("single", &[]);
        assert!(
            stdout(&out).contains("0 differed"),
            "{failpoint}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn continuous_diff_under_a_writer_ends_exact_after_one_more_pass() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    items(&src, 20_000);
    let job =
        Pgsync::new(&src.url(), &dst.url(), "items").with(&["--mode", "diff", "--delay", "0"]);
    let child = job.spawn("continuous", &[], &[]);
    // Deletes keys and puts some back with other contents, updates, inserts new keys.
    let writer = crate::harness::writer::repeating(
        &src,
        "WITH gone AS (DELETE FROM items WHERE id IN (SELECT id FROM items TABLESAMPLE SYSTEM (1) LIMIT 10) RETURNING *)
             INSERT INTO items SELECT id, 'back', qty + 1 FROM gone WHERE random() < 0.5;
             UPDATE items SET qty = qty + 1 WHERE id IN (SELECT id FROM items TABLESAMPLE SYSTEM (1) LIMIT 10);
             INSERT INTO items SELECT max(id) + 1, 'appended', 0 FROM items;",
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(writer.stop() > 10, "the writer hardly ran");
    crate::harness::bin::sigint(child);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "items", "id");
}

/// The drill-down reads the differing buckets' rows back by their heap places; a row
/// updated in between (same contents, another place) is not where it was hashed, so the
/// buckets are scanned for instead — the pass still brings every difference.
#[cfg(feature = "failpoints")]
#[test]
fn rows_moved_between_hashing_and_reading_back_are_found_by_a_scan() {
    use std::io::{BufRead, BufReader};
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    items(&src, 30_000);
    let job = Pgsync::new(&src.url(), &dst.url(), "items").with(&["--mode", "diff"]);
    job.run_ok("single", &[]);
    src.exec("UPDATE items SET qty = qty + 100 WHERE id % 1000 = 0");
    let go_on = job.state_dir().with_extension("continue");
    let mut job = job.with(&["-v"]);
    job.options.retain(|o| o != "--quiet");
    let mut child = job.spawn(
        "single",
        &[],
        &[
            ("PGSYNC_FAILPOINT", "drill_after_hashes:pause"),
            ("PGSYNC_FAILPOINT_CONTINUE", go_on.to_str().unwrap()),
        ],
    );
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in stderr.by_ref() {
        let line = line.unwrap();
        let paused = line == "pgsync-failpoint: drill_after_hashes";
        seen.push(line);
        if paused {
            break;
        }
    }
    assert!(
        seen.last()
            .is_some_and(|l| l.starts_with("pgsync-failpoint")),
        "{seen:?}"
    );
    // Same contents, new places: every differing source row moves.
    src.exec("UPDATE items SET name = name WHERE id % 1000 = 0");
    std::fs::write(&go_on, b"").unwrap();
    seen.extend(stderr.map(Result::unwrap));
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&go_on);
    assert!(out.status.success(), "{seen:?}");
    assert!(
        seen.iter().any(|l| l.contains("moved since it was hashed")),
        "{seen:?}"
    );
    assert!(stdout(&out).contains("30 rows written"), "{}", stdout(&out));
    assert_tables_equal(&src, &dst, "items", "id");
}

/// After a pass that found nothing differing, the next compares each whole table first (one
/// plain scan a side) and sums windows only when that differs: a quiet table costs one
/// comparison, and one changed row is still found and applied.
#[test]
fn after_a_quiet_pass_the_whole_table_is_compared_first_and_a_change_still_found() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    items(&src, 20_000);
    let mut job = Pgsync::new(&src.url(), &dst.url(), "items").with(&["--mode", "diff", "-v"]);
    job.options.retain(|o| o != "--quiet");
    job.run_ok("single", &[]);
    let quiet = job.run_ok("single", &[]);
    let err = String::from_utf8_lossy(&quiet.stderr);
    assert!(err.contains("whole-range checksums of both sides"), "{err}");
    assert!(
        err.contains("(equal)") && !err.contains("window checksums"),
        "{err}"
    );
    assert!(stdout(&quiet).contains("0 differed"), "{}", stdout(&quiet));
    src.exec("UPDATE items SET qty = qty + 1 WHERE id = 12345");
    let changed = job.run_ok("single", &[]);
    let err = String::from_utf8_lossy(&changed.stderr);
    assert!(err.contains("different: summing windows"), "{err}");
    assert!(
        stdout(&changed).contains("1 rows written"),
        "{}",
        stdout(&changed)
    );
    assert_tables_equal(&src, &dst, "items", "id");
}
