//! Which positionals after SOURCE DEST are tables and which is the seed's USERNAME.

use super::JobArgs;

impl JobArgs {
    /// The tables (names or patterns) and the positional user name: the seed's `TABLE
    /// USERNAME` when exactly two follow SOURCE DEST, the second a bare name (no schema, no
    /// pattern, no quotes) and no -U; otherwise every positional is a table.
    pub fn selection(&self) -> (Vec<String>, Option<String>) {
        let bare = |s: &str| !s.contains(['.', '*', '?', '"']);
        match self.tables.as_slice() {
            [table, user] if self.username.is_none() && bare(user) => {
                (vec![table.clone()], Some(user.clone()))
            }
            tables => (tables.to_vec(), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{parse_from, Command};

    fn selection(args: &[&str]) -> (Vec<String>, Option<String>) {
        let args = ["pgsync", "single", "src", "dst"].iter().chain(args);
        match parse_from(args.map(Into::into).collect()).unwrap().command {
            Command::Single(a) => a.selection(),
            other => panic!("{other:?}"),
        }
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_bare_name_after_one_table_is_the_user_as_in_the_seed() {
        assert_eq!(
            selection(&["t", "alice"]),
            (strings(&["t"]), Some("alice".into()))
        );
        assert_eq!(selection(&["t"]), (strings(&["t"]), None));
    }

    #[test]
    fn several_tables_patterns_or_minus_u_make_every_positional_a_table() {
        assert_eq!(
            selection(&["a", "public.b"]),
            (strings(&["a", "public.b"]), None)
        );
        assert_eq!(selection(&["a", "b*"]), (strings(&["a", "b*"]), None));
        assert_eq!(
            selection(&["a", "b", "c"]),
            (strings(&["a", "b", "c"]), None)
        );
        assert_eq!(
            selection(&["-U", "u", "a", "b"]),
            (strings(&["a", "b"]), None)
        );
    }
}
