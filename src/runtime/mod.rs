//! The process around the work: signals (`shutdown`), named crash points for the tests
//! (`failpoint`), and what is written to the terminal (`output`: progress, notes, logs).

pub mod failpoint;
pub mod output;
pub mod set_progress;
pub mod shutdown;
pub mod slots;
