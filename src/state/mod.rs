//! The local state store (sled): one store per `--state-dir`, one tree per job, holding the
//! pass plan, each window's bounds and status, the watermark of the next pass and the last
//! pass's figures. This module is the only importer of sled and bincode.
//!
//! The store is a cache of progress, not the truth: the destination's receipts are (see
//! docs/checkpoint-protocol.md). Every write that matters is made durable: plans and pass
//! ends before going on, window checkpoints in the background (`flusher`); every other
//! read or write first waits for the checkpoints handed over to be written.

pub mod codec;
mod diff;
mod files;
mod flusher;
pub mod keys;
pub mod pace;
mod plan;
pub mod records;

pub use files::{private_dir, private_file_options};
use flusher::Flusher;
use records::{Holdback, JobRecord, PassRecord, PassStats, Watermark, WindowRecord};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// State-store failures.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The directory cannot be created or opened.
    #[error("state: cannot open the state directory {dir}: {reason}")]
    Open {
        /// The directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// Another pgsync process holds the store.
    #[error("state: the state directory {dir} is in use by another pgsync process")]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// A record does not decode.
    #[error("state: record {key:?} is corrupt ({reason})")]
    Corrupt {
        /// Key of the record.
        key: String,
        /// Decoder message.
        reason: String,
    },
    /// A record written by a newer pgsync.
    #[error("state: record {key:?} was written by a newer pgsync (record version {version}, this one reads up to {supported})")]
    TooNew {
        /// Key.
        key: String,
        /// Its version.
        version: u8,
        /// Highest version this build reads.
        supported: u8,
    },
    /// sled failed while reading or writing.
    #[error("state: I/O error in {dir}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// `resume` found no unfinished pass.
    #[error("nothing to resume for {identity}: {why}")]
    NothingToResume {
        /// The job.
        identity: String,
        /// What the state and receipts say.
        why: String,
    },
}

impl StateError {
    /// What the user can do.
    pub fn hint(&self) -> String {
        match self {
            StateError::Open { .. } => "choose a writable --state-dir (or PGSYNC_STATE_DIR)".into(),
            StateError::Locked { .. } => "wait for the other run to finish, or stop it (SIGINT); each job needs one process at a time".into(),
            StateError::Corrupt { .. } | StateError::Io { .. } => {
                "move the state directory aside; pgsync rebuilds its progress from the destination's receipts".into()
            }
            StateError::TooNew { .. } => "run the newer pgsync, or move the state directory aside".into(),
            StateError::NothingToResume { .. } => "run `pgsync single` to start a new pass".into(),
        }
    }
}

/// An open store. Holds an exclusive lock on `<dir>/lock` for its lifetime. sled (0.34.7)
/// locks its own files too, but fails with an untyped I/O error; the lock file gives a
/// typed `Locked` error and lets a short-lived reader be waited for (`open_waiting`).
pub struct StateStore {
    db: sled::Db,
    flusher: Arc<Flusher>,
    dir: PathBuf,
    _lock: std::fs::File,
}

impl StateStore {
    /// Opens (creating if needed) the store in `dir`. Fails at once when another process
    /// has it (readers such as `status`).
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        Self::open_waiting(dir, std::time::Duration::ZERO)
    }

    /// Opens the store, waiting up to `wait` for a reader that holds it for a moment (a
    /// `status` or `verify` reading the watermark); a running sync still fails it.
    pub fn open_waiting(dir: &Path, wait: std::time::Duration) -> Result<Self, StateError> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            match Self::try_open(dir) {
                Err(StateError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn try_open(dir: &Path) -> Result<Self, StateError> {
        let open_err = |e: std::io::Error| StateError::Open {
            dir: dir.into(),
            reason: e.to_string(),
        };
        // Only its owner may read the state (0700 directories, 0600 files): it names the
        // databases and holds the plan. An existing directory keeps its mode (it may be one
        // the user chose, such as /tmp); sled's own directory inside is always private.
        private_dir(dir).map_err(open_err)?;
        private_dir(&dir.join("sled")).map_err(open_err)?;
        let lock = private_file_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(open_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StateError::Locked { dir: dir.into() })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(open_err(e)),
        }
        // No periodic flush of sled's own: pgsync flushes after every write that matters.
        let db = sled::Config::new()
            .path(dir.join("sled"))
            .flush_every_ms(None)
            .open()
            .map_err(|source| StateError::Io {
                dir: dir.into(),
                source,
            })?;
        Ok(StateStore {
            flusher: Arc::new(Flusher::start(db.clone())),
            db,
            dir: dir.into(),
            _lock: lock,
        })
    }

    /// The ids of the jobs the store holds.
    pub fn job_ids(&self) -> Vec<String> {
        self.db
            .tree_names()
            .iter()
            .filter_map(|name| {
                std::str::from_utf8(name)
                    .ok()?
                    .strip_prefix("job:")
                    .map(str::to_string)
            })
            .collect()
    }

    /// The tree of one job.
    pub fn job(&self, job_id: &str) -> Result<JobState, StateError> {
        let tree = self
            .db
            .open_tree(keys::job_tree(job_id))
            .map_err(|e| self.io(e))?;
        Ok(JobState {
            tree,
            flusher: Arc::clone(&self.flusher),
            dir: self.dir.clone(),
        })
    }

    fn io(&self, source: sled::Error) -> StateError {
        StateError::Io {
            dir: self.dir.clone(),
            source,
        }
    }
}

/// One job's records.
pub struct JobState {
    tree: sled::Tree,
    flusher: Arc<Flusher>,
    dir: PathBuf,
}

impl JobState {
    fn io(&self, source: sled::Error) -> StateError {
        StateError::Io {
            dir: self.dir.clone(),
            source,
        }
    }

    /// Waits for this job's checkpoints handed to the flusher to be written, so that a read
    /// sees them and a write is not overwritten by them (other jobs' may still wait).
    fn settle(&self) -> Result<(), StateError> {
        self.flusher.settle_tree(&self.tree).map_err(|e| self.io(e))
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StateError> {
        self.settle()?;
        match self.tree.get(key).map_err(|e| self.io(e))? {
            Some(bytes) => codec::decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StateError> {
        self.settle()?;
        self.tree
            .insert(key, codec::encode(value))
            .map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Makes everything written so far durable (fsync) before returning.
    pub fn flush(&self) -> Result<(), StateError> {
        self.flusher.flush_now().map_err(|e| self.io(e))
    }

    /// Job identity.
    pub fn meta(&self) -> Result<Option<JobRecord>, StateError> {
        self.get(keys::META)
    }

    /// Records the job identity.
    pub fn set_meta(&self, meta: &JobRecord) -> Result<(), StateError> {
        self.put(keys::META, meta)
    }

    /// The current (or last) pass, whatever record version wrote it.
    pub fn pass(&self) -> Result<Option<PassRecord>, StateError> {
        self.settle()?;
        match self.tree.get(keys::PASS).map_err(|e| self.io(e))? {
            Some(bytes) => codec::decode_pass(keys::PASS, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Where the next pass starts.
    pub fn watermark(&self) -> Result<Option<Watermark>, StateError> {
        self.get(keys::WATERMARK)
    }

    /// Figures of the last finished pass.
    pub fn last_pass(&self) -> Result<Option<PassStats>, StateError> {
        self.get(keys::LAST_PASS)
    }

    /// Last error a run reported.
    pub fn last_error(&self) -> Result<Option<String>, StateError> {
        self.get(keys::LAST_ERROR)
    }

    /// How both sides were connected on the last run.
    pub fn connections(&self) -> Result<Option<records::Connections>, StateError> {
        self.get(keys::CONNECTIONS)
    }

    /// Records how both sides were connected (not flushed: informational).
    pub fn set_connections(&self, connections: &records::Connections) -> Result<(), StateError> {
        self.put(keys::CONNECTIONS, connections)
    }

    /// Stores (and flushes) a plan before any of its rows are copied.
    pub fn record_pass(&self, pass: &PassRecord) -> Result<(), StateError> {
        self.put(keys::PASS, pass)?;
        self.flush()
    }

    /// Records a window as cut and in flight (not flushed: receipts decide on a crash).
    pub fn record_window(&self, window: &WindowRecord) -> Result<(), StateError> {
        let bytes = codec::encode(window);
        self.tree
            .insert(keys::window(window.pass, window.window), bytes)
            .map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Checkpoint: the committed window and the advanced pass in one batch, written and
    /// flushed in the background (at most `flusher::MAX_BEHIND` checkpoints wait).
    pub fn checkpoint(&self, window: &WindowRecord, pass: &PassRecord) -> Result<(), StateError> {
        let mut batch = sled::Batch::default();
        batch.insert(
            keys::window(window.pass, window.window),
            codec::encode(window),
        );
        batch.insert(keys::PASS, codec::encode(pass));
        self.hand_over(batch)
    }

    /// Hands a batch of this job's records to the flusher (written and flushed in order).
    fn hand_over(&self, batch: sled::Batch) -> Result<(), StateError> {
        self.flusher
            .submit(&self.tree, batch)
            .map_err(|e| self.io(e))
    }

    /// Ends a pass: next watermark, figures and holdback, atomically, then flush. Window
    /// records of older passes are dropped (the receipts keep the proof in the destination).
    pub fn finish_pass(
        &self,
        pass: &PassRecord,
        watermark: &Watermark,
        stats: &PassStats,
        holdback: &Holdback,
    ) -> Result<(), StateError> {
        self.settle()?;
        let mut batch = sled::Batch::default();
        batch.insert(keys::HOLDBACK, codec::encode(holdback));
        batch.insert(keys::PASS, codec::encode(pass));
        batch.insert(keys::WATERMARK, codec::encode(watermark));
        batch.insert(keys::LAST_PASS, codec::encode(stats));
        for key in self.tree.scan_prefix([b'w']).keys() {
            let key = key.map_err(|e| self.io(e))?;
            if key.len() == 17
                && u64::from_be_bytes(key[1..9].try_into().unwrap_or_default()) < pass.number
            {
                batch.remove(key);
            }
        }
        self.tree.apply_batch(batch).map_err(|e| self.io(e))?;
        self.flush()
    }

    /// Records the last error (best effort, flushed).
    pub fn set_last_error(&self, message: Option<&str>) -> Result<(), StateError> {
        match message {
            Some(m) => self.put(keys::LAST_ERROR, &m.to_string())?,
            None => {
                self.settle()?;
                self.tree.remove(keys::LAST_ERROR).map_err(|e| self.io(e))?;
            }
        }
        self.flush()
    }

    /// All window records of a pass, in order.
    pub fn windows(&self, pass: u64) -> Result<Vec<WindowRecord>, StateError> {
        self.settle()?;
        self.tree
            .scan_prefix(keys::windows_of(pass))
            .values()
            .map(|v| {
                v.map_err(|e| self.io(e))
                    .and_then(|b| codec::decode("window", &b))
            })
            .collect()
    }

    /// Drops every record of this job (used when its state is corrupt: receipts rebuild it).
    pub fn clear(&self) -> Result<(), StateError> {
        self.settle()?;
        self.tree.clear().map_err(|e| self.io(e))?;
        self.flush()
    }

    /// Overwrites one raw key (tests use it to simulate corruption).
    #[doc(hidden)]
    pub fn put_raw(&self, key: &str, bytes: &[u8]) -> Result<(), StateError> {
        self.settle()?;
        self.tree.insert(key, bytes).map_err(|e| self.io(e))?;
        self.flush()
    }

    /// Reads one raw key (tests check a record was left as it was).
    #[doc(hidden)]
    pub fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.settle()?;
        let value = self.tree.get(key).map_err(|e| self.io(e))?;
        Ok(value.map(|v| v.to_vec()))
    }
}
