//! Identifiers: parsing user-given table and column names with PostgreSQL's rules
//! (unquoted names fold to lower case, `"Quoted"` names keep their case) and turning them
//! into SQL. This is the only module that turns names and values into SQL text; it must
//! never build SQL by pasting unescaped input.

use postgres_protocol::escape::{escape_identifier, escape_literal};
use std::fmt;

/// A schema-qualified table name, as PostgreSQL stores it (already case-folded).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QualifiedName {
    /// Schema name, `public` when the user gave none.
    pub schema: String,
    /// Table name.
    pub name: String,
}

impl QualifiedName {
    /// Parses `name`, `schema.name`, `"Mixed Case"."Name"` with PostgreSQL's folding rules.
    pub fn parse(input: &str) -> Result<Self, String> {
        let parts = split_identifiers(input)?;
        match parts.as_slice() {
            [name] => Ok(Self {
                schema: "public".into(),
                name: name.clone(),
            }),
            [schema, name] => Ok(Self {
                schema: schema.clone(),
                name: name.clone(),
            }),
            _ => Err(format!(
                "table name {input:?} has {} parts; use `name` or `schema.name`",
                parts.len()
            )),
        }
    }

    /// The quoted SQL form, e.g. `"public"."transactions"`.
    pub fn sql(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(&self.name))
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Parses one column name with PostgreSQL's folding rules.
pub fn parse_column(input: &str) -> Result<String, String> {
    let parts = split_identifiers(input)?;
    match parts.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("column name {input:?} must be a single identifier")),
    }
}

/// Quotes an identifier for SQL.
pub fn quote(ident: &str) -> String {
    escape_identifier(ident)
}

/// Quotes a value as a SQL string literal.
pub fn literal(value: &str) -> String {
    escape_literal(value)
}

/// A literal cast to a type, e.g. `'42'::bigint`. The type text comes from `format_type`.
pub fn typed_literal(value: &str, sql_type: &str) -> String {
    format!("{}::{}", literal(value), sql_type)
}

/// Splits `a.b` into identifiers, honouring double quotes (`""` is an escaped quote).
fn split_identifiers(input: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut chars = input.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(format!("unterminated quote in {input:?}")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                if c == '"' || c.is_whitespace() {
                    return Err(format!(
                        "unexpected {c:?} in {input:?}; quote the whole name"
                    ));
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
        }
        if part.is_empty() {
            return Err(format!("empty identifier in {input:?}"));
        }
        parts.push(part);
        match chars.next() {
            None => return Ok(parts),
            Some('.') => continue,
            Some(c) => return Err(format!("unexpected {c:?} after a quoted name in {input:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquoted_names_fold_to_lower_case_and_default_to_public() {
        let q = QualifiedName::parse("Transactions").unwrap();
        assert_eq!(
            (q.schema.as_str(), q.name.as_str()),
            ("public", "transactions")
        );
    }

    #[test]
    fn quoted_names_keep_case_dots_and_escaped_quotes() {
        let q = QualifiedName::parse(r#""My.Schema"."Tab""le""#).unwrap();
        assert_eq!(q.schema, "My.Schema");
        assert_eq!(q.name, "Tab\"le");
        assert_eq!(q.sql(), r#""My.Schema"."Tab""le""#);
    }

    #[test]
    fn malformed_names_are_rejected() {
        for bad in ["", "a.", ".a", "a.b.c", "\"open", "a b", "\"x\"y"] {
            assert!(
                QualifiedName::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal("it's"), "'it''s'");
        // libpq's escaping prefixes a space before E'…' literals; harmless in SQL.
        assert_eq!(typed_literal(r"a\b", "text"), r" E'a\\b'::text");
    }
}
