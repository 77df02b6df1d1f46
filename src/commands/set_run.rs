//! A round over a set of tables: the members as the source has them now (largest first),
//! their latest receipts and destination tables read at once (`Prefetched`), `--jobs` + 1
//! table runners taking them in that order, and `--jobs` worker slots shared by
//! every table's workers (the largest waiting table gets a freed slot first), so N workers
//! stay busy until the last slice. Each table is its own job (state records, receipts,
//! retries of transient errors); a table's permanent error stops that table only. One line
//! per table on stdout, the set's progress on stderr, then a summary line.

use super::retry::Retried;
use super::{after_pass, run_planned_with_retries, summary_line, timings_line};
use crate::db::pool::SidePool;
use crate::error::Error;
use crate::job::databases::open_pools;
use crate::job::open::{job_state, TableShare};
use crate::job::{Job, Prefetched};
use crate::pass::{Mode, PassSummary};
use crate::protocol::receipts::Receipts;
use crate::runtime::output::{note, rate};
use crate::runtime::set_progress::SetProgress;
use crate::runtime::shutdown;
use crate::runtime::slots::Slots;
use crate::set::members::Member;
use crate::set::TableSet;
use crate::state::{StateError, StateStore};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How one table's part of a round ended.
#[derive(Debug)]
pub enum TableOutcome {
    /// Its pass finished (or had nothing to copy).
    Done(PassSummary),
    /// Stopped by SIGINT/SIGTERM; `resume` continues it.
    Interrupted,
    /// `resume` found no unfinished pass for it.
    NothingToResume,
    /// A permanent error (or transient ones past `--retry-for`).
    Failed(Error),
}

/// A set's store and connections, open for rounds.
pub struct SetRun<'s> {
    set: &'s TableSet,
    store: Arc<StateStore>,
    source: SidePool,
    dest: SidePool,
}

impl<'s> SetRun<'s> {
    /// Opens the state store and both pools (`3 × --jobs + 3` connections each at most: a
    /// planning connection per table runner, per worker one and its read-ahead's printer of
    /// window ends, one spare).
    pub fn open(set: &'s TableSet) -> Result<SetRun<'s>, Error> {
        let store =
            StateStore::open_waiting(&set.base.state_dir, std::time::Duration::from_secs(3))?;
        let (source, dest) = open_pools(&set.base, 3 * set.base.jobs as u32 + 3)?;
        Ok(SetRun {
            set,
            store: Arc::new(store),
            source,
            dest,
        })
    }

    /// The members now, the destination's foreign keys between them refused, the tables
    /// gone from the source reported.
    pub fn members(&self) -> Result<Vec<Member>, Error> {
        let members = self.set.members(&mut *self.source.get()?)?;
        self.set
            .check_foreign_keys(&mut *self.dest.get()?, &members)?;
        for table in self.set.gone(&self.store, &members) {
            let message = format!(
                "table {table}: synced by this job before, but the source has no such table now; its destination copy is left as it is"
            );
            note(&self.set.base.output, "warn", &message);
        }
        Ok(members)
    }

    /// One pass of every member (`round`: the how-many-th of this command, for `--deletes-every`):
    /// every member's job opened and its pass planned first, then the copying.
    pub fn round(&self, mode: Mode, round: u64) -> Result<Vec<(String, TableOutcome)>, Error> {
        let members = self.members()?;
        let output = self.set.base.output;
        let estimates: Vec<(String, u64)> = members
            .iter()
            .map(|m| (m.spec.table.to_string(), m.estimated_rows))
            .collect();
        let progress = Arc::new(SetProgress::new(output, &estimates));
        let slots = Slots::new(self.set.base.jobs);
        let standby_lag = crate::keyspace::bounds::standby_lag(&mut *self.source.get()?)?;
        let mut prefetched = self.prefetch(&members)?;
        let shares: Vec<Mutex<Option<TableShare>>> = members
            .iter()
            .enumerate()
            .map(|(rank, member)| {
                Mutex::new(Some(TableShare {
                    slots: Arc::clone(&slots),
                    rank,
                    progress: Arc::clone(&progress),
                    standby_lag,
                    prefetched: Arc::new(Mutex::new(prefetched.remove(&member.spec.job_id))),
                }))
            })
            .collect();
        let runners = (self.set.base.jobs + 1).min(members.len());
        // Planning while other tables copy competes with them for the machine (a table's
        // planning took 5–18 ms then, ~1 ms alone): every table is planned first.
        let planned = each_member(&members, runners, |rank, member| {
            let share = take(&shares[rank]).expect("each member is planned once");
            Mutex::new(Some(self.plan_table(member, share, mode)))
        });
        let outcomes = each_member(&members, runners, |rank, member| {
            let table = member.spec.table.to_string();
            // (`None`: its planning's runner panicked.)
            let planned = planned[rank].as_ref().and_then(take)?;
            let outcome = if shutdown::requested() {
                TableOutcome::Interrupted
            } else {
                planned
                    .and_then(|p| self.copy_table(p, round))
                    .unwrap_or_else(|e| match e {
                        Error::State(StateError::NothingToResume { .. }) => {
                            TableOutcome::NothingToResume
                        }
                        e => TableOutcome::Failed(e),
                    })
            };
            if let TableOutcome::Failed(e) = &outcome {
                note(
                    &output,
                    "warn",
                    &format!("table {table}: {e} — {}", e.hint()),
                );
                // For `status`, also when the table failed before its first pass.
                if let Ok(state) = job_state(&self.store, &member.spec) {
                    let _ = state.set_last_error(Some(&e.to_string()));
                }
            }
            progress.finished(&table);
            Some(outcome)
        });
        progress.finish();
        Ok(members
            .iter()
            .zip(outcomes)
            .map(|(m, o)| {
                let o = o.flatten();
                // A runner that panicked left its table without an outcome.
                let o = o.unwrap_or_else(|| {
                    TableOutcome::Failed(Error::WorkerPanicked {
                        side: None,
                        what: "a table runner panicked".into(),
                    })
                });
                (m.spec.table.to_string(), o)
            })
            .collect())
    }

    /// Every member's latest receipts and whether its destination table exists, by job id:
    /// one destination statement each for the whole set.
    fn prefetch(&self, members: &[Member]) -> Result<BTreeMap<String, Prefetched>, Error> {
        let mut dst = self.dest.get()?;
        let receipts = Receipts::new(self.set.base.receipts_table.clone());
        let jobs: Vec<String> = members.iter().map(|m| m.spec.job_id.clone()).collect();
        let mut latest = receipts.latest_of(&mut dst, &jobs)?;
        let tables: Vec<_> = members.iter().map(|m| m.spec.table.clone()).collect();
        let exist = crate::keyspace::bounds::destinations_exist(&mut dst, &tables)?;
        Ok(members
            .iter()
            .zip(exist)
            .map(|(m, dest_exists)| {
                let receipts = latest.remove(&m.spec.job_id).flatten();
                let fetched = Prefetched {
                    receipts,
                    dest_exists,
                };
                (m.spec.job_id.clone(), fetched)
            })
            .collect())
    }

    /// Opens one member's job in the set's store, on the set's pools.
    pub fn open_table(&self, member: &Member, share: Option<TableShare>) -> Result<Job, Error> {
        let pools = (self.source.clone(), self.dest.clone());
        Job::open_in_set(member.spec.clone(), &self.store, pools, share)
    }

    /// One member's job opened and its pass planned (an error planning is kept for
    /// `copy_table`, whose first attempt it is); no table is planned once a shutdown is asked.
    fn plan_table(
        &self,
        member: &Member,
        share: TableShare,
        mode: Mode,
    ) -> Result<PlannedTable, Error> {
        let mut job = self.open_table(member, Some(share))?;
        // `resume` after an interrupted set also starts the tables the set never reached (no
        // pass ever finished, none unfinished): the set is what is being resumed.
        let asked = mode;
        let diff_cut_short = super::resume::diff_unfinished(&job);
        let mode = match mode {
            // (An unreadable record counts as none: the pass rebuilds it from the receipts.)
            Mode::Resume
                if job.state.watermark().unwrap_or(None).is_none()
                    && job.state.pass().unwrap_or(None).is_none() =>
            {
                Mode::Single
            }
            // A diff pass cut short is run again (it compares first).
            Mode::Resume if diff_cut_short => Mode::Single,
            other => other,
        };
        let planned = (!shutdown::requested()).then(|| crate::pass::plan(&mut job, mode));
        Ok(PlannedTable {
            job,
            asked,
            mode,
            diff_cut_short,
            planned,
        })
    }

    /// One table's pass (and the pass after it when it continued an unfinished one, as
    /// `single` does), its line printed.
    fn copy_table(&self, planned: PlannedTable, round: u64) -> Result<TableOutcome, Error> {
        let PlannedTable {
            mut job,
            asked,
            mode,
            diff_cut_short,
            planned,
        } = planned;
        let table = job.spec.table.to_string();
        let mut planned = planned;
        let mut last = None;
        for attempt in 0..2 {
            let summary = match run_planned_with_retries(&mut job, mode, planned.take())? {
                Retried::Done(s) => s,
                Retried::Interrupted => return Ok(TableOutcome::Interrupted),
            };
            println!("{table}: {}", summary_line(&summary));
            log::debug!("{table}: {}", timings_line(&summary));
            if !summary.finished {
                return Ok(TableOutcome::Interrupted);
            }
            let again = attempt == 0 && summary.continued && mode == Mode::Single;
            last = Some(summary);
            if !again {
                break;
            }
        }
        let summary = last.expect("one pass ran");
        if asked == Mode::Resume && mode == Mode::Single && summary.windows == 0 && !diff_cut_short
        {
            // A table never reached that had nothing to copy (an empty one).
            return Ok(TableOutcome::NothingToResume);
        }
        if !after_pass(&job, &summary, round)? {
            return Ok(TableOutcome::Interrupted);
        }
        Ok(TableOutcome::Done(summary))
    }
}

/// A member's job, opened, with its pass planned (or the error planning it).
struct PlannedTable {
    job: Job,
    /// The mode the command asked for, and the one this table runs in.
    asked: Mode,
    mode: Mode,
    diff_cut_short: bool,
    /// `None` when a shutdown was asked before the planning.
    planned: Option<Result<crate::pass::Planned, Error>>,
}

/// Runs `each` for every member on `runners` threads taking them in order (largest first);
/// its results by rank, `None` where a runner panicked.
fn each_member<T: Send>(
    members: &[Member],
    runners: usize,
    each: impl Fn(usize, &Member) -> T + Sync,
) -> Vec<Option<T>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new(members.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..runners {
            scope.spawn(|| loop {
                let rank = next.fetch_add(1, Ordering::SeqCst);
                let Some(member) = members.get(rank) else {
                    break;
                };
                let result = each(rank, member);
                results.lock().unwrap_or_else(|e| e.into_inner())[rank] = Some(result);
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Takes what a slot holds.
fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// The round's summary line (stdout), and its outcome: failed tables → an error naming each
/// (exit 2); else interrupted → 130; `resume` with nothing to resume anywhere → that error.
pub fn conclude(
    set: &TableSet,
    outcomes: Vec<(String, TableOutcome)>,
    started: Instant,
    mode: Mode,
) -> Result<super::Outcome, Error> {
    let count = |f: fn(&TableOutcome) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
    let done = count(|o| matches!(o, TableOutcome::Done(_)));
    let interrupted = count(|o| matches!(o, TableOutcome::Interrupted));
    let idle = count(|o| matches!(o, TableOutcome::NothingToResume));
    let (read, written) = outcomes.iter().fold((0, 0), |(r, w), (_, o)| match o {
        TableOutcome::Done(s) => (r + s.rows_read, w + s.rows_written),
        _ => (r, w),
    });
    let seconds = started.elapsed().as_secs_f64();
    let of = outcomes.len();
    let failed: Vec<(String, Error)> = outcomes
        .into_iter()
        .filter_map(|(t, o)| match o {
            TableOutcome::Failed(e) => Some((t, e)),
            _ => None,
        })
        .collect();
    println!(
        "{of} tables: {done} done, {} failed, {interrupted} interrupted{}; {read} rows read, {written} rows written in {seconds:.2}s ({:.0} rows/s)",
        failed.len(),
        if mode == Mode::Resume { format!(", {idle} with nothing to resume") } else { String::new() },
        rate(read, seconds),
    );
    if !failed.is_empty() {
        return Err(Error::TablesFailed { failed, of });
    }
    if interrupted > 0 {
        return Ok(super::Outcome::Interrupted);
    }
    if mode == Mode::Resume && done == 0 {
        return Err(StateError::NothingToResume {
            identity: format!("tables {}", set.describe()),
            why: "every table's pass finished (or none ever started)".into(),
        }
        .into());
    }
    Ok(super::Outcome::Done)
}
