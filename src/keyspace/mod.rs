//! The plan of one pass as plain, serde-able data: positions in the (cursor, primary key)
//! key space (or in the heap's blocks, for a first load), slices of that space, and their
//! SQL. Only `bounds`, `slices`, `blocks`
//! and `late_commits` query a database (the source, read-only; the destination for the
//! fallback lower bound); the rest is pure.

pub mod at_plan;
pub mod blocks;
pub mod bounds;
pub mod clock;
pub mod late_commits;
pub mod predicates;
pub mod slices;

use serde::{Deserialize, Serialize};
use std::fmt;

/// A point in the key space ordered by (cursor, primary key). Rows *after* a position
/// remain to be copied; rows at or before it are done. Values are in their PostgreSQL
/// text form (both sessions pin DateStyle, TimeZone, extra_float_digits…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    /// Nothing copied yet.
    Start,
    /// Every row with cursor < value is done; rows at the value are re-read (ties).
    BeforeCursor(String),
    /// Every row with cursor <= value is done.
    AfterCursor(String),
    /// Every row with (cursor, key) <= (cursor, key) is done.
    AfterKey {
        /// Cursor value of the last row done.
        cursor: String,
        /// Primary-key values of the last row done.
        key: Vec<String>,
    },
    /// Inside the rows whose cursor IS NULL, ordered by key: rows with key > this are left
    /// (`None`: none of them done yet).
    NullsAfter(Option<Vec<String>>),
    /// In a first load by heap blocks: the rows of every block before this one are done.
    AtBlock(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Start => f.write_str("start"),
            Position::BeforeCursor(c) => write!(f, "cursor >= {c}"),
            Position::AfterCursor(c) => write!(f, "cursor > {c}"),
            Position::AfterKey { cursor, key } => write!(f, "after ({cursor}, {})", key.join(", ")),
            Position::NullsAfter(None) => f.write_str("null cursors, from the first"),
            Position::NullsAfter(Some(k)) => write!(f, "null cursors after key ({})", k.join(", ")),
            Position::AtBlock(b) => write!(f, "heap block {b}"),
        }
    }
}

/// What part of the key space a slice covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SliceKind {
    /// Rows after the slice's lower position with cursor <= upper.
    Range {
        /// Inclusive upper cursor bound.
        upper: String,
    },
    /// Rows whose cursor IS NULL (re-read every pass: they cannot be tracked incrementally).
    NullCursor,
    /// A first load by heap blocks (docs/consistency.md): the rows in blocks from the slice's
    /// lower `AtBlock` up to `end` (exclusive) whose cursor is at most `upper` or NULL, read by
    /// TID range scans of as many whole blocks as a window's rows need.
    Blocks {
        /// First block after the slice.
        end: u64,
        /// Rows per block when the pass was planned (at least 1).
        rows_per_block: u64,
        /// The pass's upper cursor bound (`None`: the table had only NULL cursors).
        upper: Option<String>,
    },
}

/// What a plan is cut to (block slices and keyset slices alike).
#[derive(Debug, Clone, Copy)]
pub struct Sizing {
    /// Rows per slice.
    pub slice_rows: u64,
    /// Slices wanted at least (for `--jobs`)...
    pub min_slices: u64,
    /// ...as long as each keeps this many rows: a slice smaller than a window gains no
    /// parallelism and costs a window's round trips and commit of its own.
    pub min_rows: u64,
}

/// A contiguous piece of a pass, cut from planner estimates; windows are cut inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// Where the slice starts (exclusive).
    pub lower: Position,
    pub kind: SliceKind,
    /// Planner's estimate of its rows.
    pub estimated_rows: u64,
}

/// The columns that order the key space, with their exact types.
#[derive(Debug, Clone)]
pub struct KeySpace {
    /// Cursor column name and type.
    pub cursor: (String, String),
    /// Primary-key columns and types, in key order.
    pub key: Vec<(String, String)>,
    /// The clock the cursor follows (a pass's upper bound is capped at it), if any.
    pub clock: Option<clock::CursorClock>,
}
