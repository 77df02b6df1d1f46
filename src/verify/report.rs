//! How a verification reads: a summary (windows, rows, rate), the differing windows with
//! their bounds and row counts on both sides, the differing rows by key (bounded by
//! `--max-rows`, with the total), and rows not yet synced. Or the whole report as JSON.

use super::repair::RepairSummary;
use super::{RowDiffKind, VerifyReport};
use crate::runtime::output::rate;

pub fn human(r: &VerifyReport, max_rows: usize) -> String {
    let mut out = format!(
        "verify {}: {} — {} windows, {} source rows, {} destination rows in {:.2}s ({:.0} rows/s per side, {} hash)\n",
        r.table,
        r.range,
        r.windows,
        r.source_rows,
        r.dest_rows,
        r.seconds,
        rate(r.source_rows.max(r.dest_rows) as u64, r.seconds),
        match r.row_hash {
            super::checksum::RowHash::Record => "record",
            super::checksum::RowHash::Text => "text",
            super::checksum::RowHash::Key | super::checksum::RowHash::KeyRecord => "key only",
        }
    );
    let real: Vec<_> = r.real_differences().collect();
    if !r.differing_windows.is_empty() && !real.is_empty() {
        out.push_str(&format!(
            "differing windows: {}\n",
            r.differing_windows.len()
        ));
        for w in &r.differing_windows {
            let bounds = if w.window < 0 {
                "cursor IS NULL".to_string()
            } else {
                format!(
                    "[{}, {})",
                    w.from.as_deref().unwrap_or("start"),
                    w.until.as_deref().unwrap_or("end")
                )
            };
            out.push_str(&format!(
                "  window {} {bounds}: source {} rows, destination {} rows\n",
                w.window, w.source_rows, w.dest_rows
            ));
        }
    }
    // Rows past the watermark that the source lacks are differences no window holds.
    if !real.is_empty() {
        out.push_str(&format!("differing rows: {}\n", real.len()));
        for d in real.iter().take(max_rows) {
            let kind = match d.kind {
                RowDiffKind::MissingInDestination => "missing in destination",
                RowDiffKind::ExtraInDestination if d.window == super::beyond::BEYOND_WATERMARK => {
                    "extra in destination (past the watermark)"
                }
                RowDiffKind::ExtraInDestination => "extra in destination",
                RowDiffKind::Different => "different",
                RowDiffKind::ChangedSinceLastPass => "changed since the last pass",
            };
            out.push_str(&format!("  {kind}: key {}\n", d.key_text));
        }
        if real.len() > max_rows {
            out.push_str(&format!(
                "  … and {} more (--max-rows)\n",
                real.len() - max_rows
            ));
        }
    }
    let changed = r.differing_rows.len() - real.len();
    if changed > 0 {
        out.push_str(&format!("{changed} rows changed at the source since the last pass (the next pass brings them)\n"));
    }
    if let Some(n) = r.not_yet_synced.filter(|n| *n > 0) {
        out.push_str(&format!(
            "not yet synced: {n} source rows are newer than the watermark\n"
        ));
    }
    out.push_str(if r.is_equal() {
        "result: equal\n"
    } else {
        "result: DIFFERENT\n"
    });
    out
}

fn value(r: &VerifyReport) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["equal"] = serde_json::Value::Bool(r.is_equal());
    v
}

/// The report as JSON (all differing rows).
pub fn json(r: &VerifyReport) -> String {
    serde_json::to_string_pretty(&value(r)).unwrap_or_default()
}

/// A repair as JSON: the report before, what was changed, the report after.
pub fn json_repaired(
    before: &VerifyReport,
    repair: &RepairSummary,
    after: &VerifyReport,
) -> String {
    let v = serde_json::json!({ "before": value(before), "repair": repair, "after": value(after), "equal": after.is_equal() });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}
