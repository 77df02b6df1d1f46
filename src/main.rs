//! The `pgsync` binary: parse, install the signal handler, run, and turn the outcome into
//! an exit code — 0 done, 1 differences found, 2 error (one line on stderr), 130 interrupted.

use pgsync::commands::{self, Outcome};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = pgsync::cli::parse();
    pgsync::runtime::shutdown::install();
    match commands::run(cli.command) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::DifferencesFound) => ExitCode::from(1),
        Ok(Outcome::Interrupted) => {
            eprintln!(
                "pgsync: interrupted; progress is checkpointed, run `pgsync resume` to continue"
            );
            ExitCode::from(130)
        }
        Ok(Outcome::VerifyInterrupted) => {
            eprintln!(
                "pgsync: interrupted; run `pgsync verify` again (it only reads; repairs already made are committed)"
            );
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("pgsync: {e} — {}", e.hint());
            ExitCode::from(2)
        }
    }
}
