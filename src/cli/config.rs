//! The `--config` file (TOML) as extra command-line arguments: every key is an option of
//! the subcommand, and a key the command line or the environment already set is skipped,
//! so the precedence is flag > environment > file > default. Pure; unit-tested.

use std::ffi::OsString;

/// Every option of subcommand `sub` (and the global ones), given or not: an option without
/// a default that was not given has no id in the parsed matches.
pub fn option_ids(command: &clap::Command, sub: &str) -> Vec<String> {
    command
        .find_subcommand(sub)
        .into_iter()
        .flat_map(|c| c.get_arguments())
        .chain(command.get_arguments())
        .map(|a| a.get_id().to_string())
        .collect()
}

/// The arguments a config file adds for subcommand `sub`. `known(id)`: the subcommand has
/// that option; `given(id)`: the command line or environment set it already.
pub fn file_args(
    text: &str,
    sub: &str,
    known: impl Fn(&str) -> bool,
    given: impl Fn(&str) -> bool,
) -> Result<Vec<OsString>, String> {
    let table: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
    let mut extra: Vec<OsString> = Vec::new();
    for (key, value) in &table {
        if key == "table" && value.is_array() {
            continue; // [[table]] sections: table_config.rs
        }
        let id = key.replace('-', "_");
        if id == "source" || id == "dest" {
            continue; // SOURCE and DEST when the command line leaves them out: `source_dest`
        }
        if !known(&id) || ["table", "tables", "exclude", "config"].contains(&id.as_str()) {
            return Err(format!("{key:?} is not an option of `pgsync {sub}`"));
        }
        if given(&id) {
            continue;
        }
        match value {
            toml::Value::Boolean(true) => extra.push(format!("--{key}").into()),
            toml::Value::Boolean(false) => {}
            toml::Value::String(v) => extra.extend([format!("--{key}").into(), v.into()]),
            toml::Value::Integer(v) => {
                extra.extend([format!("--{key}").into(), v.to_string().into()])
            }
            other => return Err(format!("{key} has an unsupported value {other}")),
        }
    }
    Ok(extra)
}

/// The `--config` file named on the command line (`--config F`, `--config=F`) or by
/// `PGSYNC_CONFIG`, found before clap parses (SOURCE and DEST may come from it).
pub fn config_path(
    args: &[OsString],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Option<std::path::PathBuf> {
    let mut args = args.iter().filter_map(|a| a.to_str());
    while let Some(a) = args.next() {
        if a == "--config" {
            return args.next().map(Into::into);
        }
        if let Some(path) = a.strip_prefix("--config=") {
            return Some(path.into());
        }
    }
    env("PGSYNC_CONFIG").map(Into::into)
}

/// The config file's `source` and `dest` keys (both or neither), for a command line that
/// leaves SOURCE and DEST out: a password then lives in a file, not in `ps`.
pub fn source_dest(text: &str) -> Result<Option<(String, String)>, String> {
    let table: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
    let text_key = |key: &str| match table.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{key} must be a string, not {other}")),
    };
    match (text_key("source")?, text_key("dest")?) {
        (Some(s), Some(d)) => Ok(Some((s, d))),
        (None, None) => Ok(None),
        _ => Err("`source` and `dest` go together".into()),
    }
}

/// `args` with `extra` inserted right after the subcommand's name (the config file's options,
/// or SOURCE and DEST from the environment).
pub fn insert_after_subcommand(
    args: &[OsString],
    sub: &str,
    extra: Vec<OsString>,
) -> Vec<OsString> {
    let at = args
        .iter()
        .position(|a| a.to_str() == Some(sub))
        .map_or(args.len(), |i| i + 1);
    let mut merged = args[..at].to_vec();
    merged.extend(extra);
    merged.extend_from_slice(&args[at..]);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    #[test]
    fn keys_become_options_unless_already_given() {
        let text = "window-size = 500\nverbose = true\nquiet = false\nlog-format = \"json\"\n";
        let extra = file_args(text, "single", |_| true, |id| id == "log_format").unwrap();
        assert_eq!(strings(&extra), ["--verbose", "--window-size", "500"]);
    }

    #[test]
    fn unknown_keys_positionals_and_tables_are_refused() {
        let known = |id: &str| id != "nope";
        assert!(file_args("nope = 1", "single", known, |_| false)
            .unwrap_err()
            .contains("not an option of `pgsync single`"));
        assert!(file_args("table = \"t\"", "single", known, |_| false).is_err());
        // SOURCE and DEST are not options: `source_dest` reads them.
        assert!(
            file_args("source = \"a\"\ndest = \"b\"", "single", known, |_| false)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            source_dest("source = \"a\"\ndest = \"b\"").unwrap(),
            Some(("a".into(), "b".into()))
        );
        assert!(source_dest("source = \"a\"")
            .unwrap_err()
            .contains("go together"));
        assert_eq!(source_dest("jobs = 2").unwrap(), None);
        assert!(file_args("jobs = [1]", "single", known, |_| false)
            .unwrap_err()
            .contains("unsupported value"));
        assert!(file_args("jobs = ", "single", known, |_| false).is_err());
    }

    #[test]
    fn extra_arguments_go_right_after_the_subcommand() {
        let args: Vec<OsString> = ["pgsync", "single", "a", "b", "t"]
            .map(OsString::from)
            .to_vec();
        let merged = insert_after_subcommand(&args, "single", vec!["--jobs".into(), "2".into()]);
        assert_eq!(
            strings(&merged),
            ["pgsync", "single", "--jobs", "2", "a", "b", "t"]
        );
    }
}
