//! Fresh and incremental copies are exact: ties across windows, many types, composite and
//! quoted keys, NULL cursors, a far-future cursor, a SELECT-only source role.

use crate::harness::compare::count;
use crate::harness::{assert_tables_equal, fixtures, Pgsync, TestDb};

#[test]
fn fresh_copy_of_transactions_with_tie_bursts_is_exact_and_creates_the_destination() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 30_000, 700);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["--window-size", "1000"]);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    // Same columns, types, NOT NULL and primary key as the source.
    let shape = "SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull, ', ' ORDER BY a.attnum)
                 FROM pg_attribute a WHERE a.attrelid = 'transactions'::regclass AND a.attnum > 0";
    let pk = "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'transactions'::regclass AND contype = 'p'";
    for q in [shape, pk] {
        let a: String = src.client().query_one(q, &[]).unwrap().get(0);
        let b: String = dst.client().query_one(q, &[]).unwrap().get(0);
        assert_eq!(a, b);
    }
    // Every window has its receipt (about 1,000 rows of whole heap blocks each), and the
    // last one closes the pass.
    assert_eq!(
        dst.scalar_i64("SELECT sum(rows_read)::bigint FROM pgsync.receipts"),
        30_000
    );
    let windows = dst.scalar_i64("SELECT count(*) FROM pgsync.receipts");
    assert!((27..=31).contains(&windows), "{windows} windows");
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM pgsync.receipts WHERE pass_finished"),
        1
    );
}

#[test]
fn incremental_pass_brings_inserts_and_updates_and_a_quiet_pass_changes_nothing() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 20_000, 50);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "2000"]);
    job.run_ok("single", &[]);
    fixtures::churn(&src, 3_000, 7);
    let changed =
        src.scalar_i64("SELECT count(*) FROM transactions WHERE status IN ('CHANGED', 'NEW')");
    let out = job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains(&format!("{changed} rows written")), "{line}");
    let before = crate::harness::stats::changes(&dst, "transactions");
    let out = job.run_ok("single", &[]);
    // The pass re-reads the lookback band below the watermark; equal rows are skipped.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(", 0 rows written"),
        "{out:?}"
    );
    assert_tables_equal(&src, &dst, "transactions", "id");
    let after = crate::harness::stats::changes(&dst, "transactions");
    assert_eq!(before, after, "a pass with no source change wrote rows");
}

#[test]
fn ten_thousand_rows_sharing_one_cursor_value_cross_a_hundred_windows_exactly() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, updated timestamptz NOT NULL, v text);
         INSERT INTO t SELECT g, '2024-01-01 00:00:00+00', 'v' || g FROM generate_series(1, 10000) g;
         INSERT INTO t SELECT g, '2024-01-02 12:00:00.123456+00', 'w' || g FROM generate_series(10001, 10500) g;",
    );
    let job = Pgsync::new(&src.url(), &dst.url(), "t").with(&["--window-size", "97"]);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "t", "id");
    assert_eq!(count(&dst, "t"), 10_500);
    // No window read a row twice: rows read equals the table size.
    let read = dst.scalar_i64("SELECT sum(rows_read)::bigint FROM pgsync.receipts");
    assert_eq!(read, 10_500);
}

#[test]
fn composite_primary_key_and_quoted_mixed_case_names() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        r#"CREATE SCHEMA "Sales Data";
           CREATE TABLE "Sales Data"."Order Lines" ("Region" text, "OrderNo" bigint, "Line" int, "Updated At" bigint NOT NULL, "Qty" int,
             PRIMARY KEY ("Region", "OrderNo", "Line"));
           INSERT INTO "Sales Data"."Order Lines"
             SELECT (ARRAY['eu', 'us', 'Ω-ünï'])[1 + g % 3], g / 4, g % 4, g / 100, g FROM generate_series(1, 5000) g;"#,
    );
    let job = Pgsync::new(&src.url(), &dst.url(), r#""Sales Data"."Order Lines""#).with(&[
        "--cursor-column",
        r#""Updated At""#,
        "--window-size",
        "333",
    ]);
    job.run_ok("single", &[]);
    assert_tables_equal(
        &src,
        &dst,
        r#""Sales Data"."Order Lines""#,
        r#""Region", "OrderNo", "Line""#,
    );
    src.exec(
        r#"UPDATE "Sales Data"."Order Lines" SET "Qty" = -1, "Updated At" = 1000 WHERE "Line" = 2"#,
    );
    job.run_ok("single", &[]);
    assert_tables_equal(
        &src,
        &dst,
        r#""Sales Data"."Order Lines""#,
        r#""Region", "OrderNo", "Line""#,
    );
}

#[test]
fn every_column_type_round_trips_including_nulls_unicode_and_toast() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TABLE t (
           id uuid PRIMARY KEY, updated timestamptz NOT NULL, doc jsonb, raw json, tags text[], nums int[],
           amount numeric(30,10), big numeric, ts timestamp, d date, tm time, iv interval, bin bytea,
           txt text, vc varchar(20), ch char(3), b bool, f4 real, f8 double precision, i2 smallint,
           inet_ inet, pt point, m mood, rng int4range, x xml);
         INSERT INTO t SELECT gen_random_uuid(), '2024-05-01 10:00:00+02'::timestamptz + g * interval '1 second',
           jsonb_build_object('k', g, 'nested', jsonb_build_array(1, 'two', null)), ('{\"a\": ' || g || ', \"a\": 2}')::json,
           ARRAY['a', NULL, 'c,\"d\"'], ARRAY[g, -g], 12345678901234567890.0123456789 / g, 1e30 + g,
           '2001-02-03 04:05:06.789', '1999-12-31', '23:59:59.999999', interval '1 year 2 mons 3 days 04:05:06.7',
           decode('00ff10', 'hex'), 'ünïcødé 🐘 ' || g, 'vc', 'ab', g % 2 = 0, 1.5 / g, pi() * g, (g % 32000)::smallint,
           '10.0.0.1/8', point(g, -g), 'happy', int4range(g, g + 10), '<a>x</a>'
           FROM generate_series(1, 300) g;
         INSERT INTO t (id, updated) VALUES ('00000000-0000-0000-0000-000000000000', '2024-06-01');
         INSERT INTO t (id, updated, txt, bin) SELECT gen_random_uuid(), '2024-06-02', repeat(md5(g::text), 40000), decode(repeat('ab', 600000), 'hex')
           FROM generate_series(1, 2) g;",
    );
    dst.exec("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');");
    let job = Pgsync::new(&src.url(), &dst.url(), "t").with(&["--window-size", "64"]);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "t", "id");
    // json (no equality operator) and point changes still propagate on the next pass.
    src.exec("UPDATE t SET raw = '{\"b\": 1}', pt = point(0, 0), updated = '2025-01-01'::timestamptz + i2 * interval '1 us' WHERE i2 < 10");
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "t", "id");
    assert!(dst.scalar_i64("SELECT max(length(txt))::bigint FROM t") >= 1_280_000);
}

#[test]
fn rows_with_a_null_cursor_are_copied_every_pass() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, updated bigint, v text);
         CREATE INDEX ON t (updated);
         INSERT INTO t SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE g END, 'v' FROM generate_series(1, 3000) g;",
    );
    let job = Pgsync::new(&src.url(), &dst.url(), "t").with(&["--window-size", "128"]);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "t", "id");
    src.exec("UPDATE t SET v = 'changed' WHERE updated IS NULL AND id < 500");
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "t", "id");
}

#[test]
fn a_source_role_with_only_select_is_enough_and_the_source_is_not_written() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 5_000, 100);
    let role = format!("{}_ro", src.name);
    src.exec(&format!(
        "DROP ROLE IF EXISTS \"{role}\"; CREATE ROLE \"{role}\" LOGIN;
         GRANT CONNECT ON DATABASE \"{}\" TO \"{role}\"; GRANT SELECT ON transactions TO \"{role}\";",
        src.name
    ));
    let ro_url = crate::harness::server::url_as(&role, &src.name);
    let before = crate::harness::stats::changes(&src, "transactions");
    let job = Pgsync::new(&ro_url, &dst.url(), "transactions").with(&["-c", "999"]);
    let result = std::panic::catch_unwind(|| {
        job.run_ok("single", &[]);
        assert_tables_equal(&src, &dst, "transactions", "id");
    });
    let after = crate::harness::stats::changes(&src, "transactions");
    let tables = src.scalar_i64("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace");
    src.exec(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';
         REVOKE ALL ON transactions FROM \"{role}\"; REVOKE ALL ON DATABASE \"{}\" FROM \"{role}\"; DROP ROLE \"{role}\";",
        src.name
    ));
    result.unwrap();
    assert_eq!(before, after, "the source table was written");
    assert_eq!(tables, 1, "a table was created on the source");
}

#[test]
fn a_timestamp_cursor_and_an_existing_empty_destination_table_work() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    let ddl = "CREATE TABLE ev (id bigint PRIMARY KEY, updated timestamp NOT NULL, payload jsonb)";
    src.exec(&format!(
        "{ddl}; INSERT INTO ev SELECT g, timestamp '2020-01-01' + (g / 3) * interval '1 ms', jsonb_build_object('g', g)
         FROM generate_series(1, 4000) g"
    ));
    dst.exec(ddl);
    let job = Pgsync::new(&src.url(), &dst.url(), "ev").with(&["--window-size", "500"]);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "ev", "id");
}

#[test]
fn a_row_that_moves_forward_during_a_fresh_load_is_applied_once_through_the_upsert_fallback() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    // An existing, empty destination with its key: the load appends into it directly, and
    // row 5 (already copied) moves to a cursor the load has not reached yet.
    dst.exec("CREATE TABLE t (id int PRIMARY KEY, updated bigint NOT NULL, v text)");
    fixtures::move_rows_mid_load(
        &src,
        &dst,
        "UPDATE t SET updated = 999000, v = 'moved' WHERE id = 5",
    );
    assert_tables_equal(&src, &dst, "t", "id");
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM t WHERE v = 'moved'"),
        1
    );
}

#[test]
fn a_far_future_cursor_does_not_freeze_the_job() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TABLE accounts (id int PRIMARY KEY, updated timestamptz NOT NULL, balance int NOT NULL);
         CREATE INDEX ON accounts (updated, id);
         INSERT INTO accounts SELECT g, now() - interval '1 hour' + g * interval '1 millisecond', g
           FROM generate_series(1, 3000) g;
         INSERT INTO accounts VALUES (9001, '9999-12-31 23:59:59+00', 1), (9002, 'infinity', 2);",
    );
    let mut job = Pgsync::new(&src.url(), &dst.url(), "accounts").with(&["-c", "500"]);
    job.options.retain(|o| o != "--quiet");
    let out = job.run_ok("single", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 row(s) have a cursor more than a day past the source's clock")
            && err.contains("9999-12-31"),
        "{err}"
    );
    assert_eq!(dst.scalar_i64("SELECT count(*) FROM accounts"), 3000);
    let watermark = job.status()["watermark"].as_str().unwrap().to_string();
    assert!(
        !watermark.contains("9999") && !watermark.contains("infinity"),
        "{watermark}"
    );
    // Later changes keep flowing: the job is not frozen at 9999 or infinity.
    src.exec(
        "UPDATE accounts SET balance = -balance, updated = now() WHERE id % 10 = 0 AND id < 9000",
    );
    src.exec("INSERT INTO accounts VALUES (4000, now(), 4000)");
    job.run_ok("single", &[]);
    // A job an earlier pgsync froze: its receipts (the state is gone) put the watermark at
    // infinity. The next pass notices and goes on from the destination's latest row.
    dst.exec("UPDATE pgsync.receipts SET pass_upper = 'infinity'");
    std::fs::remove_dir_all(job.state_dir()).unwrap();
    src.exec(
        "UPDATE accounts SET balance = balance * 3, updated = now() WHERE id % 7 = 0 AND id < 9000",
    );
    let out = job.run_ok("single", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is past the source's clock"), "{err}");
    src.exec("DELETE FROM accounts WHERE id > 9000");
    assert_tables_equal(&src, &dst, "accounts", "id");
}

#[test]
fn a_far_future_epoch_number_does_not_freeze_the_job_and_a_counter_is_not_capped() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    // Epoch milliseconds, with a year-9999 value and max bigint among them.
    src.exec(
        "CREATE TABLE events (id int PRIMARY KEY, updated bigint NOT NULL, v int NOT NULL);
         CREATE INDEX ON events (updated);
         INSERT INTO events SELECT g, (extract(epoch FROM now()) * 1000)::bigint - 3600000 + g, g
           FROM generate_series(1, 3000) g;
         INSERT INTO events VALUES (9001, 253402300799999, 1), (9002, 9223372036854775807, 2);
         ANALYZE events;",
    );
    // (Its unit is read from the column's statistics; the tables below have none yet, and
    // their values are probed.)
    let mut job = Pgsync::new(&src.url(), &dst.url(), "events").with(&["-c", "500"]);
    job.options.retain(|o| o != "--quiet");
    let plan = String::from_utf8_lossy(&job.run_ok("plan", &[]).stdout).to_string();
    assert!(
        plan.contains("the cursor follows epoch milliseconds"),
        "{plan}"
    );
    let out = job.run_ok("single", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 row(s) have a cursor more than a day past the source's clock")
            && err.contains("253402300799999"),
        "{err}"
    );
    assert_eq!(dst.scalar_i64("SELECT count(*) FROM events"), 3000);
    // Later changes keep flowing.
    src.exec(
        "UPDATE events SET v = -v, updated = (extract(epoch FROM now()) * 1000)::bigint
          WHERE id % 10 = 0 AND id < 9000",
    );
    job.run_ok("single", &[]);
    src.exec("DELETE FROM events WHERE id > 9000");
    assert_tables_equal(&src, &dst, "events", "id");

    // Epoch seconds in an integer column are detected too; a counter (ids from 1) is not a
    // clock and is never capped; `--cursor-clock none` turns the cap off.
    let seconds = TestDb::new("src");
    seconds.exec(
        "CREATE TABLE s (id int PRIMARY KEY, updated int NOT NULL);
         CREATE INDEX ON s (updated);
         INSERT INTO s SELECT g, extract(epoch FROM now())::int - g FROM generate_series(1, 100) g;
         CREATE TABLE c (id int PRIMARY KEY, updated bigint NOT NULL);
         CREATE INDEX ON c (updated);
         INSERT INTO c SELECT g, g FROM generate_series(1, 100) g;
         INSERT INTO c VALUES (101, 9223372036854775807);",
    );
    let plan_of = |table: &str, extra: &[&str]| {
        let job = Pgsync::new(&seconds.url(), &dst.url(), table).with(extra);
        String::from_utf8_lossy(&job.run_ok("plan", &[]).stdout).to_string()
    };
    assert!(plan_of("s", &[]).contains("the cursor follows epoch seconds"));
    assert!(!plan_of("s", &["--cursor-clock", "none"]).contains("capped"));
    let counter = plan_of("c", &[]);
    assert!(
        counter.contains("cursor <= 9223372036854775807") && !counter.contains("capped"),
        "{counter}"
    );
}

#[test]
fn windows_sized_by_time_grow_on_a_fast_link_and_shrink_for_a_short_target() {
    let (src, dst, dst2) = (TestDb::new("src"), TestDb::new("dst"), TestDb::new("dst2"));
    fixtures::transactions(&src, 200_000, 50);
    // No fixed size: the first window has 10,000 rows, the next ones about 2 s of work.
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions");
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    let largest = dst.scalar_i64("SELECT max(rows_read) FROM pgsync.receipts");
    assert!(
        largest > 10_500,
        "windows never grew: {largest} rows at most"
    );
    // A 1 ms target: windows shrink toward their floor of 1,000 rows.
    let job =
        Pgsync::new(&src.url(), &dst2.url(), "transactions").with(&["--window-target", "1ms"]);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst2, "transactions", "id");
    let smallest = dst2.scalar_i64(
        "SELECT min(rows_read) FROM pgsync.receipts WHERE NOT slice_done AND rows_read > 0",
    );
    assert!(
        smallest < 2_000,
        "windows never shrank: {smallest} rows at least"
    );
}

#[test]
fn a_later_pass_starts_its_first_window_at_the_pace_the_last_pass_measured() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 60_000, 50);
    let job =
        Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["--window-target", "200ms"]);
    job.run_ok("single", &[]);
    let job_id = job.status()["job_id"].as_str().unwrap().to_string();
    let paces = || {
        let store = pgsync::state::StateStore::open(&job.state_dir()).unwrap();
        store.job(&job_id).unwrap().paces()
    };
    let append = paces().append.expect("the load measured its pace");
    assert!(paces().upsert.is_none());
    // The next pass upserts: a quarter of the append pace, for the 200 ms target.
    let expected = ((append.rows_per_sec / 4.0) * 0.2) as u64;
    let expected = expected.clamp(1_000, 2_000_000);
    fixtures::churn(&src, 30_000, 3);
    let plan = String::from_utf8_lossy(&job.run_ok("plan", &[]).stdout).to_string();
    assert!(
        plan.contains(&format!("(the first {expected} rows)")),
        "{expected}: {plan}"
    );
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    let pass_rows =
        dst.scalar_i64("SELECT sum(rows_read)::int8 FROM pgsync.receipts WHERE pass = 2");
    let first = dst.scalar_i64(
        "SELECT rows_read FROM pgsync.receipts WHERE pass = 2 ORDER BY window_no LIMIT 1",
    );
    assert_eq!(
        first,
        (expected as i64).min(pass_rows),
        "pass of {pass_rows} rows"
    );
    assert!(
        paces().upsert.is_some(),
        "the upsert pass measured its pace"
    );
}
