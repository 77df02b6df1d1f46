//! Read-ahead: a thread that owns a source connection and reads a pass's windows back to
//! back while the destination side applies and commits the previous one. Each statement is
//! a `COPY (SELECT … LIMIT n)` as in the sequential path; for a cursor range, where a second
//! source connection can print window ends, one statement reads `WINDOWS_PER_READ` windows
//! and the stream is cut into them between rows (each cut gets its own binary COPY trailer
//! and header), so the source scans and sorts the rest of a range once per that many
//! windows instead of once per window. It learns each window's end from the stream (`tail`)
//! and has it printed with the source's own types, so the next window starts right away;
//! bytes and window ends go to the destination side through a bounded channel (memory stays
//! flat). The destination side alone commits and checkpoints. Its first keyset statement,
//! whose first window nothing overlaps, is read in index order (`index_order`).

use super::printer::Printer;
use super::source::window_copy_sql;
use super::staging::classify_io;
use super::tail::{TailTracker, SIGNATURE};
use super::window_end::{after_last_row, window_end};
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
/// Windows one source statement reads when the stream can be cut into windows: the source
/// scans (and sorts) a range's rest once per this many windows, and a statement stays open
/// about this many windows' time (`--window-target` each, by default).
const WINDOWS_PER_READ: u64 = 4;
/// The binary COPY trailer that ends a window cut from a longer stream.
const TRAILER: [u8; 2] = [0xff, 0xff];

/// The binary COPY header (no flags, no extension) that starts a window cut from a longer
/// stream: the one PostgreSQL sends.
fn header() -> Vec<u8> {
    let mut header = SIGNATURE.to_vec();
    header.extend_from_slice(&[0; 8]);
    header
}

/// What the reader sends.
pub enum FromReader {
    /// Binary COPY bytes of the current window.
    Data(Vec<u8>),
    /// The current window is complete.
    End {
        rows: u64,
        end: Position,
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
    rx: Option<Receiver<FromReader>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ReadAhead {
    /// Starts reading on its own thread; with a `printer` (a second source connection, which
    /// prints the ends of windows cut from a statement still streaming), several windows per
    /// statement.
    pub fn start(mut src: Conn, mut printer: Option<Printer>, plan: ReadPlan) -> ReadAhead {
        let (tx, rx) = sync_channel((DEPTH / plan.readers.max(1)).max(MIN_DEPTH));
        let stop = Arc::new(AtomicBool::new(false));
        let out = Outlet {
            tx,
            stop: stop.clone(),
        };
        let handle = std::thread::spawn(move || {
            let printer = printer.as_mut();
            if let Err(e) = read_all(&mut src, printer, &plan, &out) {
                out.send(FromReader::Failed(e));
            }
        });
        ReadAhead {
            rx: Some(rx),
            stop,
            handle: Some(handle),
        }
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

/// Where the reader's messages go, and whether the destination side still listens.
struct Outlet {
    tx: SyncSender<FromReader>,
    /// Set when the destination side drops the read-ahead (done, failed or stopped).
    stop: Arc<AtomicBool>,
}

impl Outlet {
    /// Sends `msg`; false when the destination side stopped listening.
    fn send(&self, msg: FromReader) -> bool {
        self.tx.send(msg).is_ok()
    }

    /// The destination side stopped listening.
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

fn read_all(
    src: &mut postgres::Client,
    mut printer: Option<&mut Printer>,
    plan: &ReadPlan,
    out: &Outlet,
) -> Result<(), Error> {
    let mut slice_index = plan.start_slice;
    let mut pos = plan.start.clone();
    while let Some(slice) = plan.slices.get(slice_index) {
        if out.stopped() {
            return Ok(());
        }
        let mut tail = TailTracker::new(plan.watched.iter().map(|(i, _)| *i).collect());
        let window = plan.window.rows();
        // Windows are cut from a longer statement in a cursor range only (a block window is
        // a block range; a NULL-cursor window's end rule differs), and only when sized by
        // time: a statement then stays open about four targets' time, far inside the
        // source's statement_timeout, where fixed windows could take any time each.
        let cutter = printer.as_deref_mut().filter(|_| {
            matches!(slice.kind, SliceKind::Range { .. }) && plan.window.sized_by_time()
        });
        let limit = match cutter {
            Some(_) => window.saturating_mul(WINDOWS_PER_READ),
            None => window,
        };
        let cut = cutter.is_some();
        let first = slice_index == plan.start_slice && pos == plan.start;
        let ordered = first && index_order(src, &slice.kind, true)?;
        let read = read_window(
            src,
            cutter,
            plan,
            (&pos, limit),
            &slice.kind,
            &mut tail,
            out,
        );
        // Only after a complete read: a failed or cut-short one leaves the session in no
        // state to be told anything (it is not reused for windows).
        if ordered && matches!(read, Ok(Read::Ended(_))) {
            index_order(src, &slice.kind, false)?;
        }
        let last = match read? {
            Read::Ended(last) => last,
            Read::Interrupted => {
                out.send(FromReader::Interrupted);
                return Ok(());
            }
            Read::Abandoned => return Ok(()),
        };
        // The statement's last window: it ends the slice when the statement read fewer rows
        // than it asked for (`window_end`'s rule, said for the whole statement).
        let rows = tail.rows() - last.rows_before;
        let rule_limit = match (cut, tail.rows() < limit) {
            (false, _) => limit,
            (true, short) => rows + u64::from(short),
        };
        let (end, slice_done) = window_end(&slice.kind, &last.from, rows, rule_limit, || {
            after_last_row(
                src,
                Side::Source,
                &plan.watched,
                (&plan.ks, &slice.kind),
                &tail,
            )
        })?;
        let msg = FromReader::End {
            rows,
            end: end.clone(),
            slice_done,
        };
        if !out.send(msg) {
            return Ok(());
        }
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

/// Sets (`on`) or resets the planner's choice for the reader's first keyset statement, whose
/// first window nothing overlaps: it is read in index order. A bitmap scan reads the whole
/// remaining range and sorts it before the first row, and the planner picks it when the
/// newest cursor values lie past the column's statistics — every incremental pass
/// (measured: 10,000 rows of a 200,000-row range in 0.94 s by bitmap, 0.10 s by the index).
/// Later statements overlap the destination's work, and for them the bitmap's one read of
/// each page can be the cheaper plan: left to the planner. Whether anything was set.
fn index_order(src: &mut postgres::Client, kind: &SliceKind, on: bool) -> Result<bool, Error> {
    if matches!(kind, SliceKind::Blocks { .. }) {
        return Ok(false);
    }
    let sql = if on {
        "SET enable_bitmapscan = off"
    } else {
        "RESET enable_bitmapscan"
    };
    src.batch_execute(sql)
        .on(Side::Source, "choosing how to read a window")?;
    crate::db::round_trips(1);
    Ok(true)
}

/// How reading one statement's rows ended.
enum Read {
    /// Every row was sent; the last window is still open.
    Ended(LastWindow),
    /// SIGINT/SIGTERM arrived.
    Interrupted,
    /// The destination side stopped listening.
    Abandoned,
}

/// Until the destination has committed a window, every window takes the first guess's
/// rows (when no earlier pass measured a pace); the reader, running a few windows ahead,
/// would cut all of those at that guess. So after the first cut it waits for that first
/// commit (a few seconds at most, an interrupt, or the destination side giving up) before
/// streaming on: the next window takes the size that commit tells.
fn wait_for_first_commit(window: &super::window_size::WindowSize, out: &Outlet) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !window.informed()
        && !shutdown::requested()
        && !out.stopped()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// The window a statement's stream is in: where it started, and the statement's rows
/// before it (sent as earlier windows).
struct LastWindow {
    from: Position,
    rows_before: u64,
}

/// Sends one statement's COPY bytes in chunks, showing them to the tail tracker. With a
/// `cutter` (a connection to print window ends), a window is cut off at the first row
/// boundary after it has the rows a window takes, unless only the trailer is left: its
/// bytes get a trailer, its end is printed and sent, and the next window starts with a
/// header of its own.
fn read_window(
    src: &mut postgres::Client,
    mut cutter: Option<&mut Printer>,
    plan: &ReadPlan,
    (from, limit): (&Position, u64),
    kind: &SliceKind,
    tail: &mut TailTracker,
    out: &Outlet,
) -> Result<Read, Error> {
    let doing = "reading a window";
    let sql = window_copy_sql(&plan.shape, &plan.ks, from, kind, limit);
    let mut reader = src.copy_out(&sql).on(Side::Source, doing)?;
    crate::db::round_trips(2);
    // Room for one more row past CHUNK, so that a chunk is not reallocated.
    let capacity = CHUNK + 16 * 1024;
    let mut chunk = Vec::with_capacity(capacity);
    let mut last = LastWindow {
        from: from.clone(),
        rows_before: 0,
    };
    let header = header();
    loop {
        if shutdown::requested() {
            return Ok(Read::Interrupted);
        }
        // The driver's buffer holds one COPY message (a row): read it in place.
        let data = reader
            .fill_buf()
            .map_err(|e| classify_io(Side::Source, doing, e))?;
        if data.is_empty() {
            break;
        }
        if tail.rows() == 0 && !data.starts_with(&header) {
            cutter = None; // a header of another shape: not cut
        }
        if let Some(printer) = cutter.as_deref_mut() {
            let rows = tail.rows() - last.rows_before;
            // The size as of now: the reader runs ahead, and windows committed meanwhile
            // have told the destination's pace.
            if rows >= plan.window.rows() && tail.at_row_boundary() && data != TRAILER {
                chunk.extend_from_slice(&TRAILER);
                let done = std::mem::replace(&mut chunk, Vec::with_capacity(capacity));
                if !out.send(FromReader::Data(done)) {
                    return Ok(Read::Abandoned);
                }
                let end = after_last_row(
                    printer.client()?,
                    Side::Source,
                    &plan.watched,
                    (&plan.ks, kind),
                    tail,
                )?;
                let cut = FromReader::End {
                    rows,
                    end: end.clone(),
                    slice_done: false,
                };
                if !out.send(cut) {
                    return Ok(Read::Abandoned);
                }
                last = LastWindow {
                    from: end,
                    rows_before: tail.rows(),
                };
                wait_for_first_commit(&plan.window, out);
                chunk.extend_from_slice(&header);
            }
        }
        let n = data.len();
        tail.feed(data)
            .map_err(|e| DbError::other(Side::Source, DbErrorKind::Other, doing, e.to_string()))?;
        chunk.extend_from_slice(data);
        reader.consume(n);
        if chunk.len() >= CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(capacity));
            if !out.send(FromReader::Data(full)) {
                return Ok(Read::Abandoned);
            }
        }
    }
    if !chunk.is_empty() && !out.send(FromReader::Data(chunk)) {
        return Ok(Read::Abandoned);
    }
    Ok(Read::Ended(last))
}
