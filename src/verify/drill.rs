//! Drill-down: for a window whose checksums differ, name its differing rows. A window (or
//! node) of at most `MERGE_ROWS` rows a side is read once per side — (key, row hash) of each
//! row, both sides at once — and the two sets are compared: one scan of the window, ~30 bytes
//! a row on the wire, whatever the share of differing rows. A larger node is split 16 ways
//! by a hash of the primary key first, and only the sub-buckets that differ are read. Every
//! query reads the window by a cursor range its index can serve, never the whole table.

use super::checksum::{Checksums, Node};
use super::keys::key_in_list;
use super::{both, RowDiff, RowDiffKind, Sums};
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use std::collections::HashMap;

/// A node with at most this many rows on each side is read row by row and compared.
const MERGE_ROWS: i64 = 250_000;
/// Deepest level (16^12 buckets: beyond any table).
const MAX_DEPTH: usize = 12;
/// Keys per statement when printing differing keys.
const KEYS_PER_STATEMENT: usize = 1_000;

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
    if source.0.max(dest.0) <= MERGE_ROWS || node.path.len() >= MAX_DEPTH {
        return compare_rows(src, dst, checks, &node, out);
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

/// Reads (key, hash) of every row of a node on both sides at once and names each row that
/// is missing, extra or different.
fn compare_rows(
    src: &mut postgres::Client,
    dst: &mut postgres::Client,
    checks: &Checksums<'_>,
    node: &Node,
    out: &mut Vec<RowDiff>,
) -> Result<(), Error> {
    let sql = checks.rows_sql(node);
    let fetch =
        |client: &mut postgres::Client, side: Side| -> Result<HashMap<Vec<String>, i64>, Error> {
            let rows = client
                .query_typed(&sql, &[])
                .on(side, "reading differing rows")?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
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
    let mut found: Vec<(RowDiffKind, Vec<String>)> = Vec::new();
    for (key, hash) in &s {
        match d.get(key) {
            None => found.push((RowDiffKind::MissingInDestination, key.clone())),
            Some(other) if other != hash => found.push((RowDiffKind::Different, key.clone())),
            Some(_) => {}
        }
    }
    found.extend(
        d.keys()
            .filter(|k| !s.contains_key(*k))
            .map(|k| (RowDiffKind::ExtraInDestination, k.clone())),
    );
    drop((s, d));
    found.sort_by(|a, b| a.1.cmp(&b.1));
    let texts = key_texts(src, checks, &found)?;
    out.extend(found.into_iter().map(|(kind, key)| RowDiff {
        kind,
        key_text: texts.get(&key).cloned().unwrap_or_default(),
        key,
        window: node.window,
    }));
    Ok(())
}

/// The key text (`ROW(key)::text`, as reports print it) of each differing key, printed by
/// the source from the key values (no table read).
fn key_texts(
    src: &mut postgres::Client,
    checks: &Checksums<'_>,
    found: &[(RowDiffKind, Vec<String>)],
) -> Result<HashMap<Vec<String>, String>, Error> {
    let mut texts = HashMap::new();
    let keys: Vec<Vec<String>> = found.iter().map(|(_, k)| k.clone()).collect();
    for chunk in keys.chunks(KEYS_PER_STATEMENT) {
        for r in src
            .query_typed(&checks.key_texts_sql(chunk), &[])
            .on(Side::Source, "printing differing keys")?
        {
            texts.insert(r.get::<_, Vec<String>>(1), r.get::<_, String>(0));
        }
    }
    Ok(texts)
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
                .query_typed(&sql, &[])
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
