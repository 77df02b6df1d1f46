//! Resume and the state store: nothing to resume, a deleted state directory, a corrupt
//! record, a record from a newer pgsync, and `status` output.

use crate::harness::{assert_tables_equal, fixtures, Pgsync, TestDb};

#[test]
fn resume_with_nothing_unfinished_says_so_and_exits_2() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 1_000, 10);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions");
    let out = job.assert_exit("resume", &[], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("pgsync: nothing to resume for "), "{err}");
    assert!(err.contains("pgsync single"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    job.run_ok("single", &[]);
    job.assert_exit("resume", &[], 2);
}

#[test]
fn deleting_the_state_directory_still_gives_an_exact_copy_without_recopying() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 20_000, 100);
    // No lookback overlap, so the rows read are exactly the changed ones.
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "-c",
        "2500",
        "--lookback",
        "0",
    ]);
    job.run_ok("single", &[]);
    std::fs::remove_dir_all(job.state_dir()).unwrap();
    fixtures::churn(&src, 500, 5);
    let changed =
        src.scalar_i64("SELECT count(*) FROM transactions WHERE status IN ('CHANGED', 'NEW')");
    let out = job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
    // The receipts gave the watermark: only the changed rows were read again.
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains(&format!("{changed} rows read")), "{line}");
}

#[test]
fn deleting_state_and_receipts_falls_back_to_the_destination_max_cursor() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 10_000, 400);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "1500"]);
    job.run_ok("single", &[]);
    std::fs::remove_dir_all(job.state_dir()).unwrap();
    dst.exec("DROP TABLE pgsync.receipts; DELETE FROM transactions WHERE updated = (SELECT max(updated) FROM transactions) AND random() < 0.5");
    fixtures::churn(&src, 100, 9);
    job.run_ok("single", &[]);
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn a_corrupt_state_record_is_rebuilt_from_the_receipts() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 8_000, 100);
    let mut job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "1000"]);
    job.options.retain(|o| o != "--quiet");
    job.run_ok("single", &[]);
    let job_id = job.status()["job_id"].as_str().unwrap().to_string();
    {
        let store = pgsync::state::StateStore::open(&job.state_dir()).unwrap();
        store
            .job(&job_id)
            .unwrap()
            .put_raw("pass", b"PS\x01\xff\xff\xff garbage")
            .unwrap();
    }
    fixtures::churn(&src, 300, 11);
    let out = job.run_ok("single", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("record \"pass\" is corrupt")
            && err.contains("rebuilding it from the destination's receipts"),
        "{err}"
    );
    assert_tables_equal(&src, &dst, "transactions", "id");
    assert_eq!(job.status()["pass"]["finished"], true);
}

#[test]
fn state_written_by_a_newer_pgsync_is_refused_with_a_clear_error() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 1_000, 10);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions");
    job.run_ok("single", &[]);
    let job_id = job.status()["job_id"].as_str().unwrap().to_string();
    {
        let store = pgsync::state::StateStore::open(&job.state_dir()).unwrap();
        store
            .job(&job_id)
            .unwrap()
            .put_raw("pass", b"PS\x09anything")
            .unwrap();
    }
    let out = job.assert_exit("single", &[], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("written by a newer pgsync (record version 9"),
        "{err}"
    );
}

#[test]
fn a_pass_record_written_by_release_0_1_0_reads_as_an_upsert_pass() {
    // Bytes of a version-1 pass record as written by pgsync 0.1.0 (see tests/it/fixtures).
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/fixtures/state-v1/pass.bin"
    ))
    .unwrap();
    let pass = pgsync::state::codec::decode_pass("pass", &bytes).unwrap();
    assert_eq!(pass.number, 7);
    assert_eq!(pass.apply, pgsync::state::records::ApplyMode::Upsert);
    // Read as today's layout, the old bytes are refused, not misread.
    assert!(
        pgsync::state::codec::decode::<pgsync::state::records::PassRecord>("pass", &bytes).is_err()
    );
    assert_eq!(pass.upper.as_deref(), Some("1500000123000"));
    assert_eq!(pass.slices.len(), 2);
}

#[test]
fn status_reports_the_plan_watermark_and_last_pass_in_text_and_json() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 3_000, 10);
    // Keyset windows: three full ones and the short one that ends the slice.
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "-c",
        "1000",
        "--no-block-scan",
    ]);
    let out = job.run_ok("status", &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("pass:       none yet"));
    job.run_ok("single", &[]);
    let v = job.status();
    assert_eq!(v["pass"]["windows_committed"], 4);
    assert_eq!(v["last_pass"]["rows_read"], 3000);
    assert!(
        v["watermark"]
            .as_str()
            .unwrap()
            .starts_with("cursor > 1500000"),
        "{v}"
    );
    assert!(!v["job"].as_str().unwrap().contains("password"));
    let text = String::from_utf8_lossy(&job.run_ok("status", &[]).stdout).to_string();
    assert!(text.contains("windows:    4 committed"), "{text}");
    assert!(text.contains("last pass:  1: 3000 rows read"), "{text}");
}

#[test]
fn a_state_directory_whose_record_for_this_job_id_names_another_job_is_refused() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 100, 10);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions");
    job.run_ok("single", &[]);
    let job_id = job.status()["job_id"].as_str().unwrap().to_string();
    {
        let store = pgsync::state::StateStore::open(&job.state_dir()).unwrap();
        let other = pgsync::state::records::JobRecord {
            identity: "someone@elsewhere:5432/db -> x table y cursor z".into(),
            created_unix: 0,
        };
        store.job(&job_id).unwrap().set_meta(&other).unwrap();
        store.job(&job_id).unwrap().flush().unwrap();
    }
    let out = job.assert_exit("single", &[], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds job \"someone@elsewhere") && err.contains("use another --state-dir"),
        "{err}"
    );
}

#[test]
fn an_unreadable_meta_record_is_reported_not_overwritten() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 1_000, 10);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions");
    job.run_ok("single", &[]);
    let job_id = job.status()["job_id"].as_str().unwrap().to_string();
    let garbage = b"JR\x01\xff\xff garbage";
    let open = || {
        pgsync::state::StateStore::open(&job.state_dir())
            .unwrap()
            .job(&job_id)
            .unwrap()
    };
    open().put_raw("meta", garbage).unwrap();
    let out = job.assert_exit("single", &[], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("record \"meta\" is corrupt")
            && err.contains("move the state directory aside"),
        "{err}"
    );
    assert_eq!(
        open().get_raw("meta").unwrap().as_deref(),
        Some(&garbage[..])
    );
}

#[test]
fn a_receipt_changed_by_hand_is_an_error_not_skipped() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 3_000, 10);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "1000"]);
    job.run_ok("single", &[]);
    dst.exec("UPDATE pgsync.receipts SET end_position = '{\"Nowhere\": 1}'");
    let before = crate::harness::compare::count(&dst, "transactions");
    let out = job.assert_exit("single", &[], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("destination: reading receipts failed: a receipt does not parse")
            && err.contains("changed by hand"),
        "{err}"
    );
    assert_eq!(crate::harness::compare::count(&dst, "transactions"), before);
}
