//! SIGINT/SIGTERM handling: the handler only raises a flag. The pass checks it between
//! windows and the COPY pipe checks it between reads; the window in flight rolls back, the
//! last checkpoint is already flushed, and the process exits 130.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once per process).
pub fn install() {
    // Failing to install means signals keep their default action (exit at once), which the
    // checkpoint protocol survives too; no reason to refuse to run.
    let _ = ctrlc::set_handler(|| REQUESTED.store(true, Ordering::SeqCst));
}

/// True once SIGINT or SIGTERM arrived.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Sleeps up to `total`, waking early on shutdown. Returns false when interrupted.
pub fn sleep(total: std::time::Duration) -> bool {
    let step = std::time::Duration::from_millis(100);
    let start = std::time::Instant::now();
    while start.elapsed() < total {
        if requested() {
            return false;
        }
        std::thread::sleep(step.min(total.saturating_sub(start.elapsed())));
    }
    !requested()
}
