//! Background writing of checkpoints to the state store (docs/checkpoint-protocol.md,
//! steps 2 and 3). A worker hands over a checkpoint's batch and goes on with its next
//! window; this thread applies the batches in the order they came and makes them durable
//! (fsync). At most `MAX_BEHIND` checkpoints wait at once; a worker that would go further
//! waits. Every other read or write of a job's records first waits for that job's batches
//! to be written (`settle_tree`; the store's own records: every batch, `settle`), so no one
//! reads a state older than a checkpoint handed over, and no older batch overwrites a newer
//! write — and a table of a set does not wait for the fsync of another table's checkpoint.
//! A failed background write is returned to the next caller. Dropping the flusher writes
//! what is left. The receipts make the lag safe: a checkpoint lost to a kill is a state
//! behind the receipts, which reconciliation corrects.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Checkpoints that may wait to be written at once.
pub const MAX_BEHIND: u64 = 4;

/// The writing thread and its queue.
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
    /// Batches handed over, not yet taken by the thread.
    queue: Vec<(sled::Tree, sled::Batch)>,
    /// Batches handed over.
    requested: u64,
    /// Per tree (by name), the number of the last batch handed over for it.
    last_of: std::collections::HashMap<sled::IVec, u64>,
    /// Batches applied and flushed.
    flushed: u64,
    /// A background write failed; the next caller gets it.
    error: Option<sled::Error>,
    /// The flusher is being dropped: write what is left and stop.
    closing: bool,
    /// Tests hold the thread back to queue several batches.
    held: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Counts>) -> MutexGuard<'a, Counts> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }
}

impl Flusher {
    /// Starts the writing thread for `db`.
    pub fn start(db: sled::Db) -> Flusher {
        let shared = Arc::new(Shared {
            db,
            counts: Mutex::new(Counts::default()),
            changed: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("pgsync-state-flush".into())
            .spawn(move || write_loop(&worker))
            .ok();
        Flusher { shared, thread }
    }

    /// Hands over a batch for `tree`, to be applied after every batch handed over before
    /// it, then flushed; waits only when `MAX_BEHIND` batches are waiting already. Returns
    /// the error of an earlier background write, if one failed.
    pub fn submit(&self, tree: &sled::Tree, batch: sled::Batch) -> Result<(), sled::Error> {
        if self.thread.is_none() {
            // No thread could be started: write here.
            tree.apply_batch(batch)?;
            return self.shared.db.flush().map(drop);
        }
        let mut counts = self.shared.lock();
        while counts.requested - counts.flushed >= MAX_BEHIND && counts.error.is_none() {
            counts = self.shared.wait(counts);
        }
        if let Some(e) = counts.error.take() {
            return Err(e);
        }
        counts.queue.push((tree.clone(), batch));
        counts.requested += 1;
        let number = counts.requested;
        counts.last_of.insert(tree.name(), number);
        self.shared.changed.notify_all();
        Ok(())
    }

    /// Waits until every batch handed over is applied and flushed; returns the error of a
    /// background write, if one failed.
    pub fn settle(&self) -> Result<(), sled::Error> {
        self.wait_for(|counts| counts.requested)
    }

    /// Waits until every batch handed over for `tree` is applied and flushed (batches for
    /// other trees may still wait); returns the error of a background write, if one failed.
    pub fn settle_tree(&self, tree: &sled::Tree) -> Result<(), sled::Error> {
        let name = tree.name();
        self.wait_for(|counts| counts.last_of.get(&name).copied().unwrap_or(0))
    }

    /// Waits until the batches up to number `last(counts)` are flushed, or a background
    /// write failed (its error is returned, once).
    fn wait_for(&self, last: impl Fn(&Counts) -> u64) -> Result<(), sled::Error> {
        let mut counts = self.shared.lock();
        while counts.flushed < last(&counts) && counts.error.is_none() {
            counts = self.shared.wait(counts);
        }
        match counts.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Makes everything written so far durable before returning (on the caller's thread).
    pub fn flush_now(&self) -> Result<(), sled::Error> {
        self.settle()?;
        self.shared.db.flush().map(drop)
    }

    /// Holds the thread back (tests).
    #[cfg(test)]
    fn hold(&self, held: bool) {
        self.shared.lock().held = held;
        self.shared.changed.notify_all();
    }

    /// Batches handed over and not yet flushed.
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

fn write_loop(shared: &Shared) {
    loop {
        let (batches, target) = {
            let mut counts = shared.lock();
            while (counts.requested == counts.flushed || counts.held) && !counts.closing {
                counts = shared.wait(counts);
            }
            if counts.requested == counts.flushed {
                return; // closing, nothing left
            }
            (std::mem::take(&mut counts.queue), counts.requested)
        };
        let result = batches
            .into_iter()
            .try_for_each(|(tree, batch)| tree.apply_batch(batch))
            .and_then(|()| shared.db.flush().map(drop));
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

    fn temp_db() -> (tempfile::TempDir, sled::Db, sled::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let tree = db.open_tree("job").unwrap();
        (dir, db, tree)
    }

    fn batch(key: u32, value: u32) -> sled::Batch {
        let mut b = sled::Batch::default();
        b.insert(&key.to_be_bytes(), &value.to_be_bytes());
        b
    }

    fn value(tree: &sled::Tree, key: u32) -> Option<u32> {
        let v = tree.get(key.to_be_bytes()).unwrap()?;
        Some(u32::from_be_bytes(v.as_ref().try_into().unwrap()))
    }

    #[test]
    fn batches_are_written_in_order_and_never_pile_up() {
        let (_dir, db, tree) = temp_db();
        let flusher = Flusher::start(db);
        for i in 0..200u32 {
            // Key 0 is written by every batch: the last one handed over must win.
            flusher.submit(&tree, batch(0, i)).unwrap();
            flusher.submit(&tree, batch(i + 1, i)).unwrap();
            assert!(
                flusher.pending() <= MAX_BEHIND,
                "{} pending",
                flusher.pending()
            );
        }
        flusher.settle().unwrap();
        assert_eq!(flusher.pending(), 0);
        assert_eq!(value(&tree, 0), Some(199));
        assert!((0..200).all(|i| value(&tree, i + 1) == Some(i)));
    }

    #[test]
    fn batches_queued_together_are_applied_in_the_order_they_came() {
        let (_dir, db, tree) = temp_db();
        let flusher = Flusher::start(db);
        flusher.hold(true);
        for i in 1..=MAX_BEHIND as u32 {
            flusher.submit(&tree, batch(0, i)).unwrap();
        }
        assert_eq!((flusher.pending(), value(&tree, 0)), (MAX_BEHIND, None));
        flusher.hold(false);
        flusher.settle().unwrap();
        assert_eq!(value(&tree, 0), Some(MAX_BEHIND as u32));
    }

    #[test]
    fn settling_a_tree_waits_for_its_batches_only() {
        let (_dir, db, tree) = temp_db();
        let other = db.open_tree("other").unwrap();
        let flusher = Flusher::start(db);
        flusher.hold(true);
        flusher.submit(&other, batch(1, 1)).unwrap();
        // Nothing of `tree` waits: no wait although `other`'s batch is held back.
        flusher.settle_tree(&tree).unwrap();
        assert_eq!(flusher.pending(), 1);
        flusher.submit(&tree, batch(2, 2)).unwrap();
        let flusher = Arc::new(flusher);
        let waiter = {
            let (f, t) = (Arc::clone(&flusher), tree.clone());
            std::thread::spawn(move || {
                f.settle_tree(&t).unwrap();
                value(&t, 2)
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            !waiter.is_finished(),
            "settled before its batch was written"
        );
        flusher.hold(false);
        assert_eq!(waiter.join().unwrap(), Some(2));
        assert_eq!(value(&other, 1), Some(1));
    }

    #[test]
    fn dropping_the_flusher_writes_the_batches_left() {
        let (_dir, db, tree) = temp_db();
        let flusher = Flusher::start(db);
        for i in 0..MAX_BEHIND as u32 {
            flusher.submit(&tree, batch(i, i)).unwrap();
        }
        let shared = Arc::clone(&flusher.shared);
        drop(flusher);
        let counts = shared.lock();
        assert_eq!((counts.requested, counts.flushed), (MAX_BEHIND, MAX_BEHIND));
        assert!((0..MAX_BEHIND as u32).all(|i| value(&tree, i) == Some(i)));
    }
}
