//! Bad input: each case exits 2 with one line on stderr that names the side and what to do,
//! and leaves the destination exactly as it was (no table, no receipts, no rows).

use crate::harness::{fixtures, Pgsync, TestDb};

/// Everything in the destination database that pgsync could have changed, as text.
fn snapshot(db: &TestDb) -> String {
    let mut c = db.client();
    let rows = c
        .query(
            "SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1",
            &[],
        )
        .unwrap();
    let mut out: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    if let Ok(r) = c.query_one("SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM transactions t", &[]) {
        out.push(r.get(0));
    }
    out.join("\n")
}

fn assert_refused(job: &Pgsync, dst: &TestDb, expect: &[&str]) {
    let before = snapshot(dst);
    let out = job.assert_exit("single", &[], 2);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    for e in expect {
        assert!(err.contains(e), "{err:?} does not mention {e:?}");
    }
    assert_eq!(before, snapshot(dst), "the destination changed");
}

#[test]
fn a_missing_source_table_is_refused() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    let job = Pgsync::new(&src.url(), &dst.url(), "nope");
    assert_refused(
        &job,
        &dst,
        &["source: table public.nope does not exist", "TABLE argument"],
    );
}

#[test]
fn a_missing_cursor_column_is_refused_and_the_columns_are_listed() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 10, 1);
    let job =
        Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["--cursor-column", "modified"]);
    assert_refused(
        &job,
        &dst,
        &[
            "source: table public.transactions has no column \"modified\"",
            "updated",
            "--cursor-column",
        ],
    );
}

#[test]
fn an_unorderable_cursor_column_is_refused() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec("CREATE TABLE t (id int PRIMARY KEY, updated json)");
    let job = Pgsync::new(&src.url(), &dst.url(), "t");
    assert_refused(
        &job,
        &dst,
        &["source: cursor column \"updated\" has type json"],
    );
}

#[test]
fn a_source_table_without_a_primary_key_is_refused() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec("CREATE TABLE t (id int, updated bigint)");
    let job = Pgsync::new(&src.url(), &dst.url(), "t");
    assert_refused(&job, &dst, &["source: table public.t has no primary key"]);
}

#[test]
fn a_destination_table_with_another_type_is_refused_before_anything_is_written() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 100, 1);
    dst.exec(
        "CREATE TABLE transactions (id uuid PRIMARY KEY, user_id uuid NOT NULL, created bigint NOT NULL, updated bigint NOT NULL,
           certified_by_user bigint, amount numeric(12,2) NOT NULL, status text NOT NULL);
         INSERT INTO transactions VALUES (gen_random_uuid(), gen_random_uuid(), 1, 1, NULL, 1, 'x')",
    );
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions");
    assert_refused(
        &job,
        &dst,
        &[
            "destination: table public.transactions does not match",
            "numeric(12,2)",
            "numeric(18,2)",
        ],
    );
}

#[test]
fn an_unreachable_host_is_refused_quickly() {
    let dst = TestDb::new("dst");
    let job = Pgsync::new("postgres://postgres@127.0.0.1:1/x", &dst.url(), "t");
    let started = std::time::Instant::now();
    assert_refused(
        &job,
        &dst,
        &[
            "source: connecting to postgres@127.0.0.1:1/x failed",
            "check host and port",
        ],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

#[test]
fn a_missing_database_is_refused() {
    let src = TestDb::new("src");
    let job = Pgsync::new(
        &src.url(),
        &crate::harness::server::url_for("pgsync_no_such_db"),
        "t",
    );
    let out = job.assert_exit("single", &[], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("destination: connecting to") && err.contains("check the database name"),
        "{err}"
    );
}

#[test]
fn a_wrong_password_is_refused_without_echoing_it() {
    // Needs a server that checks passwords for this role: scripts/test-server.sh (run by
    // the README's test command) sets pg_hba up for it.
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    let role = "pgsync_pw_role";
    let mut admin = crate::harness::server::admin();
    let _ = admin.batch_execute(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'right-password'"
    ));
    let bad = crate::harness::server::url_as(&format!("{role}:wr0ng-secret"), &src.name);
    assert!(
        postgres::Client::connect(&bad, postgres::NoTls).is_err(),
        "the test server does not check passwords for {role}: run scripts/test-server.sh \
         (the README's test command does)"
    );
    let job = Pgsync::new(&bad, &dst.url(), "t");
    let before = snapshot(&dst);
    let started = std::time::Instant::now();
    let out = job.assert_exit("single", &[], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("source: connecting to pgsync_pw_role@") && err.contains("password"),
        "{err}"
    );
    assert!(!err.contains("wr0ng-secret"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(before, snapshot(&dst));
}

#[test]
fn usage_errors_exit_2_with_clap_or_a_clear_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgsync"))
        .args(["single", "onlyone"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgsync"))
        .args([
            "single",
            "a",
            "b",
            "bad..name",
            "--state-dir",
            "/tmp/pgsync-unused",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty identifier"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgsync"))
        .args(["single", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("-h, --hostname"));
}

#[test]
fn an_unwritable_state_dir_is_refused() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 10, 1);
    let before = snapshot(&dst);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgsync"))
        .args([
            "single",
            "--state-dir",
            "/proc/pgsync-cannot-write",
            &src.url(),
            &dst.url(),
            "transactions",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("state: cannot open the state directory"),
        "{out:?}"
    );
    assert_eq!(before, snapshot(&dst));
}

#[test]
fn a_unique_not_null_index_can_stand_in_for_a_missing_primary_key() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    src.exec(
        "CREATE TABLE t (code text NOT NULL, n int NOT NULL, updated bigint NOT NULL, v text);
         CREATE UNIQUE INDEX t_code_n ON t (code, n);
         CREATE INDEX ON t (v);
         INSERT INTO t SELECT 'c' || (g % 7), g, g / 3, 'v' || g FROM generate_series(1, 2000) g;",
    );
    let job = Pgsync::new(&src.url(), &dst.url(), "t");
    assert_refused(
        &job,
        &dst,
        &["source: table public.t has no primary key", "--key"],
    );
    let job = Pgsync::new(&src.url(), &dst.url(), "t").with(&["--key", "v"]);
    assert_refused(
        &job,
        &dst,
        &["source: table public.t has no unique index on (v)"],
    );
    let job = Pgsync::new(&src.url(), &dst.url(), "t").with(&["--key", "n,code", "-c", "300"]);
    job.run_ok("single", &[]);
    crate::harness::assert_tables_equal(&src, &dst, "t", "code, n");
    src.exec("UPDATE t SET v = 'changed', updated = 10000 WHERE n % 10 = 0");
    job.run_ok("single", &[]);
    crate::harness::assert_tables_equal(&src, &dst, "t", "code, n");
}

#[test]
fn passwords_never_reach_the_state_store_the_receipts_or_messages() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 500, 10);
    let secret = "Sup3r-S3cret-pw";
    // The local server trusts these connections, so the password is accepted and unused.
    let src_url = crate::harness::server::url_as(&format!("postgres:{secret}"), &src.name);
    let dst_url = crate::harness::server::url_as(&format!("postgres:{secret}"), &dst.name);
    let job = Pgsync::new(&src_url, &dst_url, "transactions").with(&["--password", secret]);
    let out = job.run_ok("single", &[]);
    let status = job.run_ok("status", &["--json"]);
    let failed = Pgsync::new(&src_url, &dst_url, "nope")
        .with(&["--password", secret])
        .run("single", &[]);
    // The other spellings: a conninfo string's password=, a URL's ?password=, with -v.
    let conninfo = format!(
        "host=127.0.0.1 dbname={} user=postgres password='{secret}'",
        src.name
    );
    let query = format!("{}?password={secret}", dst.url());
    let spelled = Pgsync::new(&conninfo, &query, "transactions").with(&["-v"]);
    let verbose = spelled.run_ok("single", &[]);
    let bad = Pgsync::new(&format!("{conninfo} port=x"), &query, "transactions").run("single", &[]);
    assert_eq!(bad.status.code(), Some(2));
    for (what, bytes) in [
        ("stdout", &out.stdout),
        ("stderr", &out.stderr),
        ("status", &status.stdout),
        ("error", &failed.stderr),
        ("-v stderr", &verbose.stderr),
        ("bad port error", &bad.stderr),
    ] {
        assert!(
            !String::from_utf8_lossy(bytes).contains(secret),
            "{what} shows the password"
        );
    }
    let mut files = vec![job.state_dir()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds the password",
                path.display()
            );
        }
    }
    let receipts: i64 = dst.scalar_i64(&format!(
        "SELECT count(*) FROM pgsync.receipts r WHERE r::text LIKE '%{secret}%'"
    ));
    assert_eq!(receipts, 0);
}

#[test]
fn a_second_sync_on_the_same_state_directory_is_refused_while_the_first_runs() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 20_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "-c",
        "1000",
        "--max-rate",
        "3000",
    ]);
    let mut first = job.spawn("single", &[], &[]);
    crate::harness::wait_until("the first sync to commit a window", || {
        crate::harness::count_or_zero(&dst, "SELECT count(*) FROM pgsync.receipts") >= 1
    });
    let out = job.assert_exit("single", &[], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use by another pgsync process"), "{err}");
    assert!(first.wait().unwrap().success());
    crate::harness::assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn a_large_table_whose_cursor_starts_no_index_is_refused_naming_the_index_to_create() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 120_000, 100);
    src.exec("DROP INDEX transactions_updated_id; ANALYZE transactions");
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions");
    assert_refused(
        &job,
        &dst,
        &[
            "source: no index of public.transactions",
            "CREATE INDEX CONCURRENTLY ON public.transactions (\"updated\", \"id\")",
            "--allow-unindexed-cursor",
        ],
    );
    // Told to go on, it does (a warning says what each window costs).
    job.run_ok("single", &["--allow-unindexed-cursor"]);
    crate::harness::assert_tables_equal(&src, &dst, "transactions", "id");
}
