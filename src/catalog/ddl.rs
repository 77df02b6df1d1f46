//! CREATE TABLE for a missing destination, built from the source's shape: same columns,
//! exact types, NOT NULL and primary key. Runs inside the caller's transaction, so a
//! failure leaves nothing behind.

use super::TableShape;
use crate::db::ident::quote;

/// The statements that create the destination table (and its schema when `create_schema`;
/// only asked when the schema is missing, since CREATE SCHEMA needs a database privilege).
pub fn create_table_sql(shape: &TableShape, create_schema: bool) -> String {
    let cols: Vec<String> = shape
        .columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                quote(&c.name),
                c.sql_type,
                if c.not_null { " NOT NULL" } else { "" }
            )
        })
        .collect();
    let schema = if create_schema {
        format!("CREATE SCHEMA {}; ", quote(&shape.table.schema))
    } else {
        String::new()
    };
    format!(
        "{schema}CREATE TABLE {} ({}, PRIMARY KEY ({}))",
        shape.table.sql(),
        cols.join(", "),
        shape.key_list(None)
    )
}
