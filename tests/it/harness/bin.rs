//! Runs the real `pgsync` binary with its own state directory, and explains failures by
//! printing the command, exit code, stdout, stderr and `status --json`.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

/// A pgsync invocation context: source, destination, table and a private state dir.
pub struct Pgsync {
    /// Source URL.
    pub source: String,
    /// Destination URL.
    pub dest: String,
    /// Table argument.
    pub table: String,
    /// More tables or patterns after it (a job over a set).
    pub more_tables: Vec<String>,
    /// Extra options given to every command.
    pub options: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    state: tempfile::TempDir,
}

impl Pgsync {
    /// A context with a fresh state directory.
    pub fn new(source: &str, dest: &str, table: &str) -> Pgsync {
        Pgsync {
            source: source.into(),
            dest: dest.into(),
            table: table.into(),
            more_tables: Vec::new(),
            options: vec!["--quiet".into()],
            env: Vec::new(),
            state: tempfile::tempdir().unwrap(),
        }
    }

    /// Adds options to every command.
    pub fn with(mut self, options: &[&str]) -> Pgsync {
        self.options.extend(options.iter().map(|s| s.to_string()));
        self
    }

    /// Adds tables (or patterns) after the first.
    pub fn tables(mut self, more: &[&str]) -> Pgsync {
        self.more_tables.extend(more.iter().map(|s| s.to_string()));
        self
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.state.path().join("state")
    }

    /// The command line for a subcommand.
    pub fn command(&self, sub: &str, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgsync"));
        cmd.arg(sub).args(&self.options).args(extra);
        cmd.arg("--state-dir").arg(self.state_dir());
        cmd.args([&self.source, &self.dest, &self.table]);
        cmd.args(&self.more_tables);
        cmd.env_remove("PGSYNC_FAILPOINT");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a subcommand to completion.
    pub fn run(&self, sub: &str, extra: &[&str]) -> Output {
        self.command(sub, extra).output().unwrap()
    }

    /// Runs and asserts the exit code, explaining a mismatch.
    pub fn run_ok(&self, sub: &str, extra: &[&str]) -> Output {
        self.assert_exit(sub, extra, 0)
    }

    /// Runs and asserts a given exit code.
    pub fn assert_exit(&self, sub: &str, extra: &[&str], code: i32) -> Output {
        let out = self.run(sub, extra);
        if out.status.code() != Some(code) {
            panic!("{}", self.explain(&format!("{sub} {extra:?}"), &out, code));
        }
        out
    }

    /// Spawns a subcommand with piped stderr.
    pub fn spawn(&self, sub: &str, extra: &[&str], env: &[(&str, &str)]) -> Child {
        let mut cmd = self.command(sub, extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `status --json` parsed.
    pub fn status(&self) -> serde_json::Value {
        let out = self.run("status", &["--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// A failure report.
    pub fn explain(&self, what: &str, out: &Output, expected: i32) -> String {
        format!(
            "pgsync {what}: expected exit {expected}, got {:?}\n--- stdout\n{}\n--- stderr\n{}\n--- status\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.status()
        )
    }
}

/// Sends SIGINT to a spawned pgsync, waits, and asserts it exited 130 (interrupted after a
/// clean checkpoint), explaining a mismatch with its stderr.
pub fn sigint(child: Child) -> Output {
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
