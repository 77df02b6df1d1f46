//! Named crash points for the crash tests. Built with `--features failpoints`, a process
//! whose `PGSYNC_FAILPOINT` is `name` (or `name@N` for the N-th hit) announces
//! `pgsync-failpoint: name` on stderr at that point and stops there, so the test can send it
//! a real SIGKILL at an exact protocol step; `name:panic` (or `name@N:panic`) panics there
//! instead, to test how a thread's panic is reported; `name:pause` waits there until the
//! file `PGSYNC_FAILPOINT_CONTINUE` names exists, then goes on, so that the test can change
//! a database at that step. Without the feature every call is a no-op.

/// Inside the window transaction, rows and receipt written, before COMMIT.
pub const BEFORE_DEST_COMMIT: &str = "before_dest_commit";
/// Destination committed, state store not yet told (the lost-acknowledgement case).
pub const AFTER_DEST_COMMIT: &str = "after_dest_commit";
/// Window checkpointed in the state store and flushed.
pub const AFTER_CHECKPOINT: &str = "after_checkpoint";
/// Primary key of a load without key built, before its COMMIT.
pub const BEFORE_KEY_COMMIT: &str = "before_key_commit";
/// Plan recorded in the state store, before the first window.
pub const AFTER_PLAN: &str = "after_plan";
/// A diff pass's window applied in its transaction, before COMMIT.
pub const DIFF_BEFORE_COMMIT: &str = "diff_before_commit";
/// A diff pass's window committed, its record not yet written.
pub const DIFF_AFTER_COMMIT: &str = "diff_after_commit";
/// Drill-down: the differing buckets known, their rows not yet read.
pub const DRILL_AFTER_HASHES: &str = "drill_after_hashes";

/// Stops here when the failpoint is armed (feature `failpoints` only).
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static HITS: AtomicU64 = AtomicU64::new(0);
    let Ok(armed) = std::env::var("PGSYNC_FAILPOINT") else {
        return;
    };
    let (armed, action) = match armed.split_once(':') {
        Some((rest, action)) => (rest.to_string(), action.to_string()),
        None => (armed, String::new()),
    };
    let (armed_name, nth) = match armed.split_once('@') {
        Some((n, k)) => (n.to_string(), k.parse::<u64>().unwrap_or(1)),
        None => (armed, 1),
    };
    if armed_name != name || HITS.fetch_add(1, Ordering::SeqCst) + 1 != nth {
        return;
    }
    if action == "panic" {
        panic!("failpoint {name}");
    }
    let _ = writeln!(std::io::stderr(), "pgsync-failpoint: {name}");
    let _ = std::io::stderr().flush();
    let go_on = std::env::var_os("PGSYNC_FAILPOINT_CONTINUE").filter(|_| action == "pause");
    loop {
        if go_on
            .as_ref()
            .is_some_and(|f| std::path::Path::new(f).exists())
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// No-op without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
