//! Source vs destination shape check: an existing destination table must have the same
//! columns (names and exact types; a column generated in the destination must be generated
//! the same way in the source) and the same primary key, or pgsync refuses before it changes
//! anything.

use super::{CatalogError, TableShape};

/// Returns the first difference between the two shapes as a `ShapeMismatch`.
pub fn same_shape(source: &TableShape, dest: &TableShape) -> Result<(), CatalogError> {
    let mismatch = |detail: String| {
        Err(CatalogError::ShapeMismatch {
            table: dest.table.clone(),
            detail,
        })
    };
    for col in &source.columns {
        match dest.column(&col.name) {
            None => {
                return mismatch(format!(
                    "column {:?} ({}) is missing; add it or drop the table",
                    col.name, col.sql_type
                ))
            }
            Some(d) if d.sql_type != col.sql_type => {
                return mismatch(format!(
                    "column {:?} is {} but the source has {}; alter or drop the destination table",
                    col.name, d.sql_type, col.sql_type
                ))
            }
            Some(d) if d.generated && !col.generated => {
                return mismatch(format!(
                    "column {:?} is generated in the destination but not in the source: pgsync would have to write it",
                    col.name
                ))
            }
            Some(d) if d.generated && d.generation != col.generation => {
                return mismatch(format!(
                    "column {:?} is generated as ({}) but the source has ({}); the copy would differ",
                    col.name,
                    d.generation.as_deref().unwrap_or("?"),
                    col.generation.as_deref().unwrap_or("?")
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = dest
        .columns
        .iter()
        .find(|d| source.column(&d.name).is_none())
    {
        return mismatch(format!(
            "column {:?} ({}) is not in the source; drop it or the table",
            extra.name, extra.sql_type
        ));
    }
    // A destination pgsync created for a load without key gets its key when the load ends.
    if dest.primary_key != source.primary_key && !(dest.key_deferred && dest.primary_key.is_empty())
    {
        return mismatch(format!(
            "primary key is ({}) but the source's is ({}); it must be the same for idempotent upserts",
            dest.primary_key.join(", "),
            source.primary_key.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Column;
    use crate::db::ident::QualifiedName;

    fn shape(cols: &[(&str, &str)], pk: &[&str]) -> TableShape {
        TableShape {
            table: QualifiedName::parse("t").unwrap(),
            columns: cols
                .iter()
                .map(|(n, t)| Column {
                    name: n.to_string(),
                    sql_type: t.to_string(),
                    not_null: false,
                    ..Default::default()
                })
                .collect(),
            primary_key: pk.iter().map(|s| s.to_string()).collect(),
            has_user_triggers: false,
            estimated_rows: 0.0,
            cursor_indexed: false,
            key_deferred: false,
            partitioned: false,
        }
    }

    #[test]
    fn column_order_does_not_matter_but_types_and_keys_do() {
        let src = shape(&[("id", "uuid"), ("amount", "numeric(14,2)")], &["id"]);
        assert!(same_shape(
            &src,
            &shape(&[("amount", "numeric(14,2)"), ("id", "uuid")], &["id"])
        )
        .is_ok());
        let err = same_shape(
            &src,
            &shape(&[("id", "uuid"), ("amount", "numeric(12,2)")], &["id"]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("\"amount\" is numeric(12,2) but the source has numeric(14,2)"),
            "{err}"
        );
        assert!(same_shape(&src, &shape(&[("id", "uuid")], &["id"])).is_err());
        assert!(same_shape(
            &src,
            &shape(
                &[("id", "uuid"), ("amount", "numeric(14,2)"), ("x", "int")],
                &["id"]
            )
        )
        .is_err());
        assert!(same_shape(
            &src,
            &shape(&[("id", "uuid"), ("amount", "numeric(14,2)")], &[])
        )
        .is_err());
    }
}
