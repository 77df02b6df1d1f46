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
use crate::state::{StateError, StateStore};

/// Prints the status.
pub fn run(spec: &JobSpec, json: bool) -> Result<Outcome, Error> {
    let spec = &as_recorded(spec);
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

/// `--mode auto` decides between a cursor and a diff job when it reads the tables, which
/// status does not: the diff job when the store (or a running sync's snapshot) has it.
fn as_recorded(spec: &JobSpec) -> JobSpec {
    if spec.mode != crate::cli::SyncMode::Auto {
        return spec.clone();
    }
    let diff = spec.clone().into_diff(&spec.cursor);
    let known = match StateStore::open(&spec.state_dir) {
        Ok(store) => store.job_ids().contains(&diff.job_id),
        Err(_) => read_live(&diff).is_some(),
    };
    if known {
        diff
    } else {
        spec.clone()
    }
}

/// The status of every table of a set the store knows (and of each table named that it
/// does not yet): one line per table, or with `--json` `{"tables": [{"table", …status}]}`.
/// While a sync holds the store, its live snapshots.
pub fn run_set(set: &crate::set::TableSet, json: bool) -> Result<Outcome, Error> {
    let views: Vec<(String, Option<StatusView>)> = match StateStore::open(&set.base.state_dir) {
        Ok(store) => {
            let mut tables = set.recorded(&store);
            for p in set.include.iter().filter(|p| !p.wild) {
                if !tables.contains(&p.name) {
                    tables.push(p.name.clone());
                }
            }
            let mut views = Vec::new();
            for table in tables {
                let spec = set.base.for_table(table)?;
                let state = store.job(&spec.job_id)?;
                let known = state.meta()?.is_some();
                let v = if known {
                    Some(view(&spec, &state)?)
                } else {
                    None
                };
                views.push((spec.table.to_string(), v));
            }
            views
        }
        Err(StateError::Locked { dir }) => {
            let live = live_views(set);
            if live.is_empty() {
                return Err(StateError::Locked { dir }.into());
            }
            live
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        let tables: Vec<serde_json::Value> = views
            .iter()
            .map(|(table, v)| {
                let mut value = serde_json::to_value(v).unwrap_or_default();
                match value.as_object_mut() {
                    Some(o) => {
                        o.insert("table".into(), table.clone().into());
                    }
                    None => value = serde_json::json!({ "table": table, "pass": null }),
                }
                value
            })
            .collect();
        let doc = serde_json::json!({ "tables": tables });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{}", table_lines(&views));
    }
    Ok(Outcome::Done)
}

/// The live snapshots of the set's tables written by the sync that holds the store.
fn live_views(set: &crate::set::TableSet) -> Vec<(String, Option<StatusView>)> {
    let mut views: Vec<(String, Option<StatusView>)> = std::fs::read_dir(&set.base.state_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("live-"))
        .filter_map(|e| serde_json::from_slice::<StatusView>(&std::fs::read(e.path()).ok()?).ok())
        .filter_map(|v| Some((set.table_of(&v.job)?.to_string(), Some(v))))
        .collect();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    views
}

/// One line per table: state, pass, windows, rows, watermark, last pass, error.
fn table_lines(views: &[(String, Option<StatusView>)]) -> String {
    let width = views.iter().map(|(t, _)| t.len()).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:width$}  {:10}  {:>5}  {:>9}  {:>12}  {:32}  {}\n",
        "table", "state", "pass", "windows", "rows", "watermark", "last pass / error"
    );
    for (table, v) in views {
        let Some(v) = v else {
            out.push_str(&format!(
                "{table:width$}  {:10}  {:>5}  {:>9}  {:>12}  {:32}  -\n",
                "never run", "-", "-", "-", "-"
            ));
            continue;
        };
        let state = match (&v.running, &v.pass) {
            (Some(_), Some(p)) if !p.finished => "running",
            (_, None) => "no pass",
            (_, Some(p)) if p.finished => "finished",
            _ => "unfinished",
        };
        let (pass, windows, rows) =
            v.pass
                .as_ref()
                .map_or(("-".into(), "-".into(), "-".into()), |p| {
                    (
                        p.number.to_string(),
                        p.windows_committed.to_string(),
                        p.rows_read.to_string(),
                    )
                });
        let last = match (&v.last_error, &v.last_pass) {
            (Some(e), _) => format!("error: {e}"),
            (None, Some(l)) => format!(
                "pass {} {}, {:.0} rows/s",
                l.number,
                age(l.finished_unix),
                l.rows_per_second
            ),
            (None, None) => "-".into(),
        };
        out.push_str(&format!(
            "{table:width$}  {state:10}  {pass:>5}  {windows:>9}  {rows:>12}  {:32}  {last}\n",
            v.watermark.as_deref().unwrap_or("-")
        ));
    }
    out
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
    if let Some(d) = &v.diff_pass {
        out.push_str(&format!(
            "diff pass:  after pass {}: {} windows compared, {} of {} differing windows applied{}, {} rows written, {} deleted, {}\n",
            d.pass,
            d.windows,
            d.windows_applied,
            d.differing_windows,
            if d.finished { "" } else { " (cut short: the next pass compares again)" },
            d.rows_written,
            d.rows_deleted,
            age(d.recorded_unix)
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
