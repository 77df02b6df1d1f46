//! Worker slots shared by the tables of a job (`--jobs N` over a set of tables): a
//! counting semaphore whose waiters are served by rank, lowest first, so that the largest
//! table (rank 0) gets a slot before smaller ones whenever one frees up.

use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex};

/// N slots; `acquire(rank)` waits for one.
#[derive(Debug)]
pub struct Slots {
    state: Mutex<Waiting>,
    freed: Condvar,
}

#[derive(Debug)]
struct Waiting {
    free: usize,
    /// (rank, ticket) of each waiter: the first of the set is served next.
    queue: BTreeSet<(usize, u64)>,
    next_ticket: u64,
}

/// A held slot, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
}

impl Slots {
    /// `n` slots (at least one).
    pub fn new(n: usize) -> Arc<Slots> {
        Arc::new(Slots {
            state: Mutex::new(Waiting {
                free: n.max(1),
                queue: BTreeSet::new(),
                next_ticket: 0,
            }),
            freed: Condvar::new(),
        })
    }

    /// Waits for a slot; among waiters, the lowest rank (then the earliest) is served first.
    pub fn acquire(self: &Arc<Self>, rank: usize) -> Slot {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let me = (rank, state.next_ticket);
        state.next_ticket += 1;
        state.queue.insert(me);
        while !(state.free > 0 && state.queue.first() == Some(&me)) {
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.queue.remove(&me);
        state.free -= 1;
        // Another slot may be free for the next waiter.
        self.freed.notify_all();
        Slot {
            slots: Arc::clone(self),
        }
    }

    /// Slots free now.
    pub fn free(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).free
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.slots.state.lock().unwrap_or_else(|e| e.into_inner());
        state.free += 1;
        self.slots.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn at_most_n_are_held_and_a_dropped_slot_is_given_back() {
        let slots = Slots::new(2);
        let a = slots.acquire(5);
        let b = slots.acquire(5);
        assert_eq!(slots.free(), 0);
        drop(a);
        assert_eq!(slots.free(), 1);
        drop(b);
        assert_eq!(slots.free(), 2);
    }

    #[test]
    fn waiters_are_served_lowest_rank_first() {
        let slots = Slots::new(1);
        let held = slots.acquire(0);
        let order = Arc::new(Mutex::new(Vec::new()));
        std::thread::scope(|s| {
            for rank in [3usize, 1, 2] {
                let (slots, order) = (Arc::clone(&slots), Arc::clone(&order));
                s.spawn(move || {
                    let _slot = slots.acquire(rank);
                    order.lock().unwrap().push(rank);
                    std::thread::sleep(Duration::from_millis(5));
                });
                // Each waiter queued before the next one starts.
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(held);
        });
        assert_eq!(*order.lock().unwrap(), vec![1, 2, 3]);
    }
}
