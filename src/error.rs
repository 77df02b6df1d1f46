//! The superset error: every layer's error converts into `Error`, which knows which side
//! failed and what the user can do. `main` prints it as one line and exits 2.

use crate::catalog::CatalogError;
use crate::db::conninfo::ConnInfoError;
use crate::db::{DbError, Side};
use crate::state::StateError;

/// Any failure of a pgsync command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Arguments that make no sense together.
    #[error("usage: {0}")]
    Usage(String),
    /// SOURCE/DEST could not be resolved.
    #[error(transparent)]
    ConnInfo(#[from] ConnInfoError),
    /// A database operation failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The tables cannot be synced as asked.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The local state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// `verify` failed: the same error, with advice for a verify instead of a sync.
    #[error(transparent)]
    WhileVerifying(Box<Error>),
    /// Some tables of a set failed (the others finished): each with its error.
    #[error("{} of {of} tables failed: {}", failed.len(), failed.iter().map(|(t, e)| format!("{t}: {e} ({})", e.hint())).collect::<Vec<_>>().join("; "))]
    TablesFailed {
        /// Each failed table with its error.
        failed: Vec<(String, Error)>,
        /// Tables in the set.
        of: usize,
    },
    /// A pgsync thread panicked (a bug); the work it held is rolled back.
    #[error("{}: a pgsync thread panicked: {what}", side.map_or("worker", Side::name))]
    WorkerPanicked {
        /// The side whose connection the thread worked on, when it was one.
        side: Option<Side>,
        /// What the panic said.
        what: String,
    },
}

impl Error {
    /// The side that failed, when it is one of the databases.
    pub fn side(&self) -> Option<Side> {
        match self {
            Error::Db(e) | Error::Catalog(CatalogError::Db(e)) => Some(e.side),
            Error::Catalog(
                CatalogError::TableMissing { side, .. } | CatalogError::NotATable { side, .. },
            ) => Some(*side),
            Error::Catalog(
                CatalogError::ShapeMismatch { .. }
                | CatalogError::TypeMissing { .. }
                | CatalogError::ForeignKeyInSet { .. },
            ) => Some(Side::Destination),
            Error::Catalog(_) => Some(Side::Source),
            Error::WorkerPanicked { side, .. } => *side,
            Error::WhileVerifying(e) => e.side(),
            _ => None,
        }
    }

    /// True when the same command may succeed if retried later (continuous mode retries).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Db(e) | Error::Catalog(CatalogError::Db(e)) => e.is_transient(),
            Error::WhileVerifying(e) => e.is_transient(),
            _ => false,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            Error::ConnInfo(ConnInfoError::Tls { .. } | ConnInfoError::Service { .. }) => {
                "see docs/operations.md, \"Connecting\"".into()
            }
            Error::Usage(_) | Error::ConnInfo(_) => "see `pgsync --help`".into(),
            Error::Db(e) | Error::Catalog(CatalogError::Db(e)) => e.hint(),
            Error::Catalog(c) => match c {
                CatalogError::TableMissing { side: Side::Source, .. } => {
                    "check the TABLE argument (schema.name; quote mixed-case names: '\"MyTable\"')".into()
                }
                CatalogError::TableMissing { .. } | CatalogError::NotATable { .. } => "check the TABLE argument".into(),
                CatalogError::CursorMissing { .. } => {
                    "choose an existing column with --cursor-column (quote mixed-case names)".into()
                }
                CatalogError::CursorNotOrderable { .. } => {
                    "choose a cursor column of an orderable type (timestamp, timestamptz, bigint, numeric…)".into()
                }
                CatalogError::CursorUnindexed { statement, .. } => format!(
                    "create the index first ({statement}), or pass --allow-unindexed-cursor to go on anyway"
                ),
                CatalogError::NoPrimaryKey { .. } => {
                    "add a primary key to the source table, or name a unique NOT NULL index's columns with --key".into()
                }
                CatalogError::KeyNotUnique { .. } => {
                    "--key must name exactly the columns of a unique, non-partial index whose columns are NOT NULL".into()
                }
                CatalogError::ForeignKeyInSet { table, constraint, .. } => format!(
                    "drop it for the migration (ALTER TABLE {table} DROP CONSTRAINT {constraint}) and add it back after the cutover (docs/operations.md, \"Many tables\")"
                ),
                CatalogError::ShapeMismatch { .. } => "make the destination table match the source, or drop it and let pgsync create it".into(),
                CatalogError::TypeMissing { .. } => {
                    "a base type comes with an extension: CREATE EXTENSION it on the destination (or create the type; pg_dump --schema-only shows it), then run again".into()
                }
                CatalogError::Db(_) => unreachable!("handled above"),
            },
            Error::State(e) => e.hint(),
            Error::WhileVerifying(e) if e.is_transient() => {
                "run `pgsync verify` again once the server answers (verify changes nothing; it retries a lost connection for --retry-for)".into()
            }
            Error::WhileVerifying(e) => e.hint(),
            Error::TablesFailed { .. } => {
                "the other tables went on; fix what each names and run the command again".into()
            }
            Error::WorkerPanicked { .. } => {
                "this is a bug, please report it; `pgsync resume` continues from the last checkpoint".into()
            }
        }
    }
}
