//! Key layout of the state store: one sled tree per job (`job:<job id>`), fixed keys for
//! the singleton records, and `w` + big-endian (pass, window) for windows so that a prefix
//! scan returns a pass's windows in order.

/// Tree name for a job.
pub fn job_tree(job_id: &str) -> String {
    format!("job:{job_id}")
}

/// Job identity record.
pub const META: &str = "meta";
/// The pass in progress (or the last one).
pub const PASS: &str = "pass";
/// Lower bound of the next pass.
pub const WATERMARK: &str = "watermark";
/// Figures of the last finished pass.
pub const LAST_PASS: &str = "last_pass";
/// Pending source transactions (late-commit holdback).
pub const HOLDBACK: &str = "holdback";
/// The source snapshot of the current pass.
pub const SNAPSHOT: &str = "snapshot";
/// Last error message seen by a run.
pub const LAST_ERROR: &str = "last_error";
/// How both sides were connected on the last run.
pub const CONNECTIONS: &str = "connections";
/// The current (or last) diff pass (`--mode diff`).
pub const DIFF_PASS: &str = "diff_pass";
/// The paces earlier passes measured (`pace.rs`).
pub const PACES: &str = "paces";

/// Key of one window record.
pub fn window(pass: u64, window: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.push(b'w');
    k.extend_from_slice(&pass.to_be_bytes());
    k.extend_from_slice(&window.to_be_bytes());
    k
}

/// Prefix of all windows of a pass.
pub fn windows_of(pass: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(b'w');
    k.extend_from_slice(&pass.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    #[test]
    fn window_keys_sort_by_pass_then_window() {
        let mut keys = vec![
            super::window(2, 1),
            super::window(1, 300),
            super::window(1, 2),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                super::window(1, 2),
                super::window(1, 300),
                super::window(2, 1)
            ]
        );
        assert!(super::window(1, 300).starts_with(&super::windows_of(1)));
    }
}
