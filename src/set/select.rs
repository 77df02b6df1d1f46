//! Table patterns: `name`, `schema.name`, with `*` (any run of characters) and `?` (one
//! character) in either part; unquoted parts fold to lower case as PostgreSQL's names do, and
//! a pattern without a schema means `public`. Pure; unit-tested.

use crate::db::ident::QualifiedName;

/// A table name or a pattern of names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// As given (for messages).
    pub text: String,
    /// Folded and split.
    pub name: QualifiedName,
    /// `*` or `?` in the name: matched against the catalog rather than named.
    pub wild: bool,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let name = QualifiedName::parse(text)?;
        let wild = [&name.schema, &name.name]
            .iter()
            .any(|p| p.contains(['*', '?']));
        Ok(Pattern {
            text: text.to_string(),
            name,
            wild,
        })
    }

    /// Whether `table` is this name or matches this pattern.
    pub fn matches(&self, table: &QualifiedName) -> bool {
        glob(&self.name.schema, &table.schema) && glob(&self.name.name, &table.name)
    }
}

/// `*` and `?` matching of a whole string.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// The tables of `catalog` the selection picks: those a pattern matches, minus those an
/// exclusion matches, plus every plain name given (a missing one is then reported by its own
/// job), in the catalog's order, each once.
pub fn select(
    catalog: &[QualifiedName],
    include: &[Pattern],
    exclude: &[Pattern],
) -> Vec<QualifiedName> {
    let excluded = |t: &QualifiedName| exclude.iter().any(|p| p.matches(t));
    let mut chosen: Vec<QualifiedName> = catalog
        .iter()
        .filter(|t| include.iter().any(|p| p.matches(t)) && !excluded(t))
        .cloned()
        .collect();
    for p in include.iter().filter(|p| !p.wild) {
        if !chosen.contains(&p.name) && !excluded(&p.name) {
            chosen.push(p.name.clone());
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> QualifiedName {
        QualifiedName::parse(s).unwrap()
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob("order_*", "order_items"));
        assert!(glob("*", ""));
        assert!(glob("o?der", "order"));
        assert!(glob("*_items", "order_items"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("order_*", "orders"));
        assert!(!glob("o?der", "oder"));
        assert!(!glob("a*b", "ab_c"));
    }

    #[test]
    fn patterns_fold_and_default_to_public() {
        let p = Pattern::parse("Sales.Order_*").unwrap();
        assert!(p.wild);
        assert!(p.matches(&q("sales.order_lines")));
        assert!(!p.matches(&q("public.order_lines")));
        let plain = Pattern::parse("\"MyTable\"").unwrap();
        assert!(!plain.wild);
        assert!(plain.matches(&q("public.\"MyTable\"")));
        assert!(!plain.matches(&q("public.mytable")));
    }

    #[test]
    fn selection_applies_exclusions_and_keeps_plain_names_once() {
        let catalog = [q("a"), q("b"), q("c"), q("other.d")];
        let include = [
            Pattern::parse("public.*").unwrap(),
            Pattern::parse("a").unwrap(),
            Pattern::parse("missing").unwrap(),
        ];
        let exclude = [Pattern::parse("b").unwrap()];
        assert_eq!(
            select(&catalog, &include, &exclude),
            vec![q("a"), q("c"), q("missing")]
        );
    }
}
