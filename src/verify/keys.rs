//! Keys given as text values, in SQL: typed tuples, and `IN` lists of them.

use crate::catalog::join_quoted;
use crate::db::ident::{quote, typed_literal, QualifiedName};
use crate::db::{PgResultExt, Side};
use crate::error::Error;
use crate::keyspace::KeySpace;
use std::collections::HashSet;

/// `('v1'::t1, 'v2'::t2), …` for keys given as text values.
pub fn typed_tuples(ks: &KeySpace, keys: &[Vec<String>]) -> String {
    keys.iter()
        .map(|k| {
            let values = ks
                .key
                .iter()
                .zip(k)
                .map(|((_, t), v)| typed_literal(v, t))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({values})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key columns as text, one expression each: `a.k1::text, a.k2::text`.
pub fn text_values(ks: &KeySpace, alias: &str) -> String {
    ks.key
        .iter()
        .map(|(n, _)| format!("{alias}.{}::text", quote(n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which of `keys` the table has on this side now, as their key values (1,000 keys a
/// statement).
pub fn present(
    client: &mut postgres::Client,
    side: Side,
    doing: &str,
    table: &QualifiedName,
    ks: &KeySpace,
    keys: &[Vec<String>],
) -> Result<HashSet<Vec<String>>, Error> {
    let values = text_values(ks, "a");
    let mut found = HashSet::new();
    for chunk in keys.chunks(1000) {
        let sql = format!(
            "SELECT {values} FROM {} a WHERE {}",
            table.sql(),
            key_in_list(ks, "a", chunk)
        );
        let rows = client.query_typed(&sql, &[]).on(side, doing)?;
        found.extend(
            rows.iter()
                .map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect()),
        );
    }
    Ok(found)
}

/// `(a.k1, a.k2) IN ((v1, v2), …)` for a list of keys given as text values.
pub fn key_in_list(ks: &KeySpace, alias: &str, keys: &[Vec<String>]) -> String {
    let cols = join_quoted(ks.key.iter().map(|(n, _)| n.as_str()), Some(alias));
    format!("({cols}) IN ({})", typed_tuples(ks, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lists_are_typed_literals() {
        let ks = KeySpace {
            cursor: ("updated".into(), "bigint".into()),
            key: vec![("id".into(), "integer".into())],
            clock: None,
        };
        assert_eq!(
            key_in_list(&ks, "a", &[vec!["1".into()], vec!["2".into()]]),
            r#"(a."id") IN (('1'::integer), ('2'::integer))"#
        );
    }
}
