//! `[[table]]` sections of the `--config` file: settings of one table of a job over several
//! (`name`, then any of `cursor-column`, `cursor-clock`, `key`, `lookback`, `chunksize`/`window-size`,
//! `window-target`, `slice-rows`, `mode`); everything else is the job's. Pure; unit-tested.

use super::duration::parse_duration;
use super::{Command, JobArgs};
use std::time::Duration;

/// One `[[table]]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSettings {
    /// The table (`name` or `schema.name`), exactly as a TABLE argument names it.
    pub name: String,
    /// `--cursor-column` for this table.
    pub cursor_column: Option<String>,
    /// `--cursor-clock` for this table.
    pub cursor_clock: Option<crate::keyspace::clock::CursorClockArg>,
    /// Comma-separated key columns (`--key`).
    pub key: Option<String>,
    /// `--lookback` for this table.
    pub lookback: Option<Duration>,
    /// Rows per window (`chunksize` or `window-size`).
    pub window_rows: Option<u64>,
    /// `--window-target` for this table.
    pub window_target: Option<Duration>,
    /// `--slice-rows` for this table.
    pub slice_rows: Option<u64>,
    /// `--mode` for this table.
    pub mode: Option<super::SyncMode>,
}

/// The `[[table]]` sections of a config file (none when it has no `table` key).
pub fn parse(text: &str) -> Result<Vec<TableSettings>, String> {
    let doc: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
    let Some(tables) = doc.get("table") else {
        return Ok(Vec::new());
    };
    let tables = tables
        .as_array()
        .ok_or("`table` must be [[table]] sections (name = \"schema.table\", …)")?;
    tables.iter().map(section).collect()
}

fn section(value: &toml::Value) -> Result<TableSettings, String> {
    let t = value
        .as_table()
        .ok_or("a [[table]] entry must be a table")?;
    let text = |key: &str| -> Result<Option<String>, String> {
        match t.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("[[table]] {key} must be a string, not {other}")),
        }
    };
    let number = |key: &str| -> Result<Option<u64>, String> {
        match t.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) if *n > 0 => Ok(Some(*n as u64)),
            Some(other) => Err(format!(
                "[[table]] {key} must be a positive integer, not {other}"
            )),
        }
    };
    let duration = |key: &str| -> Result<Option<Duration>, String> {
        text(key)?.map(|s| parse_duration(&s)).transpose()
    };
    let known = [
        "name",
        "cursor-column",
        "cursor-clock",
        "key",
        "lookback",
        "chunksize",
        "window-size",
        "window-target",
        "slice-rows",
        "mode",
    ];
    if let Some(unknown) = t.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "[[table]] has no setting {unknown:?} (it takes {})",
            known.join(", ")
        ));
    }
    Ok(TableSettings {
        name: text("name")?.ok_or("every [[table]] needs a name")?,
        cursor_column: text("cursor-column")?,
        cursor_clock: text("cursor-clock")?
            .map(|c| {
                clap::ValueEnum::from_str(&c, false).map_err(|_| {
                    format!("[[table]] cursor-clock must be auto, none, epoch-s, epoch-ms or epoch-us, not {c:?}")
                })
            })
            .transpose()?,
        key: text("key")?,
        lookback: duration("lookback")?,
        window_rows: number("window-size")?.or(number("chunksize")?),
        window_target: duration("window-target")?,
        slice_rows: number("slice-rows")?,
        mode: text("mode")?
            .map(|m| {
                <super::SyncMode as clap::ValueEnum>::from_str(&m, false)
                    .map_err(|_| format!("[[table]] mode must be cursor, diff or auto, not {m:?}"))
            })
            .transpose()?,
    })
}

impl Command {
    /// The job arguments of a subcommand that has them.
    pub fn job_args_mut(&mut self) -> Option<&mut JobArgs> {
        match self {
            Command::Single(a) | Command::Continuous(a) | Command::Resume(a) | Command::Plan(a) => {
                Some(a)
            }
            Command::Status(s) => Some(&mut s.job),
            Command::Verify(v) => Some(&mut v.job),
            Command::Completions { .. } | Command::Man => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_give_per_table_settings() {
        let text = "jobs = 2\n[[table]]\nname = \"public.orders\"\ncursor-column = \"modified\"\ncursor-clock = \"epoch-ms\"\nlookback = \"30s\"\nchunksize = 500\n\n[[table]]\nname = \"tags\"\nkey = \"name\"\nmode = \"diff\"\n";
        let tables = parse(text).unwrap();
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].cursor_column.as_deref(), Some("modified"));
        assert_eq!(
            tables[0].cursor_clock,
            Some(crate::keyspace::clock::CursorClockArg::EpochMs)
        );
        assert_eq!(tables[1].cursor_clock, None);
        assert_eq!(tables[0].lookback, Some(Duration::from_secs(30)));
        assert_eq!(tables[0].window_rows, Some(500));
        assert_eq!(tables[1].key.as_deref(), Some("name"));
        assert_eq!(tables[1].mode, Some(crate::cli::SyncMode::Diff));
        assert!(parse("[[table]]\nname = \"a\"\nmode = \"fast\"\n")
            .unwrap_err()
            .contains("cursor, diff or auto"));
        assert_eq!(parse("jobs = 2").unwrap(), Vec::new());
    }

    #[test]
    fn unknown_settings_and_missing_names_are_errors() {
        assert!(parse("[[table]]\nname = \"a\"\njobs = 2\n")
            .unwrap_err()
            .contains("no setting \"jobs\""));
        assert!(parse("[[table]]\ncursor-column = \"u\"\n")
            .unwrap_err()
            .contains("needs a name"));
        assert!(parse("table = \"a\"").is_err());
        assert!(parse("[[table]]\nname = \"a\"\nchunksize = -1\n").is_err());
    }
}
