//! Drill-down: for a window whose checksums differ, split it 16 ways by a hash of the
//! primary key, recurse into the sub-buckets that differ, and once a bucket holds few rows,
//! fetch (key, hash) from both sides and name each differing row. Only differing buckets
//! are ever fetched, so finding one bad row in a million costs a few grouped scans.

use super::checksum::{key_in_list, Checksums, Node};
use super::{both, RowDiff, RowDiffKind, Sums};
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use std::collections::BTreeMap;

/// A bucket with at most this many rows on each side is fetched and diffed row by row.
const LEAF_ROWS: i64 = 2_000;
/// Deepest level (16^12 buckets: beyond any table).
const MAX_DEPTH: usize = 12;

/// One row as the drill-down sees it.
struct RowSeen {
    key: Vec<String>,
    hash: String,
}

/// Finds the differing rows of one node, appending them to `out`.
pub fn differing_rows(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    checks: &Checksums<'_>,
    node: Node,
    source: (i64, &str),
    dest: (i64, &str),
    out: &mut Vec<RowDiff>,
) -> Result<(), Error> {
    if source.0.max(dest.0) <= LEAF_ROWS || node.path.len() >= MAX_DEPTH {
        return leaf(src, dst, checks, &node, out);
    }
    let sql = checks.children_sql(&node);
    let (s, d): (Sums, Sums) = both(src, dst, &sql, "drilling into a differing window")?;
    let buckets: std::collections::BTreeSet<i64> = s.keys().chain(d.keys()).copied().collect();
    for b in buckets {
        let (sc, ss) = s.get(&b).map_or((0, ""), |(c, h)| (*c, h.as_str()));
        let (dc, ds) = d.get(&b).map_or((0, ""), |(c, h)| (*c, h.as_str()));
        if sc == dc && ss == ds {
            continue;
        }
        let mut child = node.clone();
        child.path.push(b as u8);
        differing_rows(src, dst, checks, child, (sc, ss), (dc, ds), out)?;
    }
    Ok(())
}

fn leaf(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    checks: &Checksums<'_>,
    node: &Node,
    out: &mut Vec<RowDiff>,
) -> Result<(), Error> {
    let sql = checks.rows_sql(node);
    let fetch =
        |client: &mut postgres::Client, side: Side| -> Result<BTreeMap<String, RowSeen>, Error> {
            let rows = client.query(&sql, &[]).on(side, "reading differing rows")?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        RowSeen {
                            key: r.get(1),
                            hash: r.get(3),
                        },
                    )
                })
                .collect())
        };
    let (s, d) = std::thread::scope(|scope| {
        let a = scope.spawn(|| fetch(src, Side::Source));
        let b = fetch(dst, Side::Destination);
        (
            a.join().unwrap_or_else(|_| {
                Err(Error::WorkerPanicked {
                    side: None,
                    what: "a verify scan thread".into(),
                })
            }),
            b,
        )
    });
    let (s, d) = (s?, d?);
    for (text, row) in &s {
        match d.get(text) {
            None => out.push(RowDiff {
                kind: RowDiffKind::MissingInDestination,
                key_text: text.clone(),
                key: row.key.clone(),
                window: node.window,
            }),
            Some(other) if other.hash != row.hash => out.push(RowDiff {
                kind: RowDiffKind::Different,
                key_text: text.clone(),
                key: row.key.clone(),
                window: node.window,
            }),
            Some(_) => {}
        }
    }
    for (text, row) in &d {
        if !s.contains_key(text) {
            out.push(RowDiff {
                kind: RowDiffKind::ExtraInDestination,
                key_text: text.clone(),
                key: row.key.clone(),
                window: node.window,
            });
        }
    }
    Ok(())
}

/// Rows seen only on one side may exist on the other side outside the verified range (the
/// source row changed after the last pass, so its cursor moved past the watermark): those
/// are "not yet synced", not differences.
pub fn explain_out_of_range(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    checks: &Checksums<'_>,
    diffs: &mut [RowDiff],
) -> Result<(), Error> {
    let table = checks.shape.table.sql();
    for (kind, client, side) in [
        (RowDiffKind::ExtraInDestination, &mut *src, Side::Source),
        (
            RowDiffKind::MissingInDestination,
            &mut *dst,
            Side::Destination,
        ),
    ] {
        let keys: Vec<Vec<String>> = diffs
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.key.clone())
            .collect();
        for chunk in keys.chunks(1000) {
            let sql = format!(
                "SELECT {} FROM {table} a WHERE {}",
                checks.key_text(),
                key_in_list(checks.ks, "a", chunk)
            );
            let found: std::collections::HashSet<String> = client
                .query(&sql, &[])
                .on(side, "looking up rows outside the range")?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for d in diffs
                .iter_mut()
                .filter(|d| d.kind == kind && found.contains(&d.key_text))
            {
                d.kind = match kind {
                    RowDiffKind::ExtraInDestination => RowDiffKind::ChangedSinceLastPass,
                    _ => RowDiffKind::Different,
                };
            }
        }
    }
    Ok(())
}
