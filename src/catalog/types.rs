//! User types a table uses (enums, domains, composites, and arrays of them), for a
//! destination pgsync creates: a missing enum, domain or composite is created with the
//! table, in its transaction (enums first, composites last); any other missing type (a
//! range) refuses the job up front, naming the type.

use super::{CatalogError, TableShape};
use crate::db::ident::literal;
use crate::db::{PgResultExt, Side};
use postgres::types::Type;

/// A user type a column of the source table uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserType {
    /// Its name as `format_type` prints it (quoted, schema-qualified when off the path).
    pub name: String,
    /// `CREATE TYPE … AS ENUM (…)`, `CREATE DOMAIN …` or `CREATE TYPE … AS (…)`; `None`
    /// for other kinds (pgsync does not create those).
    pub create: Option<String>,
}

/// The user types the source table's columns use, each once.
pub fn used_by(
    client: &mut postgres::Client,
    shape: &TableShape,
) -> Result<Vec<UserType>, CatalogError> {
    let rows = client
        .query_typed(
            "SELECT DISTINCT format_type(t.oid, NULL), t.typtype::text,
               CASE t.typtype
                 WHEN 'e' THEN (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid)
               END,
               CASE t.typtype
                 WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod) || coalesce(' ' || (
                   SELECT string_agg(pg_catalog.pg_get_constraintdef(c.oid), ' ') FROM pg_catalog.pg_constraint c WHERE c.contypid = t.oid), '')
                 WHEN 'c' THEN (SELECT string_agg(quote_ident(ca.attname) || ' ' || format_type(ca.atttypid, ca.atttypmod), ', ' ORDER BY ca.attnum)
                   FROM pg_catalog.pg_attribute ca WHERE ca.attrelid = t.typrelid AND ca.attnum > 0 AND NOT ca.attisdropped)
               END
             FROM pg_catalog.pg_attribute a
             JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
             JOIN pg_catalog.pg_type t ON t.oid = CASE WHEN at.typcategory = 'A' THEN at.typelem ELSE at.oid END
             JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND t.typtype IN ('e', 'd', 'c', 'r')
             ORDER BY 2 DESC, 1",
            &[(&shape.table.sql(), Type::TEXT)],
        )
        .on(Side::Source, "reading the table's user types")?;
    Ok(rows
        .iter()
        .map(|r| {
            let name: String = r.get(0);
            let kind: String = r.get(1);
            let create = match kind.as_str() {
                "e" => {
                    let labels: Vec<String> =
                        r.get::<_, Option<Vec<String>>>(2).unwrap_or_default();
                    let labels: Vec<String> = labels.iter().map(|l| literal(l)).collect();
                    Some(format!(
                        "CREATE TYPE {name} AS ENUM ({})",
                        labels.join(", ")
                    ))
                }
                "d" => r
                    .get::<_, Option<String>>(3)
                    .map(|def| format!("CREATE DOMAIN {name} AS {def}")),
                "c" => r
                    .get::<_, Option<String>>(3)
                    .map(|attrs| format!("CREATE TYPE {name} AS ({attrs})")),
                _ => None,
            };
            UserType { name, create }
        })
        .collect())
}

/// The statements that create the types missing on the destination, to run with the
/// CREATE TABLE; an error naming a missing type pgsync cannot create.
pub fn missing_on_destination(
    client: &mut postgres::Client,
    types: &[UserType],
) -> Result<Vec<String>, CatalogError> {
    let mut create = Vec::new();
    for t in types {
        let exists: bool = client
            .query_typed_one(
                "SELECT pg_catalog.to_regtype($1) IS NOT NULL",
                &[(&t.name, Type::TEXT)],
            )
            .on(Side::Destination, "looking for the table's user types")?
            .get(0);
        match (exists, &t.create) {
            (true, _) => {}
            (false, Some(sql)) => create.push(sql.clone()),
            (false, None) => {
                return Err(CatalogError::TypeMissing {
                    type_name: t.name.clone(),
                })
            }
        }
    }
    Ok(create)
}
