//! An opened job: state store, the checked databases (`databases.rs`: pools, tables,
//! cursor, destination shape), the receipts. Opening does every check that can refuse the
//! job before anything is written anywhere.

use crate::catalog::TableShape;
use crate::cli::SyncMode;
use crate::db::pool::SidePool;
use crate::error::Error;
use crate::job::databases::Databases;
use crate::job::JobSpec;
use crate::keyspace::KeySpace;
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
    /// The destination table as it was when the job opened (matched), for the first pass's
    /// preparation to use instead of reading it again; `None` once taken, or when missing.
    pub dest_at_open: Option<TableShape>,
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
            dest_shape: None,
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
            dest_shape,
            ks,
            dest_existed: _,
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
        let receipts = Receipts::new(spec.receipts_table.clone());
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
            dest_at_open: dest_shape,
            ks,
            receipts,
            share,
            _store: store,
        })
    }
}
