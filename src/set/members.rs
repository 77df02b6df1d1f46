//! The members of a set as the source catalog has them now: the selected tables with their
//! size (largest first: the scheduler's order), the refusal of destination foreign keys
//! between members, and the tables an earlier run of this job synced that the source no
//! longer has (reported, never silently dropped).

use super::{select, TableSet};
use crate::catalog::CatalogError;
use crate::db::ident::{quote, QualifiedName};
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use crate::job::JobSpec;
use crate::state::StateStore;

/// One table of the set.
#[derive(Debug, Clone)]
pub struct Member {
    pub spec: JobSpec,
    /// On-disk size at the source (bytes; partitions summed), 0 when missing.
    pub bytes: i64,
    /// The planner's row estimate (0 when never analyzed or missing).
    pub estimated_rows: u64,
}

/// Ordinary and partitioned tables (not partitions), outside the system schemas, with size
/// and row estimate.
const TABLES_SQL: &str = "
SELECT n.nspname, c.relname,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(pg_table_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t)
            ELSE pg_table_size(c.oid) END::int8,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(greatest(k.reltuples, 0)), 0)
                    FROM pg_partition_tree(c.oid) t JOIN pg_class k ON k.oid = t.relid)
            ELSE greatest(c.reltuples, 0) END::float8
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
 ORDER BY 1, 2";

impl TableSet {
    /// The members now, largest first (then by name).
    pub fn members(&self, src: &mut postgres::Client) -> Result<Vec<Member>, Error> {
        let rows = src
            .query(TABLES_SQL, &[])
            .on(Side::Source, "listing the source's tables")?;
        let found: Vec<(QualifiedName, i64, f64)> = rows
            .iter()
            .map(|r| {
                let name = QualifiedName {
                    schema: r.get(0),
                    name: r.get(1),
                };
                (name, r.get(2), r.get(3))
            })
            .filter(|(name, ..)| *name != self.base.receipts_table)
            .collect();
        let names: Vec<QualifiedName> = found.iter().map(|(n, ..)| n.clone()).collect();
        let mut members: Vec<Member> = select::select(&names, &self.include, &self.exclude)
            .into_iter()
            .map(|table| {
                let (bytes, rows) = found
                    .iter()
                    .find(|(n, ..)| *n == table)
                    .map_or((0, 0.0), |(_, b, r)| (*b, *r));
                Ok(Member {
                    spec: self.base.for_table(table)?,
                    bytes,
                    estimated_rows: rows as u64,
                })
            })
            .collect::<Result<_, Error>>()?;
        if members.is_empty() {
            return Err(Error::Usage(format!(
                "no table of the source matches {}",
                self.describe()
            )));
        }
        members.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then_with(|| a.spec.table.to_string().cmp(&b.spec.table.to_string()))
        });
        Ok(members)
    }

    /// Refuses a destination foreign key from one member to another (before anything is
    /// written): windows of different tables commit independently.
    pub fn check_foreign_keys(
        &self,
        dst: &mut postgres::Client,
        members: &[Member],
    ) -> Result<(), Error> {
        let rows = dst
            .query(
                "SELECT cn.nspname, c.relname, k.conname, fn.nspname, f.relname
                   FROM pg_constraint k
                   JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
                   JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
                  WHERE k.contype = 'f' AND k.conrelid <> k.confrelid
                  ORDER BY 1, 2, 3",
                &[],
            )
            .on(Side::Destination, "reading the destination's foreign keys")?;
        let member = |t: &QualifiedName| members.iter().any(|m| m.spec.table == *t);
        for r in &rows {
            let table = QualifiedName {
                schema: r.get(0),
                name: r.get(1),
            };
            let references = QualifiedName {
                schema: r.get(3),
                name: r.get(4),
            };
            if member(&table) && member(&references) {
                return Err(CatalogError::ForeignKeyInSet {
                    table: table.sql(),
                    constraint: quote(r.get(2)),
                    references: references.sql(),
                }
                .into());
            }
        }
        Ok(())
    }

    /// The tables of this selection whose jobs the store holds (these two databases, this
    /// cursor), by name.
    pub fn recorded(&self, store: &StateStore) -> Vec<QualifiedName> {
        let mut tables: Vec<QualifiedName> = store
            .job_ids()
            .iter()
            .filter_map(|id| store.job(id).ok()?.meta().ok().flatten())
            .filter_map(|meta| self.table_of(&meta.identity))
            .collect();
        tables.sort_by_key(|t| t.to_string());
        tables
    }

    /// The table of a job identity when it is one of this set's jobs: these two databases,
    /// a table the selection picks, with its cursor.
    pub fn table_of(&self, identity: &str) -> Option<QualifiedName> {
        use crate::cli::SyncMode;
        let rest = identity.strip_prefix(&self.base.identity_prefix())?;
        let diff_suffix = format!(" {}", crate::job::DIFF_IDENTITY);
        let (table, cursor) = match rest.strip_suffix(&diff_suffix) {
            Some(table) => (table, None),
            None => {
                let (table, cursor) = rest.rsplit_once(" cursor ")?;
                (table, Some(cursor))
            }
        };
        let (schema, name) = table.split_once('.')?;
        let table = QualifiedName {
            schema: schema.into(),
            name: name.into(),
        };
        // The cursor the job has for that table (its [[table]] section may name another);
        // `auto` takes either form.
        let expected = self.base.for_table(table.clone()).ok()?;
        let matches = match (cursor, expected.mode) {
            (None, SyncMode::Diff | SyncMode::Auto) => true,
            (Some(c), SyncMode::Cursor | SyncMode::Auto) => c == expected.cursor,
            _ => false,
        };
        (matches && self.selects(&table)).then_some(table)
    }

    /// Whether the selection picks `table` (by name or pattern, not excluded).
    pub fn selects(&self, table: &QualifiedName) -> bool {
        self.include.iter().any(|p| p.matches(table))
            && !self.exclude.iter().any(|p| p.matches(table))
    }

    /// Tables this job synced in an earlier run (their state is in the store) that the
    /// selection still names but the source no longer has.
    pub fn gone(&self, store: &StateStore, members: &[Member]) -> Vec<String> {
        self.recorded(store)
            .into_iter()
            .filter(|t| !members.iter().any(|m| m.spec.table == *t))
            .map(|t| t.to_string())
            .collect()
    }
}
