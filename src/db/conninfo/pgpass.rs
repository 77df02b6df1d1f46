//! The password file, as libpq reads it: `~/.pgpass` or `PGPASSFILE`, lines
//! `hostname:port:database:username:password`, `*` matching anything, `\` escaping `:` and
//! `\`, the first matching line winning. A file that group or others can read is ignored
//! with a warning (libpq's rule: it must be 0600 or stricter). A Unix-socket host matches
//! as `localhost`.

use std::path::Path;

/// What the lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// A matching line's password.
    Password(String),
    /// No file, or no matching line.
    Nothing,
    /// The file is readable by group or others: ignored, as libpq does.
    TooOpen,
}

/// Looks up the password for `host`, `port`, `dbname`, `user` in the file at `path`.
pub fn lookup(path: &Path, host: &str, port: &str, dbname: &str, user: &str) -> Found {
    let Ok(meta) = std::fs::metadata(path) else {
        return Found::Nothing;
    };
    if !meta.is_file() {
        return Found::Nothing;
    }
    if too_open(&meta) {
        return Found::TooOpen;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return Found::Nothing;
    };
    let host = if host.starts_with('/') || host.is_empty() {
        "localhost"
    } else {
        host
    };
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split(line);
        let [h, p, d, u, password] = fields.as_slice() else {
            continue;
        };
        let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        if matches(h, host) && matches(p, port) && matches(d, dbname) && matches(u, user) {
            return Found::Password(password.clone());
        }
    }
    Found::Nothing
}

#[cfg(unix)]
fn too_open(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o077 != 0
}

#[cfg(not(unix))]
fn too_open(_meta: &std::fs::Metadata) -> bool {
    false
}

/// The five fields of a line: `:` separates, `\` escapes the next character; a fifth field
/// takes the rest of the line.
fn split(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().unwrap().extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str, mode: u32) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        f
    }

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let f = file(
            "# comment\nother:5432:*:*:no\ndb1:5432:shop:reader:first\n*:*:*:reader:p\\:w\\\\d\n",
            0o600,
        );
        assert_eq!(
            lookup(f.path(), "db1", "5432", "shop", "reader"),
            Found::Password("first".into())
        );
        assert_eq!(
            lookup(f.path(), "db2", "6000", "x", "reader"),
            Found::Password("p:w\\d".into())
        );
        assert_eq!(
            lookup(f.path(), "db2", "6000", "x", "writer"),
            Found::Nothing
        );
    }

    #[test]
    fn a_socket_host_matches_as_localhost() {
        let f = file("localhost:5432:*:*:local\n", 0o600);
        assert_eq!(
            lookup(f.path(), "/run/postgresql", "5432", "d", "u"),
            Found::Password("local".into())
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_ignored() {
        let f = file("*:*:*:*:secret\n", 0o644);
        assert_eq!(lookup(f.path(), "h", "5432", "d", "u"), Found::TooOpen);
    }

    #[test]
    fn a_missing_file_is_nothing() {
        assert_eq!(
            lookup(Path::new("/nonexistent/.pgpass"), "h", "1", "d", "u"),
            Found::Nothing
        );
    }
}
