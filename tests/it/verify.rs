//! `pgsync verify`: exit 0 on equal tables, 1 with exactly the differing keys, 2 when it
//! cannot verify; repair; rows beyond the watermark are not differences.

use crate::harness::{assert_tables_equal, fixtures, Pgsync, TestDb};
use serde_json::Value;

fn verify_json(job: &Pgsync, extra: &[&str], code: i32) -> Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let out = job.assert_exit("verify", &args, code);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// (kind, key text) of every differing row, sorted.
fn diffs(v: &Value) -> Vec<(String, String)> {
    let mut d: Vec<(String, String)> = v["differing_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["key_text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    d.sort();
    d
}

#[test]
fn equal_tables_exit_0_and_each_kind_of_difference_is_reported_by_key_with_exit_1() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, updated bigint NOT NULL, n numeric(12,3), s text, ts timestamptz, doc jsonb, flag bool);
         INSERT INTO t SELECT g, g / 10, g * 1.5, 'row ' || g, '2024-01-01'::timestamptz + g * interval '1 min',
           jsonb_build_object('a', g, 'b', 'x'), g % 2 = 0 FROM generate_series(1, 20000) g;
         ANALYZE t;",
    );
    let job = Pgsync::new(&src.url(), &dst.url(), "t").with(&["-c", "3000"]);
    job.run_ok("single", &[]);
    assert_eq!(verify_json(&job, &[], 0)["equal"], true);
    dst.exec(
        "UPDATE t SET n = n + 0.001 WHERE id = 11;
         UPDATE t SET s = 'row 12 ' WHERE id = 12;
         UPDATE t SET ts = NULL WHERE id = 13;
         UPDATE t SET flag = NULL WHERE id = 14;
         UPDATE t SET doc = '{\"b\": \"x\", \"a\": 15}' WHERE id = 15;  -- same jsonb, other key order: not a difference
         DELETE FROM t WHERE id = 16;
         INSERT INTO t VALUES (99999, 5, 1, 'extra', NULL, NULL, NULL);",
    );
    src.exec("UPDATE t SET ts = NULL WHERE id = 17"); // NULL on one side only, the other way round
    let v = verify_json(&job, &[], 1);
    assert_eq!(v["row_hash"], "record", "built-in types: the record hash");
    let text = verify_json(&job, &["--text-hash"], 1);
    assert_eq!(text["row_hash"], "text");
    assert_eq!(diffs(&text), diffs(&v), "both hashes find the same rows");
    let expected: Vec<(String, String)> = vec![
        ("different".into(), "(11)".into()),
        ("different".into(), "(12)".into()),
        ("different".into(), "(13)".into()),
        ("different".into(), "(14)".into()),
        ("different".into(), "(17)".into()),
        ("extra_in_destination".into(), "(99999)".into()),
        ("missing_in_destination".into(), "(16)".into()),
    ];
    assert_eq!(diffs(&v), expected);
    assert_eq!(v["source_rows"], 20000);
    assert_eq!(v["dest_rows"], 20000);
    // The human report lists windows with bounds and counts, bounded by --max-rows.
    let out = job.assert_exit("verify", &["--max-rows", "2", "--window-size", "2000"], 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("differing rows: 7") && text.contains("… and 5 more (--max-rows)"),
        "{text}"
    );
    // id 16 and 99999 (cursors 1 and 5) fall in the first window: one row less, one more,
    // so its counts agree and only its checksum tells.
    let line = text
        .lines()
        .find(|l| l.starts_with("  window 0 [start, "))
        .unwrap_or_else(|| panic!("{text}"));
    let counts: Vec<&str> = line
        .split(' ')
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()) && !w.is_empty())
        .collect();
    assert_eq!(counts.len(), 3, "{line}");
    assert_eq!(counts[1], counts[2], "{line}");
}

#[test]
fn a_row_deleted_at_the_source_is_extra_in_destination_and_repair_removes_it() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 30_000, 200);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "5000"]);
    job.run_ok("single", &[]);
    let gone: String = src.client().query_one("DELETE FROM transactions WHERE id = (SELECT id FROM transactions ORDER BY id LIMIT 1) RETURNING id::text", &[]).unwrap().get(0);
    dst.exec("UPDATE transactions SET status = 'TAMPERED' WHERE id = (SELECT id FROM transactions ORDER BY id DESC LIMIT 1)");
    let v = verify_json(&job, &[], 1);
    let d = diffs(&v);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(
        d.contains(&("extra_in_destination".into(), format!("({gone})"))),
        "{d:?}"
    );
    let v = verify_json(&job, &["--repair"], 0);
    assert_eq!(v["before"]["equal"], false);
    assert_eq!(v["repair"]["rows_deleted"], 1);
    assert_eq!(v["repair"]["rows_written"], 1);
    assert_eq!(v["after"]["equal"], true);
    assert_tables_equal(&src, &dst, "transactions", "id");
    // Repair is idempotent: nothing left to do.
    verify_json(&job, &["--repair"], 0);
}

#[test]
fn ties_across_windows_and_a_composite_key_locate_the_one_changed_row() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TABLE t (region text, no int, updated date NOT NULL, v int, PRIMARY KEY (region, no));
         INSERT INTO t SELECT (ARRAY['eu', 'us'])[1 + g % 2], g, date '2024-01-01' + (g / 5000), g FROM generate_series(1, 40000) g;
         ANALYZE t;",
    );
    let job = Pgsync::new(&src.url(), &dst.url(), "t").with(&["-c", "777"]);
    job.run_ok("single", &[]);
    dst.exec("UPDATE t SET v = -1 WHERE region = 'us' AND no = 12345");
    let v = verify_json(&job, &["--window-size", "2500"], 1);
    assert_eq!(
        diffs(&v),
        vec![("different".to_string(), "(us,12345)".to_string())]
    );
}

#[test]
fn one_differing_row_in_a_million_is_found_by_key() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 1_000_000, 500);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "50000"]);
    job.run_ok("single", &[]);
    let key: String = dst
        .client()
        .query_one("UPDATE transactions SET amount = amount + 0.01 WHERE id = (SELECT id FROM transactions OFFSET 654321 LIMIT 1) RETURNING id::text", &[])
        .unwrap()
        .get(0);
    let v = verify_json(&job, &[], 1);
    assert_eq!(
        diffs(&v),
        vec![("different".to_string(), format!("({key})"))]
    );
    assert_eq!(v["differing_windows"].as_array().unwrap().len(), 1);
}

#[test]
fn a_live_source_with_rows_beyond_the_watermark_is_not_a_failure() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 10_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "2000"]);
    job.run_ok("single", &[]);
    // After the pass: new rows, and updates that move rows past the watermark.
    fixtures::churn(&src, 400, 13);
    let v = verify_json(&job, &[], 0);
    assert_eq!(v["equal"], true, "{v}");
    assert!(v["not_yet_synced"].as_i64().unwrap() > 400, "{v}");
    // --all sees the whole table, so the pending rows are differences until the next pass.
    verify_json(&job, &["--all"], 1);
    job.run_ok("single", &[]);
    verify_json(&job, &["--all"], 0);
}

#[test]
fn verify_exits_2_when_it_cannot_verify() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 100, 10);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions");
    let out = job.assert_exit("verify", &[], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("destination: table public.transactions does not exist"),
        "{err}"
    );
    let job = Pgsync::new(
        "postgres://postgres@127.0.0.1:1/x",
        &dst.url(),
        "transactions",
    );
    job.assert_exit("verify", &[], 2);
}

#[test]
fn user_types_and_types_without_a_hash_get_the_text_hash_and_equal_values_compare_equal() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    // The enum's OID differs between the databases (an extra type first on one side): an
    // OID-based hash would call equal rows different.
    dst.exec("CREATE TYPE pad AS ENUM ('x'); CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')");
    src.exec(
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TABLE t (id int PRIMARY KEY, updated bigint NOT NULL, m mood, amount numeric);
         INSERT INTO t SELECT g, g, (ARRAY['sad','ok','happy'])[1 + g % 3]::mood, g FROM generate_series(1, 3000) g;
         ANALYZE t;
         CREATE TABLE j (id int PRIMARY KEY, updated bigint NOT NULL, doc json);
         INSERT INTO j SELECT g, g, json_build_object('g', g) FROM generate_series(1, 3000) g;",
    );
    for table in ["t", "j"] {
        let job = Pgsync::new(&src.url(), &dst.url(), table);
        job.run_ok("single", &[]);
        let v = verify_json(&job, &[], 0);
        assert_eq!(
            (v["row_hash"].as_str(), v["equal"].as_bool()),
            (Some("text"), Some(true)),
            "{table}: {v}"
        );
    }
    // Built-in types only: values equal by their type's `=` are equal for the record hash
    // (as for the sync's upsert), while the text hash compares their representations.
    src.exec(
        "CREATE TABLE n (id int PRIMARY KEY, updated bigint NOT NULL, amount numeric);
         INSERT INTO n SELECT g, g, g FROM generate_series(1, 3000) g;",
    );
    let job = Pgsync::new(&src.url(), &dst.url(), "n");
    job.run_ok("single", &[]);
    dst.exec("UPDATE n SET amount = 7.00 WHERE id = 7");
    let v = verify_json(&job, &[], 0);
    assert_eq!(v["row_hash"], "record");
    let text = verify_json(&job, &["--text-hash"], 1);
    assert_eq!(
        diffs(&text),
        vec![("different".to_string(), "(7)".to_string())]
    );
}

#[test]
fn a_verify_that_loses_its_server_advises_a_verify_not_a_resume() {
    let src = TestDb::new("src");
    fixtures::transactions(&src, 100, 10);
    let unreachable = crate::harness::server::url_for("x").replace(":5432/", ":1/");
    let job = Pgsync::new(&src.url(), &unreachable, "transactions");
    let out = job.assert_exit("verify", &["--retry-for", "1"], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("destination: connecting to") && err.contains("run `pgsync verify` again"),
        "{err}"
    );
    assert!(!err.contains("pgsync resume"), "{err}");
}

#[test]
fn a_destination_row_past_the_watermark_that_the_source_lacks_is_a_difference() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TABLE accounts (id int PRIMARY KEY, updated bigint NOT NULL, balance int NOT NULL);
         CREATE INDEX ON accounts (updated, id);
         INSERT INTO accounts SELECT g, g, g FROM generate_series(1, 5000) g;",
    );
    let mut job = Pgsync::new(&src.url(), &dst.url(), "accounts").with(&["--lookback", "0"]);
    job.run_ok("single", &[]);
    job.run_ok("verify", &[]);
    // Past the watermark (5000): one row the source lacks, one the source has but a later
    // pass has not brought yet (not a difference).
    dst.exec("INSERT INTO accounts VALUES (90001, 9000, 1)");
    src.exec("INSERT INTO accounts VALUES (90002, 9001, 2)");
    dst.exec("INSERT INTO accounts VALUES (90002, 9001, 2)");
    job.options.retain(|o| o != "--quiet");
    let out = job.assert_exit("verify", &[], 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("extra in destination (past the watermark): key (90001)"),
        "{text}"
    );
    assert!(!text.contains("(90002)"), "{text}");
    // --repair deletes it, and verify is equal again.
    job.run_ok("verify", &["--repair"]);
    assert_eq!(
        dst.scalar_i64("SELECT count(*) FROM accounts WHERE id = 90001"),
        0
    );
}

#[test]
fn hundreds_of_scattered_differences_are_each_named_once() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 200_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions");
    job.run_ok("single", &[]);
    // Every window differs: 100 changed, 100 deleted and 100 extra rows, spread over the table.
    let keys = |sql: &str| -> Vec<String> {
        dst.client()
            .query(sql, &[])
            .unwrap()
            .iter()
            .map(|r| format!("({})", r.get::<_, String>(0)))
            .collect()
    };
    let changed = keys("UPDATE transactions SET amount = amount + 1 WHERE id IN (SELECT id FROM transactions ORDER BY md5(id::text) LIMIT 100) RETURNING id::text");
    let missing = keys("DELETE FROM transactions WHERE id IN (SELECT id FROM transactions ORDER BY md5(id::text) DESC LIMIT 100) RETURNING id::text");
    let extra = keys(
        "INSERT INTO transactions SELECT gen_random_uuid(), user_id, created, updated, certified_by_user, amount, 'EXTRA'
         FROM transactions ORDER BY md5(id::text || 'x') LIMIT 100 RETURNING id::text",
    );
    let v = verify_json(&job, &[], 1);
    let mut expected: Vec<(String, String)> = changed
        .into_iter()
        .map(|k| ("different".to_string(), k))
        .chain(
            missing
                .into_iter()
                .map(|k| ("missing_in_destination".to_string(), k)),
        )
        .chain(
            extra
                .into_iter()
                .map(|k| ("extra_in_destination".to_string(), k)),
        )
        .collect();
    expected.sort();
    assert_eq!(diffs(&v), expected);
    assert!(v["differing_windows"].as_array().unwrap().len() > 1);
    verify_json(&job, &["--repair"], 0);
    assert_tables_equal(&src, &dst, "transactions", "id");
}
