//! `pgsync plan`: a dry run — the bounds, estimated rows, slices and windows of the next
//! pass (or of the unfinished one), and how it would apply its windows. Reads the source,
//! the destination and the state; writes nothing.

use super::Outcome;
use crate::error::Error;
use crate::job::Job;
use crate::job::JobSpec;
use crate::keyspace::SliceKind;
use crate::pass;
use crate::state::records::ApplyMode;

/// Prints the plan of the next pass.
pub fn run(spec: JobSpec) -> Result<Outcome, Error> {
    print(&Job::open(spec)?)?;
    Ok(Outcome::Done)
}

/// The plan of every table of a set, largest first (the order the scheduler takes them);
/// a table that cannot be planned is named and the others are still shown.
pub fn run_set(set: &crate::set::TableSet) -> Result<Outcome, Error> {
    let started = std::time::Instant::now();
    let run = super::set_run::SetRun::open(set)?;
    let members = run.members()?;
    let mut failed = Vec::new();
    for member in &members {
        let table = member.spec.table.to_string();
        println!("table {table} ({} kB on disk):", member.bytes / 1000);
        if let Err(e) = run.open_table(member, None).and_then(|job| print(&job)) {
            println!("  cannot be synced: {e} — {}", e.hint());
            failed.push((table, e));
        }
    }
    println!(
        "{} tables, largest first, {} at once; planned in {:.0} ms",
        members.len(),
        set.base.jobs,
        started.elapsed().as_secs_f64() * 1000.0
    );
    if failed.is_empty() {
        Ok(Outcome::Done)
    } else {
        Err(Error::TablesFailed {
            failed,
            of: members.len(),
        })
    }
}

/// Prints the plan of a job's next pass.
fn print(job: &Job) -> Result<(), Error> {
    let spec = &job.spec;
    let (spec_window, target) = (spec.window_rows, spec.window_target);
    let jobs = spec.jobs;
    let preview = pass::preview(job)?;
    let p = &preview.pass;
    let window_rows = spec
        .first_window_rows(job.state.paces().expected(p.apply))
        .max(1);
    if let Some(lag) = job.standby_lag {
        println!("source:     a hot standby, replay lag {lag:.1}s");
    }
    if spec.mode == crate::cli::SyncMode::Diff {
        println!(
            "mode:       diff — a pass on the key's first column {:?} brings keys above the largest copied, then both tables are compared by window checksums and the differing rows copied or deleted",
            spec.cursor
        );
    }
    if let Some(note) = &preview.note {
        println!("note:       {note}");
    }
    println!(
        "pass:       {} ({})",
        p.number,
        if preview.continued {
            "continues an unfinished pass"
        } else {
            "new"
        }
    );
    println!("from:       {}", p.position());
    println!(
        "up to:      cursor <= {}{}",
        p.upper.as_deref().unwrap_or("- (no rows with a cursor)"),
        job.ks.clock.map_or(String::new(), |c| format!(
            " (capped at the source's clock; the cursor follows {})",
            c.describe()
        ))
    );
    println!(
        "applies:    {}",
        match p.apply {
            ApplyMode::Upsert => "staging + upsert (equal rows skipped)",
            ApplyMode::Append => "append into the empty destination (fresh load)",
            ApplyMode::AppendKeyLater =>
                "create the destination, append, build its primary key at the end (fresh load)",
        }
    );
    let left: Vec<_> = p
        .slices
        .iter()
        .zip(&p.progress)
        .enumerate()
        .filter(|(_, (_, progress))| !progress.done)
        .collect();
    let rows: u64 = left.iter().map(|(_, (s, _))| s.estimated_rows).sum();
    println!(
        "estimate:   ~{rows} rows in {} slice(s), {}",
        left.len(),
        match spec_window {
            Some(_) => format!(
                "~{} window(s) of {window_rows} rows",
                rows.div_ceil(window_rows)
            ),
            None =>
                format!("windows of about {target:?} of work each (the first {window_rows} rows)"),
        }
    );
    if jobs > 1 {
        println!(
            "jobs:       {} slice(s) copied at once",
            jobs.min(left.len().max(1))
        );
    }
    for (i, (s, progress)) in left {
        let extent = match &s.kind {
            SliceKind::Range { upper } => format!("{} .. cursor <= {upper}", progress.position),
            SliceKind::NullCursor => "rows whose cursor IS NULL".to_string(),
            SliceKind::Blocks {
                end,
                rows_per_block,
                ..
            } => format!(
                "{} .. heap block {end} (first load by block ranges, ~{rows_per_block} rows a block)",
                progress.position
            ),
        };
        println!("  slice {i}: ~{} rows, {extent}", s.estimated_rows);
    }
    if p.slices.is_empty() {
        println!("nothing to copy");
    }
    Ok(())
}
