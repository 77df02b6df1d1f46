//! Step 3 of a window: move the staged rows into the target with one
//! `INSERT … SELECT … ORDER BY key ON CONFLICT (key) DO UPDATE … WHERE … IS DISTINCT FROM …`.
//! A row equal to the destination's changes nothing and fires no UPDATE trigger, so applying
//! a window twice is a no-op. When the target has triggers, rows equal to the destination
//! are filtered out before the INSERT too, so BEFORE INSERT triggers do not see them.

use super::staging::STAGE;
use crate::catalog::TableShape;
use crate::db::ident::quote;

/// The upsert statement for a target. `text_compared` names columns whose type has no `=`
/// (json, xml, point…), compared through their text form.
pub fn upsert_sql(shape: &TableShape, text_compared: &[String]) -> String {
    let cols = shape.column_list(None);
    let non_key: Vec<&str> = shape
        .copied()
        .map(|c| c.name.as_str())
        .filter(|n| !shape.primary_key.iter().any(|k| k == n))
        .collect();
    let compared = |alias: &str| {
        shape
            .copied()
            .map(|c| {
                let e = format!("{alias}.{}", quote(&c.name));
                if text_compared.contains(&c.name) {
                    format!("{e}::text")
                } else {
                    e
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let filter = if shape.has_user_triggers {
        let key_match = shape
            .primary_key
            .iter()
            .map(|k| format!("d.{q} = s.{q}", q = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        format!(
            " WHERE NOT EXISTS (SELECT 1 FROM {} d WHERE {key_match} AND ROW({}) IS NOT DISTINCT FROM ROW({}))",
            shape.table.sql(),
            compared("d"),
            compared("s")
        )
    } else {
        String::new()
    };
    let action = if non_key.is_empty() {
        "DO NOTHING".to_string()
    } else {
        let set = non_key
            .iter()
            .map(|n| format!("{q} = EXCLUDED.{q}", q = quote(n)))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "DO UPDATE SET {set} WHERE ROW({}) IS DISTINCT FROM ROW({})",
            compared("t"),
            compared("EXCLUDED")
        )
    };
    // OVERRIDING SYSTEM VALUE: a destination whose key is `GENERATED ALWAYS AS IDENTITY`
    // takes the source's values (COPY does anyway); without identity columns it changes
    // nothing.
    format!(
        "INSERT INTO {} AS t ({cols}) OVERRIDING SYSTEM VALUE SELECT {} FROM {STAGE} s{filter} ORDER BY {} ON CONFLICT ({}) {action}",
        shape.table.sql(),
        shape.column_list(Some("s")),
        shape.key_list(Some("s")),
        shape.key_list(None)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Column;
    use crate::db::ident::QualifiedName;

    fn shape(triggers: bool, cols: &[&str]) -> TableShape {
        TableShape {
            table: QualifiedName::parse("t").unwrap(),
            columns: cols
                .iter()
                .map(|n| Column {
                    name: n.to_string(),
                    sql_type: "text".into(),
                    not_null: false,
                    ..Default::default()
                })
                .collect(),
            primary_key: vec!["id".into()],
            has_user_triggers: triggers,
            estimated_rows: 0.0,
            cursor_indexed: true,
            key_deferred: false,
            partitioned: false,
        }
    }

    #[test]
    fn updates_only_rows_that_differ_and_compares_json_as_text() {
        let sql = upsert_sql(&shape(false, &["id", "doc"]), &["doc".to_string()]);
        assert_eq!(
            sql,
            r#"INSERT INTO "public"."t" AS t ("id", "doc") OVERRIDING SYSTEM VALUE SELECT s."id", s."doc" FROM pgsync_stage s ORDER BY s."id" ON CONFLICT ("id") DO UPDATE SET "doc" = EXCLUDED."doc" WHERE ROW(t."id", t."doc"::text) IS DISTINCT FROM ROW(EXCLUDED."id", EXCLUDED."doc"::text)"#
        );
    }

    #[test]
    fn with_triggers_equal_rows_never_reach_the_insert() {
        let sql = upsert_sql(&shape(true, &["id", "v"]), &[]);
        assert!(sql.contains(r#"WHERE NOT EXISTS (SELECT 1 FROM "public"."t" d WHERE d."id" = s."id" AND ROW(d."id", d."v") IS NOT DISTINCT FROM ROW(s."id", s."v"))"#), "{sql}");
    }

    #[test]
    fn key_only_tables_do_nothing_on_conflict() {
        assert!(
            upsert_sql(&shape(false, &["id"]), &[]).ends_with("ON CONFLICT (\"id\") DO NOTHING")
        );
    }
}
