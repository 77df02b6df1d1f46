//! Background flushing of the state store (docs/checkpoint-protocol.md, step 3). A
//! checkpoint's batch is applied at once by the worker, and made durable (fsync) on this
//! thread while the worker copies its next window. At most `MAX_BEHIND` checkpoints wait
//! for their fsync; a worker that would go further waits for the flusher. A failed
//! background flush is returned to the next checkpoint. Dropping the flusher flushes what
//! is left. The receipts make a lag safe: a checkpoint lost to a kill is a state behind
//! the receipts, which reconciliation corrects.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Checkpoints that may wait for their fsync at once.
pub const MAX_BEHIND: u64 = 4;

/// The flushing thread and its bookkeeping.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    db: sled::Db,
    counts: Mutex<Counts>,
    changed: Condvar,
}

#[derive(Default)]
struct Counts {
    /// Flushes asked for.
    requested: u64,
    /// Requests covered by a finished flush.
    flushed: u64,
    /// A background flush failed; the next request reports it.
    error: Option<sled::Error>,
    /// The flusher is being dropped: flush what is left and stop.
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Flusher {
    /// Starts the flushing thread for `db`.
    pub fn start(db: sled::Db) -> Flusher {
        let shared = Arc::new(Shared {
            db,
            counts: Mutex::new(Counts::default()),
            changed: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("pgsync-state-flush".into())
            .spawn(move || flush_loop(&worker))
            .ok();
        Flusher { shared, thread }
    }

    /// Asks for everything written so far to be made durable, without waiting for it
    /// unless `MAX_BEHIND` requests are pending already. Returns the error of an earlier
    /// background flush, if one failed.
    pub fn request(&self) -> Result<(), sled::Error> {
        if self.thread.is_none() {
            // No thread could be started: flush here.
            return self.shared.db.flush().map(drop);
        }
        let mut counts = self.shared.lock();
        while counts.requested - counts.flushed >= MAX_BEHIND && counts.error.is_none() {
            counts = self
                .shared
                .changed
                .wait(counts)
                .unwrap_or_else(|e| e.into_inner());
        }
        if let Some(e) = counts.error.take() {
            return Err(e);
        }
        counts.requested += 1;
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Makes everything written so far durable before returning (on the caller's thread),
    /// and reports a failed background flush.
    pub fn flush_now(&self) -> Result<(), sled::Error> {
        if let Some(e) = self.shared.lock().error.take() {
            return Err(e);
        }
        self.shared.db.flush().map(drop)
    }

    /// Requests not yet covered by a finished flush.
    #[cfg(test)]
    fn pending(&self) -> u64 {
        let counts = self.shared.lock();
        counts.requested - counts.flushed
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn flush_loop(shared: &Shared) {
    loop {
        let target = {
            let mut counts = shared.lock();
            while counts.requested == counts.flushed && !counts.closing {
                counts = shared
                    .changed
                    .wait(counts)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if counts.requested == counts.flushed {
                return; // closing, nothing left
            }
            counts.requested
        };
        let result = shared.db.flush();
        let mut counts = shared.lock();
        counts.flushed = target;
        if let Err(e) = result {
            counts.error = Some(e);
        }
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn temp_db() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        (dir, db)
    }

    #[test]
    fn requests_are_flushed_in_the_background_and_never_pile_up() {
        let (_dir, db) = temp_db();
        let flusher = Flusher::start(db.clone());
        for i in 0..200u32 {
            db.insert(i.to_be_bytes(), vec![0u8; 512]).unwrap();
            flusher.request().unwrap();
            assert!(
                flusher.pending() <= MAX_BEHIND,
                "{} pending",
                flusher.pending()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while flusher.pending() > 0 {
            assert!(Instant::now() < deadline, "the flusher fell silent");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn dropping_the_flusher_waits_for_the_requests_left() {
        let (_dir, db) = temp_db();
        let flusher = Flusher::start(db.clone());
        for i in 0..MAX_BEHIND as u32 {
            db.insert(i.to_be_bytes(), vec![1u8; 4096]).unwrap();
            flusher.request().unwrap();
        }
        let shared = Arc::clone(&flusher.shared);
        drop(flusher);
        let counts = shared.lock();
        assert_eq!((counts.requested, counts.flushed), (MAX_BEHIND, MAX_BEHIND));
    }
}
