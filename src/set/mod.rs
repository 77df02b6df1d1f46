//! A job over several tables: which tables the arguments select (`select.rs`: names and
//! patterns, `--exclude`), and the set's membership as the source catalog has it when a pass
//! is planned (`members.rs`: largest first, foreign keys between members refused, tables of
//! earlier runs that the source no longer has). Each member is a job of its own (its own
//! identity, state records and receipts) in one state store; `commands/set_run.rs` runs them.

pub mod members;
pub mod select;

use crate::cli::JobArgs;
use crate::error::Error;
use crate::job::JobSpec;
use select::Pattern;

/// The tables a command names.
#[derive(Debug, Clone)]
pub struct TableSet {
    /// Settings every table shares (its table is the first name given).
    pub base: JobSpec,
    pub include: Vec<Pattern>,
    pub exclude: Vec<Pattern>,
}

impl TableSet {
    /// The set the arguments name, or `None` for one plain table (the single-table job).
    pub fn from_args(base: &JobSpec, args: &JobArgs) -> Result<Option<TableSet>, Error> {
        let (tables, _) = args.selection();
        let parse = |list: &[String]| -> Result<Vec<Pattern>, Error> {
            list.iter()
                .map(|t| Pattern::parse(t).map_err(Error::Usage))
                .collect()
        };
        let include = parse(&tables)?;
        let exclude = parse(&args.exclude)?;
        if include.len() == 1 && !include[0].wild {
            if !exclude.is_empty() {
                return Err(Error::Usage(
                    "--exclude goes with several tables or a pattern, not one table".into(),
                ));
            }
            return Ok(None);
        }
        Ok(Some(TableSet {
            base: base.clone(),
            include,
            exclude,
        }))
    }

    /// The selection as given, for messages.
    pub fn describe(&self) -> String {
        let mut text: Vec<&str> = self.include.iter().map(|p| p.text.as_str()).collect();
        let excluded: Vec<&str> = self.exclude.iter().map(|p| p.text.as_str()).collect();
        if !excluded.is_empty() {
            text.push("except");
            text.extend(excluded);
        }
        text.join(" ")
    }
}
