//! User types a table uses (enums, domains, ranges, composites, base types of extensions,
//! and arrays of them), for a destination pgsync creates: a missing enum, domain, range or
//! composite is created with the table, in its transaction (enums first, composites last);
//! a missing base type (an extension's) refuses the job up front, naming it.

use super::{CatalogError, TableShape};
use crate::db::ident::literal;
use crate::db::{PgResultExt, Side};
use postgres::types::Type;

/// A user type a column of the source table uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserType {
    /// Its name as `format_type` prints it (quoted, schema-qualified when off the path).
    pub name: String,
    /// `CREATE TYPE … AS ENUM (…)`, `CREATE DOMAIN …`, `CREATE TYPE … AS RANGE (…)` or
    /// `CREATE TYPE … AS (…)`; `None` for a base type (pgsync does not create those).
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
                 WHEN 'r' THEN (SELECT 'subtype = ' || format_type(r.rngsubtype, NULL) FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid)
               END
             FROM pg_catalog.pg_attribute a
             JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
             JOIN pg_catalog.pg_type t ON t.oid = CASE WHEN at.typcategory = 'A' THEN at.typelem ELSE at.oid END
             JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND t.typtype IN ('e', 'd', 'r', 'c', 'b')
             ORDER BY 1",
            &[(&shape.table.sql(), Type::TEXT)],
        )
        .on(Side::Source, "reading the table's user types")?;
    let mut types = rows
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
                "r" => r
                    .get::<_, Option<String>>(3)
                    .map(|subtype| format!("CREATE TYPE {name} AS RANGE ({subtype})")),
                _ => None,
            };
            (creation_order(&kind), UserType { name, create })
        })
        .collect::<Vec<_>>();
    // Created in an order where each can use the ones before: enums, domains (over an enum),
    // ranges (over either), composites (of any of them).
    types.sort_by_key(|(order, _)| *order);
    Ok(types.into_iter().map(|(_, t)| t).collect())
}

/// Where a type of this `typtype` comes in the creation order.
fn creation_order(kind: &str) -> u8 {
    match kind {
        "e" => 0,
        "d" => 1,
        "r" => 2,
        "c" => 3,
        _ => 4,
    }
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
