//! Test harness modules.
pub mod bin;
pub mod compare;
pub mod fixtures;
pub mod server;

pub use bin::Pgsync;
pub use compare::assert_tables_equal;
pub use server::TestDb;
