//! `pgsync status`: a read-only view of the job's state — plan, windows committed, position,
//! watermark, last pass, held-back transactions and last error — for people, or as JSON
//! with `--json`. Never connects to a database. Like every command it opens the job's state
//! store (creating `.pgsync/` and the job's meta record when they are new); while a sync
//! runs (and holds the store) it shows that sync's live snapshot instead.

use super::Outcome;
use crate::error::Error;
use crate::job::open::open_state;
use crate::job::status::{read_live, view, StatusView};
use crate::job::JobSpec;
use crate::state::StateError;

/// Prints the status.
pub fn run(spec: &JobSpec, json: bool) -> Result<Outcome, Error> {
    let view = match open_state(spec) {
        Ok((_store, state)) => view(spec, &state)?,
        Err(Error::State(StateError::Locked { dir })) => {
            read_live(spec).ok_or(StateError::Locked { dir })?
        }
        Err(e) => return Err(e),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&view).unwrap_or_default()
        );
    } else {
        print!("{}", human(&view));
    }
    Ok(Outcome::Done)
}

/// "3m 12s ago" style age of a unix time.
fn age(unix: u64) -> String {
    let secs = crate::runtime::output::unix_now().saturating_sub(unix);
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m {}s ago", secs / 60, secs % 60),
        _ => format!("{}h {}m ago", secs / 3600, (secs % 3600) / 60),
    }
}

fn human(v: &StatusView) -> String {
    let mut out = format!("job:        {}\njob id:     {}\n", v.job, v.job_id);
    if let Some(r) = &v.running {
        out.push_str(&format!(
            "running:    yes, pid {} (figures as of {}s ago)\n",
            r.pid,
            crate::runtime::output::unix_now().saturating_sub(r.updated_unix)
        ));
    }
    match &v.pass {
        None => out.push_str("pass:       none yet\n"),
        Some(p) => out.push_str(&format!(
            "pass:       {} ({}, started {})\nslices:     {}/{}\nwindows:    {} committed of ~{}\nrows:       {} read of ~{}\nposition:   {}\nupper:      {}\n",
            p.number,
            if p.finished { "finished" } else { "unfinished: `pgsync resume` continues it" },
            age(p.started_unix),
            p.slices_done,
            p.slices_total,
            p.windows_committed,
            p.windows_estimated,
            p.rows_read,
            p.rows_estimated,
            p.position,
            p.upper.as_deref().unwrap_or("-"),
        )),
    }
    out.push_str(&format!(
        "watermark:  {}\n",
        v.watermark.as_deref().unwrap_or("-")
    ));
    if let Some(l) = &v.last_pass {
        out.push_str(&format!(
            "last pass:  {}: {} rows read, {} written, {} windows, {:.1}s, {:.0} rows/s\n",
            l.number, l.rows_read, l.rows_written, l.windows, l.seconds, l.rows_per_second
        ));
    }
    if !v.pending_transactions.is_empty() {
        let shown: Vec<&str> = v
            .pending_transactions
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        let more = v.pending_transactions.len().saturating_sub(shown.len());
        out.push_str(&format!(
            "held back:  {} source transaction(s) running at a plan, not yet seen finished ({}{}): \
             the next pass starts at or below their floor (late commits)\n",
            v.pending_transactions.len(),
            shown.join(", "),
            if more > 0 { format!(", {more} more") } else { String::new() }
        ));
    }
    if let Some(c) = &v.connections {
        out.push_str(&format!(
            "encryption: source {} (sslmode={}), destination {} (sslmode={})\n",
            c.source.encryption, c.source.sslmode, c.destination.encryption, c.destination.sslmode
        ));
    }
    if let Some(e) = &v.last_error {
        out.push_str(&format!("last error: {e}\n"));
    }
    out
}
