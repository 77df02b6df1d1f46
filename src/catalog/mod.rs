//! The shape of a table as the catalog describes it: columns (`columns`) with their exact types
//! (`format_type`), NOT NULL, primary key, the cursor column, triggers and the planner's row
//! estimate. Reads `pg_catalog` only, so it works for a role with nothing but SELECT.

pub mod columns;
pub mod compare;
pub mod ddl;
pub mod types;

pub use columns::Column;

use crate::db::ident::{quote, QualifiedName};
use crate::db::{DbError, PgResultExt, Side};
use postgres::types::Type;

/// Why a table cannot be synced as asked.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The table (or view) does not exist.
    #[error("{side}: table {table} does not exist")]
    TableMissing { side: Side, table: QualifiedName },
    /// The relation is not an ordinary or partitioned table.
    #[error("{side}: {table} is not a table (relkind {relkind})")]
    NotATable {
        side: Side,
        table: QualifiedName,
        /// pg_class.relkind.
        relkind: String,
    },
    /// The cursor column is not in the source table.
    #[error(
        "source: table {table} has no column {column:?} to use as cursor (columns: {available})"
    )]
    CursorMissing {
        table: QualifiedName,
        /// The requested cursor column.
        column: String,
        /// The columns there are.
        available: String,
    },
    /// The cursor column's type has no ordering.
    #[error("source: cursor column {column:?} has type {sql_type}, which has no ordering")]
    CursorNotOrderable { column: String, sql_type: String },
    /// No index starts with the cursor column of a large table: every keyset window would
    /// scan and sort the whole table.
    #[error("source: no index of {table} (~{rows} rows) starts with the cursor column {column:?}: every window of a pass would scan and sort the whole table")]
    CursorUnindexed {
        table: QualifiedName,
        /// The cursor column.
        column: String,
        /// The planner's row estimate.
        rows: u64,
        /// The statement that creates the index.
        statement: String,
    },
    /// No primary key: windows need a unique key to break cursor ties.
    #[error("source: table {table} has no primary key")]
    NoPrimaryKey { table: QualifiedName },
    /// `--key` names columns that are not a unique, non-null key.
    #[error("{side}: table {table} has no unique index on ({key}) with every column NOT NULL")]
    KeyNotUnique {
        side: Side,
        table: QualifiedName,
        /// The columns asked for.
        key: String,
    },
    /// The destination lacks a user type the table uses that pgsync does not create.
    #[error("destination: type {type_name} does not exist, and pgsync creates enums, domains, ranges and composite types, not base types")]
    TypeMissing {
        /// The type, as the source prints it.
        type_name: String,
    },
    /// A destination table of a set has a foreign key to another table of the set: windows
    /// of different tables commit independently, so it would fail halfway.
    #[error("destination: {table} has foreign key {constraint} to {references}, which this job also syncs; tables commit window by window, independently, so the constraint would fail halfway")]
    ForeignKeyInSet {
        table: String,
        constraint: String,
        references: String,
    },
    /// Destination table exists with another structure.
    #[error("destination: table {table} does not match the source: {detail}")]
    ShapeMismatch {
        table: QualifiedName,
        /// The first difference found.
        detail: String,
    },
    /// Database failure while reading the catalog or creating the table.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A table's shape.
#[derive(Debug, Clone)]
pub struct TableShape {
    pub table: QualifiedName,
    /// Columns in attribute order.
    pub columns: Vec<Column>,
    /// Primary-key column names in key order (empty when there is none).
    pub primary_key: Vec<String>,
    /// The table has user (non-internal) triggers.
    pub has_user_triggers: bool,
    /// `pg_class.reltuples` (planner estimate, -1 when never analysed).
    pub estimated_rows: f64,
    /// Some index starts with the given cursor column (only filled for the source).
    pub cursor_indexed: bool,
    /// pgsync created it without its primary key, to be built after the first load.
    pub key_deferred: bool,
    /// A partitioned table (its rows live in its partitions).
    pub partitioned: bool,
}

impl TableShape {
    /// The column of that name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Primary-key columns with their types.
    pub fn key_columns(&self) -> Vec<&Column> {
        self.primary_key
            .iter()
            .filter_map(|k| self.column(k))
            .collect()
    }

    /// Comma-separated quoted list of the copied columns, optionally prefixed by a table alias.
    pub fn column_list(&self, alias: Option<&str>) -> String {
        join_quoted(self.copied().map(|c| c.name.as_str()), alias)
    }

    /// The columns pgsync copies, in order: all but those the destination computes.
    pub fn copied(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.computed)
    }

    /// The key's first column when it is an integer drawing its values from a sequence
    /// (identity or `serial`): the sequence must stay ahead of the copied keys.
    pub fn key_sequence_column(&self) -> Option<&Column> {
        const INTEGERS: [u32; 3] = [20, 21, 23];
        let first = self.column(self.primary_key.first()?)?;
        (INTEGERS.contains(&first.type_oid)
            && (first.identity.is_some() || first.default_sequence.is_some()))
        .then_some(first)
    }

    /// Comma-separated quoted primary-key list, optionally prefixed by an alias.
    pub fn key_list(&self, alias: Option<&str>) -> String {
        join_quoted(self.primary_key.iter().map(String::as_str), alias)
    }
}

/// `a."x", a."y"` for the given names.
pub fn join_quoted<'a>(names: impl Iterator<Item = &'a str>, alias: Option<&str>) -> String {
    names
        .map(|n| match alias {
            Some(a) => format!("{a}.{}", quote(n)),
            None => quote(n),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads a table's shape, `Ok(None)` when it does not exist.
pub fn load(
    client: &mut postgres::Client,
    side: Side,
    table: &QualifiedName,
    cursor: Option<&str>,
) -> Result<Option<TableShape>, CatalogError> {
    let doing = format!("reading the catalog for {table}");
    // One statement (one round trip on a link with latency): the relation, its columns as
    // JSON (`columns::parse`), its primary key, whether it has user triggers, whether an index starts with the
    // cursor column.
    let rel = client
        .query_typed_opt(
            "SELECT c.oid, c.reltuples::float8, c.relkind::text, coalesce(obj_description(c.oid, 'pg_class'), ''), \
               (SELECT json_agg(json_build_array(a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
                       a.attgenerated <> '', a.atttypid::bigint, \
                       CASE WHEN a.attgenerated <> '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END, \
                       (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_catalog.pg_collation co \
                          JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid \
                         WHERE co.oid = a.attcollation AND a.attcollation <> ty.typcollation), \
                       a.attidentity::text, \
                       CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END) ORDER BY a.attnum)::text \
                FROM pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), \
               ARRAY(SELECT a.attname::text FROM pg_index i \
                 CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                 WHERE i.indrelid = c.oid AND i.indisprimary ORDER BY k.ord), \
               EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal), \
               coalesce($3 IS NOT NULL AND EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
                 AND a.attnum = i.indkey[0] WHERE i.indrelid = c.oid AND a.attname = $3), false) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            &[
                (&table.schema, Type::TEXT),
                (&table.name, Type::TEXT),
                (&cursor, Type::TEXT),
            ],
        )
        .on(side, &doing)?;
    let Some(rel) = rel else { return Ok(None) };
    let relkind: String = rel.get(2);
    if relkind != "r" && relkind != "p" {
        return Err(CatalogError::NotATable {
            side,
            table: table.clone(),
            relkind,
        });
    }
    let columns = columns::parse(rel.get::<_, Option<String>>(4).as_deref()).map_err(|e| {
        CatalogError::Db(DbError::other(
            side,
            crate::db::DbErrorKind::Other,
            &doing,
            format!("unexpected column list from the catalog: {e}"),
        ))
    })?;
    let primary_key: Vec<String> = rel.get(5);
    let has_user_triggers: bool = rel.get(6);
    let cursor_indexed: bool = rel.get(7);
    Ok(Some(TableShape {
        table: table.clone(),
        columns,
        primary_key,
        has_user_triggers,
        estimated_rows: rel.get(1),
        cursor_indexed,
        key_deferred: rel.get::<_, String>(3) == ddl::KEY_LATER,
        partitioned: relkind == "p",
    }))
}

/// Checks the source table can be synced with this cursor: it exists, has a key (its
/// primary key, or the unique non-null columns named by `--key`), and the cursor column
/// exists and is orderable.
pub fn check_source(
    client: &mut postgres::Client,
    shape: Option<TableShape>,
    table: &QualifiedName,
    cursor: &str,
    key: Option<&[String]>,
) -> Result<TableShape, CatalogError> {
    let mut shape = shape.ok_or_else(|| CatalogError::TableMissing {
        side: Side::Source,
        table: table.clone(),
    })?;
    let Some(col) = shape.column(cursor) else {
        return Err(CatalogError::CursorMissing {
            table: table.clone(),
            column: cursor.to_string(),
            available: shape
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    // Planning a query that orders by the column proves a default btree ordering exists,
    // without reading a row (works for domains, varchar and other binary-coercible types);
    // the common built-in types have one (no round trip).
    const ORDERED: [u32; 16] = [
        16, 20, 21, 23, 25, 700, 701, 1042, 1043, 1082, 1083, 1114, 1184, 1186, 1700, 2950,
    ];
    let probe = format!(
        "SELECT 1 FROM {} ORDER BY {} LIMIT 0",
        table.sql(),
        quote(cursor)
    );
    if !ORDERED.contains(&col.type_oid) && client.prepare(&probe).is_err() {
        return Err(CatalogError::CursorNotOrderable {
            column: cursor.to_string(),
            sql_type: col.sql_type.clone(),
        });
    }
    if let Some(key) = key {
        use_key(client, Side::Source, &mut shape, key)?;
    }
    if shape.primary_key.is_empty() {
        return Err(CatalogError::NoPrimaryKey {
            table: table.clone(),
        });
    }
    Ok(shape)
}

/// Makes `key` the shape's key after checking that a unique, non-partial index covers
/// exactly those columns and that each is NOT NULL.
pub fn use_key(
    client: &mut postgres::Client,
    side: Side,
    shape: &mut TableShape,
    key: &[String],
) -> Result<(), CatalogError> {
    let refused = || CatalogError::KeyNotUnique {
        side,
        table: shape.table.clone(),
        key: key.join(", "),
    };
    if key
        .iter()
        .any(|k| !shape.column(k).is_some_and(|c| c.not_null))
    {
        return Err(refused());
    }
    let doing = format!("looking for a unique index on {}", shape.table);
    let found: bool = client
        .query_typed_one(
            "SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = $1::text::regclass AND i.indisunique \
               AND i.indpred IS NULL AND i.indexprs IS NULL \
               AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a \
                    WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::int2[])) \
                   = (SELECT array_agg(k ORDER BY k) FROM unnest($2::text[]) k))",
            &[(&shape.table.sql(), Type::TEXT), (&key, Type::TEXT_ARRAY)],
        )
        .on(side, &doing)?
        .get(0);
    if !found {
        return Err(refused());
    }
    shape.primary_key = key.to_vec();
    Ok(())
}

/// Names of the columns whose type has no `=` operator (json, xml, point…): the upsert
/// compares those through their text form. One prepared probe for every type at once (one
/// round trip); only when it fails, one per type.
pub fn columns_without_equality(client: &mut postgres::Client, shape: &TableShape) -> Vec<String> {
    let mut probe = |types: &[&str]| {
        let tests: Vec<String> = types
            .iter()
            .map(|t| format!("NULL::{t} IS DISTINCT FROM NULL::{t}"))
            .collect();
        client
            .prepare(&format!("SELECT {}", tests.join(", ")))
            .is_ok()
    };
    let mut types: Vec<&str> = shape.columns.iter().map(|c| c.sql_type.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    if types.is_empty() || probe(&types) {
        return Vec::new();
    }
    let lacking: Vec<&str> = types.into_iter().filter(|t| !probe(&[t])).collect();
    shape
        .columns
        .iter()
        .filter(|c| lacking.contains(&c.sql_type.as_str()))
        .map(|c| c.name.clone())
        .collect()
}
