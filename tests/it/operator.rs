//! Operator experience: status while a sync runs, the `plan` dry run, configuration
//! precedence (flag > env > file > default), the progress/log output modes, the `-v`
//! timings, completions and the man page.

use crate::harness::{assert_tables_equal, fixtures, Pgsync, TestDb};
use std::time::{Duration, Instant};

#[test]
fn status_while_a_sync_runs_shows_its_live_progress() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 20_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "-c",
        "1000",
        "--max-rate",
        "4000",
    ]);
    let mut child = job.spawn("single", &[], &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let live = loop {
        let v = job.status();
        if v["pass"]["windows_committed"].as_u64().unwrap_or(0) >= 2 {
            break v;
        }
        assert!(Instant::now() < deadline, "no live status: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        live["running"]["pid"].as_u64(),
        Some(u64::from(child.id())),
        "{live}"
    );
    assert_eq!(live["pass"]["finished"], false);
    let text = String::from_utf8_lossy(&job.run_ok("status", &[]).stdout).to_string();
    assert!(
        text.contains(&format!("running:    yes, pid {}", child.id())),
        "{text}"
    );
    assert!(child.wait().unwrap().success());
    let done = job.status();
    assert!(done["running"].is_null(), "{done}");
    assert_eq!(done["last_pass"]["rows_read"], 20_000);
}

#[test]
fn plan_shows_the_next_pass_and_writes_nothing() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 30_000, 100);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "-c",
        "5000",
        "--slice-rows",
        "10000",
    ]);
    let out = job.run_ok("plan", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pass:       1 (new)"), "{text}");
    assert!(
        text.contains("create the destination, append, build its primary key"),
        "{text}"
    );
    assert!(text.contains("window(s) of 5000 rows"), "{text}");
    assert!(text.matches("  slice ").count() >= 2, "{text}");
    // --jobs: four slices a worker when the statistics allow, each a window (5,000 rows) at
    // least: 30,000 rows make 6, not 12.
    let jobs = String::from_utf8_lossy(&job.run_ok("plan", &["--jobs", "3"]).stdout).to_string();
    assert!(
        jobs.contains("jobs:       3 slice(s) copied at once"),
        "{jobs}"
    );
    let slices = jobs.matches("  slice ").count();
    assert!((6..12).contains(&slices), "{slices} slices: {jobs}");
    let tables = dst.scalar_i64("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)");
    assert_eq!(tables, 0, "plan created tables in the destination");
    job.run_ok("single", &[]);
    let text = String::from_utf8_lossy(&job.run_ok("plan", &[]).stdout).to_string();
    assert!(
        text.contains("pass:       2 (new)") && text.contains("staging + upsert"),
        "{text}"
    );
}

#[test]
fn options_come_from_the_command_line_then_environment_then_config_file_then_defaults() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 100, 10);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pgsync.toml");
    std::fs::write(&config, "chunksize = 111\nlookback = \"0\"\nquiet = true\n").unwrap();
    let window = |extra: &[&str], env: &[(&str, &str)]| {
        let mut job = Pgsync::new(&src.url(), &dst.url(), "transactions");
        job.options.clear();
        job.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let out = job.run_ok("plan", extra);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains("windows of about 2s of work each") {
            return "by time".to_string();
        }
        text.split("window(s) of ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .unwrap_or_default()
            .to_string()
    };
    let cfg = config.to_str().unwrap();
    assert_eq!(window(&[], &[]), "by time", "default");
    assert_eq!(window(&["--config", cfg], &[]), "111", "file over default");
    assert_eq!(
        window(&["--config", cfg], &[("PGSYNC_CHUNKSIZE", "222")]),
        "222",
        "env over file"
    );
    assert_eq!(
        window(
            &["--config", cfg, "-c", "333"],
            &[("PGSYNC_CHUNKSIZE", "222")]
        ),
        "333",
        "flag over env"
    );
    assert_eq!(
        window(&[], &[("PGSYNC_CONFIG", cfg)]),
        "111",
        "PGSYNC_CONFIG names the file"
    );
    std::fs::write(&config, "chunksize = 1\nno-such-option = 3\n").unwrap();
    let mut job = Pgsync::new(&src.url(), &dst.url(), "transactions");
    job.options.clear();
    let out = job.assert_exit("plan", &["--config", cfg], 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"no-such-option\" is not an option"),
        "{out:?}"
    );
}

#[test]
fn progress_is_text_lines_or_json_lines_when_stderr_is_not_a_terminal() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 5_000, 10);
    let mut job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "-c",
        "1000",
        "--progress-interval",
        "0",
    ]);
    job.options.retain(|o| o != "--quiet");
    let out = job.run_ok("single", &["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let progress: Vec<_> = lines.iter().filter(|v| v["event"] == "progress").collect();
    assert!(progress.len() >= 4, "{lines:?}");
    assert_eq!(progress.last().unwrap()["rows_read"], 5_000);
    let job2 = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&[
        "-c",
        "1000",
        "--progress-interval",
        "0",
    ]);
    let mut job2 = job2;
    job2.options.retain(|o| o != "--quiet");
    fixtures::churn(&src, 3_000, 3);
    let out = job2.run_ok("single", &["--log-format", "text", "--lookback", "0"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.lines().any(|l| l.starts_with("pgsync: pass ")),
        "{text}"
    );
    // Nothing but progress: no server notice from pgsync's own housekeeping.
    assert!(!text.contains("NOTICE"), "{text}");
    let quiet = Pgsync::new(&src.url(), &dst.url(), "transactions")
        .with(&["--progress-interval", "0"])
        .run_ok("single", &[]);
    assert!(quiet.stderr.is_empty(), "{quiet:?}");
}

#[test]
fn completions_and_the_man_page_come_from_the_same_definitions() {
    let bin = env!("CARGO_BIN_EXE_pgsync");
    let out = std::process::Command::new(bin)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("_pgsync")
            && script.contains("--cursor-column")
            && script.contains("verify"),
        "bash completion"
    );
    let out = std::process::Command::new(bin).arg("man").output().unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && page.contains(".TH pgsync") && page.contains("resume"),
        "man page"
    );
}

#[test]
fn verbose_run_says_where_the_time_went_and_the_summary_counts_the_key_build() {
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 5_000, 10);
    let mut job = Pgsync::new(&src.url(), &dst.url(), "transactions").with(&["-c", "1000"]);
    job.options.retain(|o| o != "--quiet");
    let out = job.run_ok("single", &["-v"]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("primary key built in"), "{summary}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let timings = stderr
        .lines()
        .find(|l| l.starts_with("pgsync: pass 1 timings: planning "))
        .unwrap_or_else(|| panic!("no timings line in {stderr}"));
    // "... windows W ms (checkpoints C ms) ... of T s": the parts fit in the whole.
    let number_after = |label: &str| -> f64 {
        let rest = &timings[timings
            .find(label)
            .unwrap_or_else(|| panic!("{label}: {timings}"))
            + label.len()..];
        rest.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (windows, checkpoints, total) = (
        number_after("windows "),
        number_after("(checkpoints "),
        number_after("% of "),
    );
    assert!(checkpoints > 0.0 && checkpoints <= windows, "{timings}");
    assert!(total * 1000.0 >= windows - 1.0, "{timings}");
    // Round trips a window, both servers together: BEGIN, COPY in (prepare, start, end),
    // receipt + COMMIT; the source's COPY out (prepare, start). A regression adds to them.
    let per_window = number_after("round trips, ");
    assert!((5.0..=9.0).contains(&per_window), "{timings}");
    fixtures::churn(&src, 500, 10);
    let out = job.run_ok("single", &["-v", "--lookback", "0"]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.starts_with("pass 2 done") && !summary.contains("primary key"),
        "{summary}"
    );
    assert_tables_equal(&src, &dst, "transactions", "id");
}

#[test]
fn the_state_directory_pgsync_creates_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let (src, dst) = (TestDb::new("src"), TestDb::new("dst"));
    fixtures::transactions(&src, 500, 10);
    let job = Pgsync::new(&src.url(), &dst.url(), "transactions");
    let dir = job.state_dir();
    assert!(
        !dir.exists(),
        "the harness made the state directory: the test proves nothing"
    );
    job.run_ok("single", &[]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("sled")), 0o700);
    assert_eq!(mode(&dir.join("lock")), 0o600);
    let live: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(!live.is_empty());
    for file in live {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
