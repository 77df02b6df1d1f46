//! Many tables in one job: a schema of tables of different shapes synced by one command
//! (patterns, --exclude), one table's permanent error not stopping the others, SIGKILL then
//! `resume` over the set, `status` and `verify` over the set, tables appearing and
//! disappearing between passes, and destination foreign keys between synced tables refused.

use crate::crash::{kill_at_windows, next, seed, windows_committed};
use crate::harness::{assert_tables_equal, compare::count, Pgsync, TestDb};
use std::time::Instant;

/// Rows of the large table (ties of 100 rows per cursor value, heap in random order).
const BIG: i64 = 300_000;

/// The schema: `orders` (300k rows, ties), `lines` (composite key), `tags` (text key,
/// unicode), `tiny` (3 rows), `empty`, `legacy` (no `updated` column), and `audit.events`
/// in another schema (left out by `public.*`).
fn schema(src: &TestDb) {
    src.exec(&format!(
        "CREATE TABLE orders (id bigint PRIMARY KEY, updated timestamptz NOT NULL, total numeric(12,2), note text);
         INSERT INTO orders SELECT g, '2026-01-01'::timestamptz + (g / 100) * interval '1 s', g % 1000 + 0.25, repeat('x', g % 7)
           FROM generate_series(1, {BIG}) g ORDER BY random();
         CREATE INDEX ON orders (updated);
         CREATE TABLE lines (order_id bigint, line int, updated timestamptz NOT NULL, qty int, PRIMARY KEY (order_id, line));
         INSERT INTO lines SELECT g / 4, g % 4, '2026-01-01'::timestamptz + (g / 3) * interval '1 s', g % 9
           FROM generate_series(4, 20003) g;
         CREATE INDEX ON lines (updated);
         CREATE TABLE tags (name text PRIMARY KEY, updated timestamptz, label text);
         INSERT INTO tags SELECT 'tag-' || g || '-é', '2026-01-01'::timestamptz + g * interval '1 min', CASE WHEN g % 5 = 0 THEN NULL ELSE '名前' || g END
           FROM generate_series(1, 2000) g;
         CREATE TABLE tiny (k int PRIMARY KEY, updated timestamptz NOT NULL);
         INSERT INTO tiny VALUES (1, '2026-01-01'), (2, '2026-01-01'), (3, '2026-01-02');
         CREATE TABLE empty (id int PRIMARY KEY, updated timestamptz NOT NULL);
         CREATE TABLE legacy (id int PRIMARY KEY, changed timestamptz);
         INSERT INTO legacy VALUES (1, now());
         CREATE SCHEMA audit;
         CREATE TABLE audit.events (id int PRIMARY KEY, updated timestamptz NOT NULL);
         INSERT INTO audit.events SELECT g, now() FROM generate_series(1, 10) g;
         ANALYZE;"
    ));
}

/// Every synced table of the schema equal on both sides (the empty one empty on both).
fn assert_all_equal(src: &TestDb, dst: &TestDb) {
    assert_tables_equal(src, dst, "orders", "id");
    assert_tables_equal(src, dst, "lines", "order_id, line");
    assert_tables_equal(src, dst, "tags", "name");
    assert_tables_equal(src, dst, "tiny", "k");
    assert_eq!(count(dst, "empty"), 0);
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_schema_is_synced_by_one_command_and_a_failing_table_does_not_stop_the_others() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    schema(&src);
    let job = Pgsync::new(&src.url(), &dst.url(), "public.*").with(&["--jobs", "2"]);
    let out = job.assert_exit("single", &[], 2);
    // The failed table is named, with what to do; the others finished.
    let err = stderr(&out);
    assert!(err.contains("1 of 6 tables failed: public.legacy"), "{err}");
    assert!(err.contains("--cursor-column"), "{err}");
    assert!(
        stdout(&out).contains("6 tables: 5 done, 1 failed"),
        "{}",
        stdout(&out)
    );
    assert_all_equal(&src, &dst);
    // `audit.events` is outside the pattern.
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM pg_tables WHERE schemaname = 'audit'"),
        0
    );
    // status over the set: every table, the failed one with its error.
    let status = job.status();
    let tables = status["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("{status}"));
    let legacy = tables
        .iter()
        .find(|t| t["table"] == "public.legacy")
        .unwrap();
    assert!(
        legacy["last_error"].as_str().unwrap().contains("cursor"),
        "{legacy}"
    );
    let orders = tables
        .iter()
        .find(|t| t["table"] == "public.orders")
        .unwrap();
    assert_eq!(orders["pass"]["rows_read"], BIG, "{orders}");

    // Changes in several tables, a new table, a dropped one; legacy left out from now on.
    src.exec(
        "UPDATE orders SET total = total + 1, updated = now() WHERE id % 1000 = 7;
         INSERT INTO lines VALUES (99999, 1, now(), 5);
         UPDATE tags SET label = 'changed', updated = now() WHERE name = 'tag-10-é';
         CREATE TABLE fresh (id int PRIMARY KEY, updated timestamptz NOT NULL);
         INSERT INTO fresh SELECT g, now() FROM generate_series(1, 50) g;
         DROP TABLE tiny;",
    );
    let mut job = job.with(&["--exclude", "legacy"]);
    job.options.retain(|o| o != "--quiet");
    let out = job.run_ok("single", &[]);
    assert!(
        stdout(&out).contains("public.fresh: pass 1 done: 50 rows read"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains(
            "table public.tiny: synced by this job before, but the source has no such table now"
        ),
        "{}",
        stderr(&out)
    );
    assert_tables_equal(&src, &dst, "orders", "id");
    assert_tables_equal(&src, &dst, "lines", "order_id, line");
    assert_tables_equal(&src, &dst, "tags", "name");
    assert_tables_equal(&src, &dst, "fresh", "id");
    assert_eq!(
        count(&dst, "tiny"),
        3,
        "a table gone from the source is left as it is"
    );
}

/// The set job of the kill tests: every table but `legacy`, windows of 4,000 rows read in
/// cursor order, `jobs` workers.
fn set_job(src: &TestDb, dst: &TestDb, jobs: &str) -> Pgsync {
    Pgsync::new(&src.url(), &dst.url(), "public.*").with(&[
        "--exclude",
        "legacy",
        "--jobs",
        jobs,
        "-c",
        "4000",
        "--no-block-scan",
    ])
}

#[test]
fn sigkill_in_the_middle_of_a_set_then_resume_makes_every_table_exact() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    schema(&src);
    let job = set_job(&src, &dst, "2");
    let mut rng = seed();
    // About 80 windows in all: kill somewhere in the first two thirds, scaled to this run.
    let target = 5 + (next(&mut rng) % 45) as i64;
    let started = Instant::now();
    let mut child = job.spawn("single", &[], &[]);
    let killed = kill_at_windows(&dst, &mut child, target);
    assert!(
        killed,
        "the run finished before the kill at {target} windows ({:?})",
        started.elapsed()
    );
    let committed = windows_committed(&dst);
    let out = job.run_ok("resume", &[]);
    assert!(stdout(&out).contains("tables:"), "{}", stdout(&out));
    assert!(
        windows_committed(&dst) >= committed,
        "receipts went backwards after resume"
    );
    // The resume alone finishes the set: the unfinished tables and those never reached.
    assert_all_equal(&src, &dst);
    job.run_ok("single", &[]);
    assert_all_equal(&src, &dst);
    // Nothing left to resume anywhere: exit 2, one line.
    let out = job.assert_exit("resume", &[], 2);
    assert!(
        stderr(&out).contains("nothing to resume"),
        "{}",
        stderr(&out)
    );
    job.run_ok("verify", &[]);
}

#[test]
fn every_table_of_a_set_is_planned_before_any_table_copies() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    schema(&src);
    // One worker: with the largest tables copying, the small ones wait for a runner; their
    // passes are planned and recorded before the first window all the same.
    let job = set_job(&src, &dst, "1");
    let mut child = job.spawn("single", &[], &[]);
    let killed = kill_at_windows(&dst, &mut child, 2);
    assert!(killed, "the run finished before its second window was seen");
    let status = job.status();
    let planned: Vec<&str> = status["tables"]
        .as_array()
        .expect("status --json lists the tables")
        .iter()
        .filter(|t| !t["pass"].is_null())
        .filter_map(|t| t["table"].as_str())
        .collect();
    // (`empty` has nothing to copy: its pass records nothing.)
    assert_eq!(
        planned,
        [
            "public.lines",
            "public.orders",
            "public.tags",
            "public.tiny"
        ],
        "{status}"
    );
    job.run_ok("resume", &[]);
    assert_all_equal(&src, &dst);
}

#[test]
fn verify_over_the_set_names_the_differing_table_and_key_and_repairs_it() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    schema(&src);
    let job = Pgsync::new(&src.url(), &dst.url(), "public.*").with(&["--exclude", "legacy"]);
    job.run_ok("single", &[]);
    dst.exec("UPDATE lines SET qty = qty + 100 WHERE order_id = 42 AND line = 2");
    let out = job.assert_exit("verify", &[], 1);
    let text = stdout(&out);
    assert!(text.contains("public.lines: differs"), "{text}");
    assert!(text.contains("(42,2)"), "{text}");
    assert!(text.contains("public.orders: equal"), "{text}");
    assert!(
        text.contains("5 tables: 4 equal, 1 differ, 0 could not be verified"),
        "{text}"
    );
    let out = job.run_ok("verify", &["--repair"]);
    assert!(
        stdout(&out).contains("public.lines: equal"),
        "{}",
        stdout(&out)
    );
    assert_all_equal(&src, &dst);
    // A table that cannot be verified (gone from the destination): exit 2, the others still
    // verified.
    dst.exec("DROP TABLE tiny");
    let out = job.assert_exit("verify", &[], 2);
    assert!(
        stdout(&out).contains("public.orders: equal"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("public.tiny"), "{}", stderr(&out));
}

#[test]
fn a_destination_foreign_key_between_synced_tables_is_refused_before_any_write() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    schema(&src);
    dst.exec(
        "CREATE TABLE orders (id bigint PRIMARY KEY, updated timestamptz NOT NULL, total numeric(12,2), note text);
         CREATE TABLE lines (order_id bigint REFERENCES orders, line int, updated timestamptz NOT NULL, qty int, PRIMARY KEY (order_id, line));",
    );
    let job = Pgsync::new(&src.url(), &dst.url(), "orders").tables(&["lines", "tags"]);
    let out = job.assert_exit("single", &[], 2);
    let err = stderr(&out);
    assert!(err.contains("foreign key \"lines_order_id_fkey\""), "{err}");
    assert!(err.contains("DROP CONSTRAINT"), "{err}");
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'pgsync')"),
        2,
        "nothing was created"
    );
    // The plain names of a set need no pattern; without the foreign key, all three sync.
    dst.exec("ALTER TABLE lines DROP CONSTRAINT lines_order_id_fkey");
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "orders", "id");
    assert_tables_equal(&src, &dst, "lines", "order_id, line");
    assert_tables_equal(&src, &dst, "tags", "name");
}

#[test]
fn a_table_section_of_the_config_file_gives_one_table_its_own_cursor_and_windows() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    schema(&src);
    src.exec(
        "INSERT INTO legacy SELECT g, now() - g * interval '1 s' FROM generate_series(2, 500) g",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("job.toml");
    std::fs::write(
        &config,
        "jobs = 2\n\n[[table]]\nname = \"legacy\"\ncursor-column = \"changed\"\n\n\
         [[table]]\nname = \"public.lines\"\nchunksize = 500\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let mut job = Pgsync::new(&src.url(), &dst.url(), "public.*").with(&["--config", config]);
    job.options.retain(|o| o != "--quiet");
    let out = job.run_ok("single", &["-v"]);
    assert_all_equal(&src, &dst);
    assert_tables_equal(&src, &dst, "legacy", "id");
    // The lines' windows are fixed at 500 rows: ~40 windows for 20,000 rows, where sized by
    // time its first window alone would take 10,000.
    let lines = job.status()["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.lines")
        .cloned()
        .unwrap();
    assert!(
        lines["pass"]["windows_committed"].as_u64().unwrap() >= 35,
        "{lines}\n{}",
        stderr(&out)
    );
    // A [[table]] with a setting it does not take: exit 2, one line naming it.
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[table]]\nname = \"a\"\njobs = 1\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.toml");
    let out = Pgsync::new(&src.url(), &dst.url(), "public.*")
        .with(&["--config", bad.to_str().unwrap()])
        .assert_exit("single", &[], 2);
    assert!(
        stderr(&out).contains("no setting \"jobs\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn continuous_over_a_set_picks_up_a_new_table_and_keeps_every_table_in_sync_until_sigint() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TABLE a (id int PRIMARY KEY, updated timestamptz NOT NULL DEFAULT now(), v text);
         CREATE TABLE b (id int PRIMARY KEY, updated timestamptz NOT NULL DEFAULT now(), v text);
         INSERT INTO a (id, v) SELECT g, 'a' || g FROM generate_series(1, 1000) g;
         INSERT INTO b (id, v) SELECT g, 'b' || g FROM generate_series(1, 1000) g;",
    );
    let job =
        Pgsync::new(&src.url(), &dst.url(), "public.*").with(&["--delay", "1", "--lookback", "0"]);
    let child = job.spawn("continuous", &[], &[]);
    let wait_for = |sql: &str| {
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        while !dst
            .client()
            .query_one(sql, &[])
            .is_ok_and(|r| r.get::<_, bool>(0))
        {
            assert!(Instant::now() < deadline, "not reached in 60 s: {sql}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait_for("SELECT count(*) = 1000 FROM b");
    // Changes in both tables, and a table created while it runs.
    src.exec(
        "UPDATE a SET v = 'changed', updated = now() WHERE id % 10 = 0;
         INSERT INTO b (id, v) SELECT g, 'new' FROM generate_series(1001, 1500) g;
         CREATE TABLE c (id int PRIMARY KEY, updated timestamptz NOT NULL DEFAULT now());
         INSERT INTO c (id) SELECT generate_series(1, 20);",
    );
    wait_for("SELECT to_regclass('public.c') IS NOT NULL AND (SELECT count(*) = 20 FROM c)");
    wait_for("SELECT count(*) = 1500 FROM b");
    wait_for("SELECT count(*) = 100 FROM a WHERE v = 'changed'");
    crate::harness::bin::sigint(child);
    assert_tables_equal(&src, &dst, "a", "id");
    assert_tables_equal(&src, &dst, "b", "id");
    assert_tables_equal(&src, &dst, "c", "id");
}
