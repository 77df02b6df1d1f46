//! An opened job: state store, one pool per side, and the validated shapes. Opening does
//! every check that can refuse the job (connections, tables, cursor, key, destination
//! shape) before anything is written anywhere.

use crate::catalog::{self, compare, types, TableShape};
use crate::cli::SyncMode;
use crate::db::pool::SidePool;
use crate::db::Side;
use crate::error::Error;
use crate::job::JobSpec;
use crate::keyspace::{clock, KeySpace};
use crate::protocol::receipts::Receipts;
use crate::runtime::set_progress::SetProgress;
use crate::runtime::slots::Slots;
use crate::state::records::{Connections, JobRecord, SideConnection};
use crate::state::{JobState, StateStore};
use std::sync::Arc;

/// A job ready to run passes.
pub struct Job {
    pub spec: JobSpec,
    /// The job's state records.
    pub state: JobState,
    /// Source pool (read-only sessions).
    pub source: SidePool,
    pub dest: SidePool,
    /// Source table shape (validated).
    pub shape: TableShape,
    /// The destination table existed when the session opened (and matched).
    pub dest_existed: bool,
    /// Cursor and key columns with types.
    pub ks: KeySpace,
    pub receipts: Receipts,
    /// User types the destination lacks, created with the table when pgsync creates it.
    pub types_to_create: Vec<String>,
    /// The source is a hot standby: its replay lag in seconds when the job opened.
    pub standby_lag: Option<f64>,
    /// When the job is one table of a set: what it shares with the other tables.
    pub share: Option<TableShare>,
    _store: Arc<StateStore>,
}

/// What a table of a set shares with the set's other tables.
#[derive(Clone)]
pub struct TableShare {
    /// `--jobs` worker slots over all tables.
    pub slots: Arc<Slots>,
    /// The table's place, largest first: lower ranks get free slots first.
    pub rank: usize,
    /// The set's progress line.
    pub progress: Arc<SetProgress>,
    /// Whether the source is a hot standby, and its replay lag: read once for the round.
    pub standby_lag: Option<f64>,
    /// Read for every table at the round's start; taken by the table's first pass.
    pub prefetched: Arc<std::sync::Mutex<Option<crate::job::Prefetched>>>,
}

/// Opens the job's state store (no database access), checking the job identity.
pub fn open_state(spec: &JobSpec) -> Result<(StateStore, JobState), Error> {
    open_state_waiting(spec, std::time::Duration::ZERO)
}

/// Opens the job's state store for a sync, waiting a little for a reader holding it.
fn open_state_waiting(
    spec: &JobSpec,
    wait: std::time::Duration,
) -> Result<(StateStore, JobState), Error> {
    let store = StateStore::open_waiting(&spec.state_dir, wait)?;
    let state = job_state(&store, spec)?;
    Ok((store, state))
}

/// The job's records in an open store, checking (or recording) whose they are.
pub fn job_state(store: &StateStore, spec: &JobSpec) -> Result<JobState, Error> {
    let state = store.job(&spec.job_id)?;
    match state.meta() {
        Ok(Some(meta)) if meta.identity != spec.identity => {
            return Err(Error::Usage(format!(
                "state directory {} holds job {:?} under the same id; use another --state-dir",
                spec.state_dir.display(),
                meta.identity
            )))
        }
        Ok(Some(_)) => {}
        // An unreadable meta record is reported, never overwritten: it says whose state this is.
        Err(e) => return Err(e.into()),
        Ok(None) => {
            let created_unix = crate::runtime::output::unix_now();
            state.set_meta(&JobRecord {
                identity: spec.identity.clone(),
                created_unix,
            })?;
        }
    }
    Ok(state)
}

/// Both sides connected and validated (no state store).
pub struct Databases {
    /// Source pool (read-only sessions).
    pub source: SidePool,
    pub dest: SidePool,
    /// Source table shape (validated), with the destination's trigger flag.
    pub shape: TableShape,
    /// The destination table existed (and matched).
    pub dest_existed: bool,
    /// Cursor and key columns with types.
    pub ks: KeySpace,
    /// Enums the destination lacks (when pgsync is to create the table).
    pub types_to_create: Vec<String>,
    /// Synced by diff (`--mode diff`, or `auto` on a table without the cursor column): the
    /// key space's cursor is the key's first column.
    pub diff: bool,
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
        let connections = spec.jobs as u32 + 2; // the planner's, one per worker, one spare
        let (source, dest) = open_pools(spec, connections)?;
        Databases::check(spec, source, dest)
    }

    /// Runs every check that can refuse the job's table on pools already open. Writes nothing.
    pub fn check(spec: &JobSpec, source: SidePool, dest: SidePool) -> Result<Databases, Error> {
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
        let mut shape =
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
        let mut dst = dest.get()?;
        let mut dest_shape = catalog::load(&mut dst, Side::Destination, &spec.table, None)?;
        if let (Some(d), Some(key)) = (dest_shape.as_mut(), spec.key.as_deref()) {
            catalog::use_key(&mut dst, Side::Destination, d, key)?;
        }
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
        shape.has_user_triggers = dest_shape.is_some_and(|d| d.has_user_triggers);
        Ok(Databases {
            diff,
            types_to_create,
            source,
            dest,
            shape,
            dest_existed,
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

/// The job's state when its store already exists and is free (verify reads the watermark
/// from it but must not create a store, nor fail when a running sync holds it).
pub fn open_state_if_exists(spec: &JobSpec) -> Option<JobState> {
    if !spec.state_dir.join("sled").exists() {
        return None;
    }
    let store = StateStore::open(&spec.state_dir).ok()?;
    let state = store.job(&spec.job_id).ok()?;
    state
        .meta()
        .ok()
        .flatten()
        .filter(|m| m.identity == spec.identity)?;
    Some(state)
}

impl Job {
    /// The job's databases, as verify works on them.
    pub fn databases(&self) -> Databases {
        Databases {
            source: self.source.clone(),
            dest: self.dest.clone(),
            shape: self.shape.clone(),
            dest_existed: true,
            ks: self.ks.clone(),
            types_to_create: Vec::new(),
            diff: self.spec.mode == SyncMode::Diff,
        }
    }

    /// Connects and validates both tables, then opens the state (the tables decide a
    /// `--mode auto` job's identity). Writes nothing to either database.
    pub fn open(spec: JobSpec) -> Result<Job, Error> {
        // The store opens while the databases are checked (sled reads its log: ~0.1 s on a
        // store with a long history); a database error is reported first.
        let (databases, store) = std::thread::scope(|scope| {
            let store = scope.spawn(|| {
                StateStore::open_waiting(&spec.state_dir, std::time::Duration::from_secs(3))
            });
            (Databases::open(&spec), store.join())
        });
        let databases = databases?;
        let store = store.map_err(|_| Error::WorkerPanicked {
            side: None,
            what: "opening the state store panicked".into(),
        })??;
        // The job's records after the tables: `--mode auto` decides the job's identity there.
        let spec = databases.settle(spec);
        let state = job_state(&store, &spec)?;
        Job::assemble(spec, Arc::new(store), state, databases, None)
    }

    /// Opens one table of a set in the set's store, on the set's pools.
    pub fn open_in_set(
        spec: JobSpec,
        store: &Arc<StateStore>,
        pools: (SidePool, SidePool),
        share: Option<TableShare>,
    ) -> Result<Job, Error> {
        let databases = Databases::check(&spec, pools.0, pools.1)?;
        let spec = databases.settle(spec);
        let state = job_state(store, &spec)?;
        Job::assemble(spec, Arc::clone(store), state, databases, share)
    }

    fn assemble(
        spec: JobSpec,
        store: Arc<StateStore>,
        state: JobState,
        databases: Databases,
        share: Option<TableShare>,
    ) -> Result<Job, Error> {
        let Databases {
            types_to_create,
            source,
            dest,
            shape,
            dest_existed,
            ks,
            diff: _,
        } = databases;
        let side = |pool: &SidePool, info: &crate::db::conninfo::ConnInfo| SideConnection {
            sslmode: info.tls.mode.to_string(),
            encryption: pool.encryption.clone(),
        };
        state.set_connections(&Connections {
            source: side(&source, &spec.source),
            destination: side(&dest, &spec.dest),
        })?;
        let receipts = Receipts {
            table: spec.receipts_table.clone(),
        };
        let standby_lag = match &share {
            Some(share) => share.standby_lag,
            None => crate::keyspace::bounds::standby_lag(&mut *source.get()?)?,
        };
        if let Some(lag) = standby_lag.filter(|_| share.as_ref().is_none_or(|s| s.rank == 0)) {
            let message = format!(
                "source: a hot standby (replay lag {lag:.1}s): the primary's transactions that had written \
                 when a pass was planned are held back from the standby's snapshot; one that had not \
                 written yet is covered only by --lookback ({:?}): raise it to your longest write \
                 transaction, or read from the primary",
                spec.lookback
            );
            crate::runtime::output::note(&spec.output, "warn", &message);
        }
        Ok(Job {
            types_to_create,
            standby_lag,
            spec,
            state,
            source,
            dest,
            shape,
            dest_existed,
            ks,
            receipts,
            share,
            _store: store,
        })
    }
}
