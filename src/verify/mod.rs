//! `pgsync verify`: proves source and destination agree, window by window, with checksums
//! computed on the servers (only counts and sums cross the network), then names the rows
//! of every differing window (`drill`) and optionally repairs them (`repair`).
//!
//! Range: by default the rows up to the watermark of the last finished pass (newer source
//! rows are reported as "not yet synced", not as differences); `--all` for the whole table;
//! `--from/--to` for cursor bounds.

pub mod beyond;
pub mod checksum;
pub mod deletes;
pub mod diff_pass;
pub mod drill;
pub mod keys;
pub mod places;
pub mod ranges;
pub mod repair;
pub mod report;
pub mod row_buckets;
pub mod scan;

use crate::catalog::CatalogError;
use crate::db::ident::quote;
use crate::db::ident::typed_literal;
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use crate::job::databases::Databases;
use crate::job::open::open_state_if_exists;
use crate::job::JobSpec;
use crate::keyspace::{bounds, slices, Position};
use crate::protocol::receipts::Receipts;
use checksum::{Checksums, Range, RowHash};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// Count and exact hash sum per window.
pub type Sums = HashMap<i64, (i64, i128)>;

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The whole table, NULL cursors included, whatever the watermark.
    pub all: bool,
    /// Inclusive lower cursor bound.
    pub from: Option<String>,
    /// Inclusive upper cursor bound.
    pub to: Option<String>,
    /// Rows per window (planning from statistics).
    pub window_rows: u64,
    /// Show progress on a terminal.
    pub progress: bool,
    /// Heap blocks per checksum statement.
    pub chunk_blocks: u64,
    /// Hash every row's text even when its types allow the faster record hash.
    pub text_hash: bool,
    /// Compare keys only: which rows each side has, not their contents (`--deletes`).
    pub keys_only: bool,
    /// Drill every window down without summing windows first (a diff pass after one that
    /// found most windows differing: the sums would only say so again).
    pub skip_window_sums: bool,
    /// Compare the whole range's count and sum first, and sum windows only when they differ
    /// (a diff pass after one that found nothing differing: most likely nothing does).
    pub whole_first: bool,
}

/// How a row differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowDiffKind {
    /// In the source, not in the destination.
    MissingInDestination,
    /// In the destination, not in the source (e.g. deleted at the source).
    ExtraInDestination,
    /// Both have the key, with other contents.
    Different,
    /// The source row changed after the last pass (its cursor moved past the range).
    ChangedSinceLastPass,
}

/// One differing row.
#[derive(Debug, Clone, Serialize)]
pub struct RowDiff {
    pub kind: RowDiffKind,
    /// The key as text, e.g. `(42,eu)`.
    pub key_text: String,
    /// Key values as text.
    #[serde(skip)]
    pub key: Vec<String>,
    pub window: i64,
}

/// A window whose checksums differ.
#[derive(Debug, Clone, Serialize)]
pub struct WindowDiff {
    /// Window index (-1: NULL cursors).
    pub window: i64,
    /// Inclusive lower cursor bound (None: open).
    pub from: Option<String>,
    /// Exclusive upper cursor bound (None: up to the range end).
    pub until: Option<String>,
    pub source_rows: i64,
    pub dest_rows: i64,
}

/// The result of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub table: String,
    /// The range checked, in words.
    pub range: String,
    pub windows: usize,
    /// Rows in range on the source.
    pub source_rows: i64,
    /// Rows in range on the destination.
    pub dest_rows: i64,
    pub seconds: f64,
    /// Windows whose checksums differ.
    pub differing_windows: Vec<WindowDiff>,
    /// Differing rows (all of them; the printer bounds the output).
    pub differing_rows: Vec<RowDiff>,
    /// Source rows newer than the range (not yet synced).
    pub not_yet_synced: Option<i64>,
    /// How rows were hashed.
    pub row_hash: RowHash,
}

impl VerifyReport {
    /// Rows that really differ (rows changed since the last pass are not differences).
    pub fn real_differences(&self) -> impl Iterator<Item = &RowDiff> {
        self.differing_rows
            .iter()
            .filter(|d| d.kind != RowDiffKind::ChangedSinceLastPass)
    }

    /// True when nothing differs.
    pub fn is_equal(&self) -> bool {
        let unexplained_window =
            !self.differing_windows.is_empty() && self.differing_rows.is_empty();
        self.real_differences().next().is_none() && !unexplained_window
    }
}

/// The result of a verify thread that reads one side; its panic as an error that names it
/// (exit 2, never taken for an interrupt or a usage error).
pub fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T, Error>>) -> Result<T, Error> {
    handle.join().unwrap_or_else(|_| {
        Err(Error::WorkerPanicked {
            side: None,
            what: "a verify thread reading one side".into(),
        })
    })
}

/// The windows whose count or sum differ, and the rows counted on each side.
fn compare_windows(checks: &Checksums<'_>, s: &Sums, d: &Sums) -> (Vec<WindowDiff>, i64, i64) {
    let windows: BTreeSet<i64> = s.keys().chain(d.keys()).copied().collect();
    let mut differing = Vec::new();
    for w in &windows {
        let (sc, ss) = s.get(w).copied().unwrap_or_default();
        let (dc, ds) = d.get(w).copied().unwrap_or_default();
        if sc == dc && ss == ds {
            continue;
        }
        let (from, until) = checks.window_bounds(*w);
        differing.push(WindowDiff {
            window: *w,
            from,
            until,
            source_rows: sc,
            dest_rows: dc,
        });
    }
    let count = |m: &Sums| m.values().map(|(c, _)| c).sum();
    (differing, count(s), count(d))
}

/// The record hash when the column types allow it and both servers can hash a row of them;
/// the text hash otherwise.
fn choose_row_hash(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    shape: &crate::catalog::TableShape,
) -> RowHash {
    if !RowHash::record_eligible(shape) {
        return RowHash::Text;
    }
    let probe = RowHash::probe_sql(shape);
    if src.simple_query(&probe).is_ok() && dst.simple_query(&probe).is_ok() {
        RowHash::Record
    } else {
        RowHash::Text
    }
}

/// Verifies a job's tables.
pub fn run(spec: &JobSpec, db: &Databases, opts: &VerifyOptions) -> Result<VerifyReport, Error> {
    if !db.dest_existed {
        return Err(CatalogError::TableMissing {
            side: Side::Destination,
            table: spec.table.clone(),
        }
        .into());
    }
    let started = Instant::now();
    let mut src = db.source.get()?;
    let mut dst = db.dest.get()?;
    let nullable = db
        .shape
        .column(&db.ks.cursor.0)
        .is_some_and(|c| !c.not_null);
    // A table synced by diff has no watermark: every pass compares it whole.
    let opts = &VerifyOptions {
        all: opts.all || db.diff,
        ..opts.clone()
    };
    let (range, described, watermark) = choose_range(spec, &mut dst, opts, nullable)?;
    let lower = range
        .from
        .clone()
        .map_or(Position::Start, Position::BeforeCursor);
    let upper = match &range.to {
        Some(t) => Some(t.clone()),
        None => bounds::source_upper(&mut src, &spec.table, &db.ks)?,
    };
    let cuts = match &upper {
        Some(u) => slices::histogram_cuts(
            &mut src,
            &spec.table,
            &db.ks,
            &lower,
            u,
            opts.window_rows.max(1),
        )?,
        None => Vec::new(),
    };
    let row_hash = if opts.keys_only {
        // The key's columns alone decide whether it can be hashed by its values.
        let mut key_shape = db.shape.clone();
        key_shape
            .columns
            .retain(|c| db.shape.primary_key.contains(&c.name));
        match choose_row_hash(&mut src, &mut dst, &key_shape) {
            RowHash::Record => RowHash::KeyRecord,
            _ => RowHash::Key,
        }
    } else if opts.text_hash {
        RowHash::Text
    } else {
        choose_row_hash(&mut src, &mut dst, &db.shape)
    };
    let checks = Checksums {
        shape: &db.shape,
        ks: &db.ks,
        bounds: &cuts,
        range: &range,
        row_hash,
    };
    // Windows to drill and their rows (for the drill-down's bucket count): every window
    // when the window sums are skipped, else those whose sums differ.
    let (differing_windows, windows, rows, counted) = if opts.skip_window_sums {
        let all: Vec<i64> = (if range.nulls { -1 } else { 0 }..=cuts.len() as i64).collect();
        (
            Vec::new(),
            all,
            db.shape.estimated_rows.max(0.0) as u64,
            None,
        )
    } else if let Some(equal) = scan::equal_whole(&mut src, &mut dst, &checks, opts)? {
        (Vec::new(), Vec::new(), 0, Some(equal))
    } else {
        let scanning = Instant::now();
        let (s, d) = scan::both(&mut src, &mut dst, &checks, opts)?;
        log::debug!(
            "verify: window checksums of both sides in {:.1} ms",
            scanning.elapsed().as_secs_f64() * 1000.0
        );
        let (differing, source_rows, dest_rows) = compare_windows(&checks, &s, &d);
        let windows: Vec<i64> = differing.iter().map(|w| w.window).collect();
        let rows: i64 = differing
            .iter()
            .map(|w| w.source_rows.max(w.dest_rows))
            .sum();
        let counted = Some((source_rows, dest_rows));
        (differing, windows, rows.max(0) as u64, counted)
    };
    let mut differing_rows = Vec::new();
    let drilling = Instant::now();
    let drilled = drill::differing_rows(
        &mut src,
        &mut dst,
        &checks,
        &windows,
        rows,
        &mut differing_rows,
    )?;
    // Without window sums, the drill-down's buckets counted every row.
    let (source_rows, dest_rows) = counted.unwrap_or((drilled.0 as i64, drilled.1 as i64));
    log::debug!(
        "verify: {} differing rows of {} windows named in {:.1} ms",
        differing_rows.len(),
        windows.len(),
        drilling.elapsed().as_secs_f64() * 1000.0
    );
    drill::explain_out_of_range(&mut src, &mut dst, &checks, &mut differing_rows)?;
    // By default every destination row is accounted for, those past the watermark too.
    if let Some(w) = &watermark {
        differing_rows.extend(beyond::extra_beyond(&mut src, &mut dst, &checks, w)?);
    }
    let not_yet_synced = match &watermark {
        Some(w) => {
            let sql = format!(
                "SELECT count(*) FROM {} WHERE {} > {}",
                spec.table.sql(),
                quote(&db.ks.cursor.0),
                typed_literal(w, &db.ks.cursor.1)
            );
            Some(
                src.query_typed_one(&sql, &[])
                    .on(Side::Source, "counting rows newer than the watermark")?
                    .get(0),
            )
        }
        None => None,
    };
    Ok(VerifyReport {
        row_hash,
        table: spec.table.to_string(),
        range: described,
        windows: cuts.len() + 1 + usize::from(range.nulls),
        source_rows,
        dest_rows,
        seconds: started.elapsed().as_secs_f64(),
        differing_windows,
        differing_rows,
        not_yet_synced,
    })
}

/// The range to check, its description, and the watermark it came from (if any).
fn choose_range(
    spec: &JobSpec,
    dst: &mut postgres::Client,
    opts: &VerifyOptions,
    nullable: bool,
) -> Result<(Range, String, Option<String>), Error> {
    if opts.all || opts.from.is_some() || opts.to.is_some() {
        let all = opts.all && opts.from.is_none() && opts.to.is_none();
        let range = Range {
            from: opts.from.clone(),
            to: opts.to.clone(),
            nulls: nullable && all,
        };
        let described = match (&range.from, &range.to) {
            (None, None) => "the whole table".to_string(),
            (f, t) => format!(
                "cursor from {} to {}",
                f.as_deref().unwrap_or("the start"),
                t.as_deref().unwrap_or("the end")
            ),
        };
        return Ok((range, described, None));
    }
    let watermark = last_watermark(spec, dst)?;
    match watermark {
        Some(w) => Ok((
            Range {
                from: None,
                to: Some(w.clone()),
                nulls: nullable,
            },
            format!("rows up to the last pass's watermark (cursor <= {w})"),
            Some(w),
        )),
        None => Ok((
            Range {
                from: None,
                to: None,
                nulls: nullable,
            },
            "the whole table (no finished pass recorded)".into(),
            None,
        )),
    }
}

/// The upper bound of the last finished pass: from the state store when it can be read
/// (not in use by a running pgsync), else from the destination's receipts.
fn last_watermark(spec: &JobSpec, dst: &mut postgres::Client) -> Result<Option<String>, Error> {
    if let Some(state) = open_state_if_exists(spec) {
        if let Ok(Some(w)) = state.watermark() {
            if let Position::AfterCursor(c) = w.position {
                return Ok(Some(c));
            }
        }
    }
    Ok(Receipts::new(spec.receipts_table.clone()).last_finished_upper(dst, &spec.job_id)?)
}
