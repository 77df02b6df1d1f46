//! Both sides of a job connected and checked, before any state is opened: the pools
//! (both sides at once), the source table, cursor and clock (or the diff decision), the
//! destination table read meanwhile and compared, the user types a created table needs.
//! Writes nothing.

use crate::catalog::{self, compare, types, TableShape};
use crate::cli::SyncMode;
use crate::db::pool::SidePool;
use crate::db::Side;
use crate::error::Error;
use crate::job::JobSpec;
use crate::keyspace::{clock, KeySpace};

/// Both sides connected and validated (no state store).
pub struct Databases {
    /// Source pool (read-only sessions).
    pub source: SidePool,
    pub dest: SidePool,
    /// Source table shape (validated), with the destination's trigger flag.
    pub shape: TableShape,
    /// The destination table existed (and matched).
    pub dest_existed: bool,
    /// The destination table as read (`None`: missing).
    pub dest_shape: Option<TableShape>,
    /// Cursor and key columns with types.
    pub ks: KeySpace,
    /// Enums the destination lacks (when pgsync is to create the table).
    pub types_to_create: Vec<String>,
    /// Synced by diff (`--mode diff`, or `auto` on a table without the cursor column): the
    /// key space's cursor is the key's first column.
    pub diff: bool,
}

/// The destination table as the catalog has it (`None`: missing), `--key` applied.
pub fn destination_table(
    dst: &mut postgres::Client,
    spec: &JobSpec,
) -> Result<Option<TableShape>, Error> {
    let mut shape = catalog::load(dst, Side::Destination, &spec.table, None)?;
    if let (Some(d), Some(key)) = (shape.as_mut(), spec.key.as_deref()) {
        catalog::use_key(dst, Side::Destination, d, key)?;
    }
    Ok(shape)
}

/// What `Databases::check_source` found on the source.
struct SourceChecked {
    diff: bool,
    shape: TableShape,
    /// The cursor column (a diff job's: the key's first) and its type.
    cursor_typed: (String, String),
    clock: Option<crate::keyspace::clock::CursorClock>,
}

/// The column that cuts a diff job's windows: the key's first (`--key`, or the primary
/// key's); a table without either is refused as for a cursor job.
fn window_column(spec: &JobSpec, shape: &TableShape) -> Result<String, Error> {
    let first = match &spec.key {
        Some(key) => key.first(),
        None => shape.primary_key.first(),
    };
    first.cloned().ok_or_else(|| {
        catalog::CatalogError::NoPrimaryKey {
            table: spec.table.clone(),
        }
        .into()
    })
}

impl Databases {
    /// The job's spec as these databases decided it: a diff job's windows are cut on the
    /// key's first column, under the diff identity.
    pub fn settle(&self, spec: JobSpec) -> JobSpec {
        if self.diff {
            spec.into_diff(&self.ks.cursor.0)
        } else {
            spec
        }
    }
}

impl Databases {
    /// Connects both sides and runs every check that can refuse the job. Writes nothing.
    pub fn open(spec: &JobSpec) -> Result<Databases, Error> {
        // The planner's, per worker a reader and its printer (and a destination one), a spare.
        let connections = 2 * spec.jobs as u32 + 2;
        let (source, dest) = open_pools(spec, connections)?;
        Databases::check(spec, source, dest)
    }

    /// The source's side of `check`: the table, the cursor or the diff decision, the clock.
    fn check_source(
        spec: &JobSpec,
        source: &SidePool,
    ) -> Result<(SourceChecked, crate::db::pool::Conn), Error> {
        let mut src = source.get()?;
        let diff_asked = spec.mode == SyncMode::Diff;
        let loaded = catalog::load(
            &mut src,
            Side::Source,
            &spec.table,
            (!diff_asked).then_some(spec.cursor.as_str()),
        )?;
        // `auto`: a table without the cursor column is synced by diff, and told so.
        let diff = diff_asked
            || (spec.mode == SyncMode::Auto
                && loaded
                    .as_ref()
                    .is_some_and(|s| s.column(&spec.cursor).is_none()));
        let cursor = match (&loaded, diff) {
            (Some(shape), true) => window_column(spec, shape)?,
            _ => spec.cursor.clone(),
        };
        if diff && !diff_asked {
            let message = format!(
                "{}: no column {:?}; synced by diff (--mode auto): both tables compared by checksums each pass, the differing rows copied or deleted",
                spec.table, spec.cursor
            );
            crate::runtime::output::note(&spec.output, "info", &message);
        }
        let shape =
            catalog::check_source(&mut src, loaded, &spec.table, &cursor, spec.key.as_deref())?;
        // A diff job's windows run on its key: no clock.
        let cursor_typed = (
            cursor.clone(),
            shape
                .column(&cursor)
                .map_or(String::new(), |c| c.sql_type.clone()),
        );
        let choice = (!diff).then_some(spec.cursor_clock);
        let clock = clock::cursor_clock(&mut src, &spec.table, &cursor_typed, choice)?;
        let checked = SourceChecked {
            diff,
            shape,
            cursor_typed,
            clock,
        };
        Ok((checked, src))
    }

    /// Runs every check that can refuse the job's table on pools already open. Writes nothing.
    pub fn check(spec: &JobSpec, source: SidePool, dest: SidePool) -> Result<Databases, Error> {
        // The destination's table is read while the source's is checked (on a link with
        // latency each is a round trip or more); the source's failure is reported first.
        let (checked, dest_read) = std::thread::scope(|scope| {
            let dest_read = scope.spawn(|| -> Result<_, Error> {
                let mut dst = dest.get()?;
                let dest_shape = destination_table(&mut dst, spec)?;
                Ok((dst, dest_shape))
            });
            let checked = Databases::check_source(spec, &source);
            let dest_read = dest_read.join().unwrap_or_else(|_| {
                Err(Error::WorkerPanicked {
                    side: Some(Side::Destination),
                    what: "reading the destination table panicked".into(),
                })
            });
            (checked, dest_read)
        });
        let (
            SourceChecked {
                diff,
                mut shape,
                cursor_typed,
                clock,
            },
            mut src,
        ) = checked?;
        let (mut dst, dest_shape) = dest_read?;
        if let Some(d) = &dest_shape {
            compare::same_shape(&shape, d)?;
        }
        // A table pgsync will create needs the user types its columns use: enums, domains
        // and composites are created with it; a range refuses the job now, before any write.
        let types_to_create = match &dest_shape {
            Some(_) => Vec::new(),
            None => types::missing_on_destination(&mut dst, &types::used_by(&mut src, &shape)?)?,
        };
        drop(src);
        // Generated columns the destination computes (generated there too, or in the table
        // pgsync will create) are neither read nor written.
        for column in shape.columns.iter_mut().filter(|c| c.generated) {
            column.computed = dest_shape
                .as_ref()
                .is_none_or(|d| d.column(&column.name).is_some_and(|c| c.generated));
        }
        drop(dst);
        if !diff {
            super::cursor_use::check(spec, &shape)?;
        }
        let column_type = |name: &str| {
            shape
                .column(name)
                .map(|c| c.sql_type.clone())
                .unwrap_or_default()
        };
        let ks = KeySpace {
            cursor: cursor_typed,
            key: shape
                .primary_key
                .iter()
                .map(|k| (k.clone(), column_type(k)))
                .collect(),
            clock,
        };
        // The upsert targets the destination: its triggers (not the source's) decide
        // whether equal rows must be filtered before the INSERT.
        let dest_existed = dest_shape.is_some();
        shape.has_user_triggers = dest_shape.as_ref().is_some_and(|d| d.has_user_triggers);
        Ok(Databases {
            diff,
            types_to_create,
            source,
            dest,
            shape,
            dest_existed,
            dest_shape,
            ks,
        })
    }
}

/// Both sides' pools, `connections` each, named after the job.
pub fn open_pools(spec: &JobSpec, connections: u32) -> Result<(SidePool, SidePool), Error> {
    // Both sides at once (on a link with latency a connection is several round trips); a
    // failure of the source is reported first, as when they were opened in turn.
    let (source, dest) = std::thread::scope(|scope| {
        let dest = scope.spawn(|| {
            SidePool::open(
                Side::Destination,
                &spec.dest,
                &spec.job_id,
                spec.limits,
                connections,
            )
        });
        let source = SidePool::open(
            Side::Source,
            &spec.source,
            &spec.job_id,
            spec.limits,
            connections,
        );
        (source, dest.join())
    });
    let dest = dest.map_err(|_| Error::WorkerPanicked {
        side: Some(Side::Destination),
        what: "connecting to the destination panicked".into(),
    })?;
    Ok((source?, dest?))
}
