//! CREATE TABLE for a missing destination, built from the source's shape: same columns,
//! exact types, column collations other than the type's default, NOT NULL, generation
//! expressions, identity, defaults (with the sequences they draw from) and primary key.
//! Runs inside the caller's transaction, so a failure leaves nothing behind.

use super::TableShape;
use crate::db::ident::{literal, quote};

/// The comment that marks a destination created without its primary key, to be built when
/// the first load completes. Any run that finds it (after a crash) builds the key.
pub const KEY_LATER: &str = "pgsync: primary key deferred until the first load completes";

/// The statements that create the destination table (and its schema when `create_schema`;
/// only asked when the schema is missing, since CREATE SCHEMA needs a database privilege),
/// after the schema the `types` it needs (`CREATE TYPE …` statements). Without `with_key`
/// the table gets the `KEY_LATER` comment instead of its primary key.
pub fn create_table_sql(
    shape: &TableShape,
    create_schema: bool,
    with_key: bool,
    types: &[String],
) -> String {
    let cols: Vec<String> = shape
        .columns
        .iter()
        .map(|c| {
            let generated = match (&c.generation, c.computed, c.identity, &c.default) {
                (Some(expr), true, _, _) => format!(" GENERATED ALWAYS AS ({expr}) STORED"),
                (_, _, Some(identity), _) => format!(" {}", identity.clause()),
                (_, _, None, Some(default)) => format!(" DEFAULT {default}"),
                _ => String::new(),
            };
            let collation = c
                .collation
                .as_ref()
                .map_or(String::new(), |co| format!(" COLLATE {co}"));
            format!(
                "{} {}{collation}{}{generated}",
                quote(&c.name),
                c.sql_type,
                if c.not_null { " NOT NULL" } else { "" }
            )
        })
        .collect();
    // Tables of one set are created at once by different connections: they take turns
    // (the lock lasts the implicit transaction), a schema or an enum that another one
    // created meanwhile is taken as it is, and a collision all the same runs the statements
    // once more (`db::create_if_missing`).
    let mut prelude = "SELECT pg_advisory_xact_lock(hashtext('pgsync ddl')); ".to_string();
    if create_schema {
        prelude += &format!(
            "CREATE SCHEMA IF NOT EXISTS {}; ",
            quote(&shape.table.schema)
        );
    }
    for t in types {
        prelude += &format!(
            "DO $pgsync$ BEGIN {t}; EXCEPTION WHEN duplicate_object THEN NULL; END $pgsync$; "
        );
    }
    // A default that draws from a sequence (a `serial` column): the sequence first, owned by
    // its column afterwards (dropped with the table, as on the source).
    let mut owned = String::new();
    for c in shape.columns.iter().filter(|c| c.identity.is_none()) {
        if let Some(seq) = &c.default_sequence {
            prelude += &format!("CREATE SEQUENCE IF NOT EXISTS {seq}; ");
            owned += &format!(
                "; ALTER SEQUENCE {seq} OWNED BY {}.{}",
                shape.table.sql(),
                quote(&c.name)
            );
        }
    }
    if with_key {
        format!(
            "{prelude}CREATE TABLE {} ({}, PRIMARY KEY ({})){owned}",
            shape.table.sql(),
            cols.join(", "),
            shape.key_list(None)
        )
    } else {
        format!(
            "{prelude}CREATE TABLE {t} ({}){owned}; COMMENT ON TABLE {t} IS {}",
            cols.join(", "),
            literal(KEY_LATER),
            t = shape.table.sql()
        )
    }
}

/// Builds the deferred primary key and removes the marker (one transaction, the caller's).
pub fn add_key_sql(shape: &TableShape) -> String {
    format!(
        "ALTER TABLE {t} ADD PRIMARY KEY ({}); COMMENT ON TABLE {t} IS NULL",
        shape.key_list(None),
        t = shape.table.sql()
    )
}

/// Removes the older copies of rows appended twice during a load without key (a row whose
/// cursor moved forward mid-load is read again at its new position; in a load by blocks, a
/// row an update moved to a later block): the copy with the larger cursor — or the NULL one,
/// read last — is the newer and stays; of copies with equal cursors, the one appended last.
pub fn dedupe_sql(shape: &TableShape, cursor: &str) -> String {
    let on = shape
        .primary_key
        .iter()
        .map(|k| format!("a.{q} = b.{q}", q = quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let c = quote(cursor);
    format!(
        "DELETE FROM {t} a USING {t} b WHERE {on} AND (a.{c} < b.{c} OR (a.{c} IS NOT NULL AND b.{c} IS NULL) \
         OR (a.{c} IS NOT DISTINCT FROM b.{c} AND a.ctid < b.ctid))",
        t = shape.table.sql()
    )
}
