//! Read-ahead: a thread that owns a source connection and reads a pass's windows back to
//! back while the destination side applies and commits the previous one. A keyset statement
//! `COPY (SELECT … ORDER BY cursor, key LIMIT n)` covers up to `WINDOWS_PER_STATEMENT`
//! windows, cut here from its stream at row boundaries (each window its own binary COPY
//! stream: a header and a trailer are added where it was cut): a plan that reads the
//! slice's whole remaining range before its first row — a bitmap scan and a sort, on a heap
//! whose order is unrelated to the cursor — then runs once per that many windows instead
//! of once a window. A block window of a first load is one statement. Window ends are
//! learned from the stream (`tail`): a window cut mid-statement ends after its last row,
//! which the destination side prints; a statement's last window, after the stream ended,
//! is printed here with the source's own types so the next statement starts right away.
//! Bytes and window ends go to the destination side through a bounded channel (memory
//! stays flat). The destination side alone commits and checkpoints.

use super::source::window_copy_sql;
use super::staging::classify_io;
use super::tail::TailTracker;
use super::window_end::{after_last_row, window_end, LastRow, WindowEnd};
use crate::catalog::TableShape;
use crate::db::pool::Conn;
use crate::db::{DbError, DbErrorKind, PgResultExt, Side};
use crate::error::Error;
use crate::keyspace::{KeySpace, Position, Slice, SliceKind};
use crate::runtime::shutdown;
use postgres::types::Type;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Bytes sent per message.
const CHUNK: usize = 64 * 1024;
/// Messages in flight over all readers of a process: at most this many chunks (4 MiB) wait
/// for the destination, shared by the `--jobs` workers.
const DEPTH: usize = 64;
/// Messages in flight for one reader, however many workers.
const MIN_DEPTH: usize = 8;
/// Windows one keyset statement reads at most (its LIMIT is this many of the first window).
const WINDOWS_PER_STATEMENT: u64 = 8;
/// What starts and ends each window's own binary COPY stream where one was cut.
const HEADER: &[u8; 19] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
const TRAILER: [u8; 2] = [0xff, 0xff];

/// What the reader sends.
pub enum FromReader {
    /// Binary COPY bytes of the current window.
    Data(Vec<u8>),
    /// The current window is complete.
    End {
        rows: u64,
        end: WindowEnd,
        /// It exhausted its slice.
        slice_done: bool,
    },
    /// SIGINT/SIGTERM arrived mid-window; nothing more follows.
    Interrupted,
    /// Reading failed; nothing more follows.
    Failed(Error),
}

/// What the reader needs to know about the pass.
pub struct ReadPlan {
    pub shape: TableShape,
    pub ks: KeySpace,
    /// The pass's slices.
    pub slices: Vec<Slice>,
    /// Slice to start in.
    pub start_slice: usize,
    /// Position to start after.
    pub start: Position,
    /// Rows of the next window, read as each window starts.
    pub window: Arc<super::window_size::WindowSize>,
    /// Column index and type of the cursor and key columns.
    pub watched: Vec<(usize, Type)>,
    /// Readers running at once (`--jobs`): they share the read-ahead memory.
    pub readers: usize,
}

pub struct ReadAhead {
    watched: Vec<(usize, Type)>,
    rx: Option<Receiver<FromReader>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ReadAhead {
    /// Starts reading on its own thread.
    pub fn start(mut src: Conn, plan: ReadPlan) -> ReadAhead {
        let (tx, rx) = sync_channel((DEPTH / plan.readers.max(1)).max(MIN_DEPTH));
        let watched = plan.watched.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || {
            if let Err(e) = read_all(&mut src, &plan, &tx, &stopped) {
                let _ = tx.send(FromReader::Failed(e));
            }
        });
        ReadAhead {
            watched,
            rx: Some(rx),
            stop,
            handle: Some(handle),
        }
    }

    /// Column index and type of the cursor and key columns (to print a window's end).
    pub fn watched(&self) -> &[(usize, Type)] {
        &self.watched
    }

    /// The next message. The reader only goes away without a last message when its thread
    /// panicked.
    pub fn recv(&self) -> FromReader {
        match self.rx.as_ref().map(|rx| rx.recv()) {
            Some(Ok(msg)) => msg,
            _ => FromReader::Failed(Error::WorkerPanicked {
                side: Some(Side::Source),
                what: "the read-ahead thread stopped".into(),
            }),
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        drop(self.rx.take()); // unblocks a reader waiting to send
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn read_all(
    src: &mut postgres::Client,
    plan: &ReadPlan,
    tx: &SyncSender<FromReader>,
    stop: &AtomicBool,
) -> Result<(), Error> {
    let mut slice_index = plan.start_slice;
    let mut pos = plan.start.clone();
    while let Some(slice) = plan.slices.get(slice_index) {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some((end, slice_done)) = read_statement(src, plan, &pos, &slice.kind, tx)? else {
            return Ok(());
        };
        if slice_done {
            slice_index += 1;
            pos = plan
                .slices
                .get(slice_index)
                .map_or(end, |s| s.lower.clone());
        } else {
            pos = end;
        }
    }
    Ok(())
}

/// Reads one statement's windows after `from` and sends them; where its last window ended
/// and whether it exhausted the slice, or `None` when the reader is to stop (interrupted:
/// said; or nobody listens any more).
fn read_statement(
    src: &mut postgres::Client,
    plan: &ReadPlan,
    from: &Position,
    kind: &SliceKind,
    tx: &SyncSender<FromReader>,
) -> Result<Option<(Position, bool)>, Error> {
    let doing = "reading a window";
    let first = plan.window.rows();
    let keyset = KeySpace::block_window(from, kind, first).is_none();
    let limit = if keyset {
        first.saturating_mul(WINDOWS_PER_STATEMENT)
    } else {
        first
    };
    let new_tail = || TailTracker::new(plan.watched.iter().map(|(i, _)| *i).collect());
    let mut tail = new_tail();
    let (mut window, mut earlier) = (first, 0);
    let sql = window_copy_sql(&plan.shape, &plan.ks, from, kind, limit);
    let mut reader = src.copy_out(&sql).on(Side::Source, doing)?;
    crate::db::round_trips(2);
    // Room for one more row past CHUNK, so that a chunk is not reallocated.
    let capacity = CHUNK + 16 * 1024;
    let mut chunk = Vec::with_capacity(capacity);
    let bad = |e: super::tail::TailError| {
        DbError::other(Side::Source, DbErrorKind::Other, doing, e.to_string())
    };
    loop {
        if shutdown::requested() {
            let _ = tx.send(FromReader::Interrupted);
            return Ok(None);
        }
        // The driver's buffer holds one COPY message (a row): read it in place.
        let data = reader
            .fill_buf()
            .map_err(|e| classify_io(Side::Source, doing, e))?;
        if data.is_empty() {
            break;
        }
        // A full window ends between two rows when another row follows (not the trailer).
        if keyset
            && tail.rows() >= window
            && tail.at_row_boundary()
            && data.len() >= 2
            && data[..2] != TRAILER
        {
            chunk.extend_from_slice(&TRAILER);
            let last = LastRow::of(&tail).expect("a full window has a last row");
            let end = FromReader::End {
                rows: tail.rows(),
                end: WindowEnd::After(last, kind.clone()),
                slice_done: false,
            };
            earlier += tail.rows();
            if tx
                .send(FromReader::Data(std::mem::take(&mut chunk)))
                .is_err()
                || tx.send(end).is_err()
            {
                return Ok(None);
            }
            tail = new_tail();
            tail.feed(HEADER).map_err(bad)?;
            chunk = Vec::with_capacity(capacity);
            chunk.extend_from_slice(HEADER);
            window = plan.window.rows();
        }
        let n = data.len();
        tail.feed(data).map_err(bad)?;
        chunk.extend_from_slice(data);
        reader.consume(n);
        if chunk.len() >= CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(capacity));
            if tx.send(FromReader::Data(full)).is_err() {
                return Ok(None);
            }
        }
    }
    drop(reader);
    if !chunk.is_empty() && tx.send(FromReader::Data(chunk)).is_err() {
        return Ok(None);
    }
    // The statement's last window: the slice is exhausted when the statement came short
    // (a window cut earlier leaves this one at least a row: an empty one starts nothing).
    let rows = tail.rows();
    let short = earlier + rows < limit;
    let as_if = if short { rows + 1 } else { rows };
    let (end, slice_done) =
        window_end(kind, from, rows, if keyset { as_if } else { limit }, || {
            after_last_row(src, Side::Source, &plan.watched, (&plan.ks, kind), &tail)
        })?;
    let msg = FromReader::End {
        rows,
        end: WindowEnd::At(end.clone()),
        slice_done,
    };
    Ok(tx.send(msg).is_ok().then_some((end, slice_done)))
}
