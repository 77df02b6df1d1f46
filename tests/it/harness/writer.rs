//! A concurrent writer: a thread with its own connection to a test database, repeating a
//! step until stopped, then handing back what the steps gathered.

use super::TestDb;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running writer.
pub struct Writer<T> {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<T>,
}

/// Starts `step` in a loop on a connection to `db`, folding into `gathered`.
pub fn start<T: Send + 'static>(
    db: &TestDb,
    mut gathered: T,
    mut step: impl FnMut(&mut postgres::Client, &mut T) + Send + 'static,
) -> Writer<T> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let borrowed = TestDb {
        name: db.name.clone(),
    };
    let handle = std::thread::spawn(move || {
        let mut client = borrowed.client();
        while !stopped.load(Ordering::SeqCst) {
            step(&mut client, &mut gathered);
        }
        std::mem::forget(borrowed); // the database belongs to the test
        gathered
    });
    Writer { stop, handle }
}

/// Runs `sql` on `db` every ~20 ms until stopped; gathers the rounds run.
pub fn repeating(db: &TestDb, sql: &'static str) -> Writer<u64> {
    start(db, 0u64, move |c, rounds| {
        c.batch_execute(sql).unwrap();
        *rounds += 1;
        std::thread::sleep(std::time::Duration::from_millis(20));
    })
}

impl<T> Writer<T> {
    /// Stops after the current step; what the steps gathered.
    pub fn stop(self) -> T {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("the writer panicked")
    }
}
