//! Where a run starts, decided from the state store's pass record and the destination's
//! receipts for the job's latest pass. The destination wins, slice by slice: a receipt the
//! state missed means the window committed (it is not copied again); a window the state
//! marked committed without a receipt did not (it is copied again). Pure logic, no I/O.

use crate::keyspace::Position;
use crate::protocol::receipts::PassReceipts;
use crate::state::records::{PassRecord, SliceProgress};

/// How the next run begins.
#[derive(Debug, Clone, PartialEq)]
pub enum StartPoint {
    /// Continue this recorded pass (already corrected from the receipts).
    Continue(PassRecord),
    /// Continue a pass known only from the receipts: slices are planned again from `from`.
    Rebuild {
        pass: u64,
        /// Position after the last committed window.
        from: Position,
        /// The pass's upper bound.
        upper: Option<String>,
        next_window: u64,
    },
    /// Start a new pass; `lower: None` means "fall back to the destination's max cursor".
    New {
        pass: u64,
        /// Lower bound, if known.
        lower: Option<Position>,
    },
}

/// The decision and, when state and destination disagreed, a note for the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconciled {
    pub start: StartPoint,
    /// What was corrected, if anything.
    pub note: Option<String>,
}

/// Decides where to start. `state` is `None` when the store has no (readable) pass record.
pub fn reconcile(state: Option<PassRecord>, receipts: Option<PassReceipts>) -> Reconciled {
    let ok = |start| Reconciled { start, note: None };
    let noted = |start, note: String| Reconciled {
        start,
        note: Some(note),
    };
    match (receipts, state) {
        (Some(r), Some(p)) if r.last.pass == p.number => {
            if r.finished {
                let start = StartPoint::New { pass: p.number + 1, lower: r.last.pass_upper.clone().map(Position::AfterCursor) };
                if p.is_finished() {
                    ok(start)
                } else {
                    noted(start, format!("pass {} had finished in the destination; the state had missed its last window", p.number))
                }
            } else {
                let (p, note) = correct_slices(p, &r);
                Reconciled { start: StartPoint::Continue(p), note }
            }
        }
        (Some(r), Some(p)) if p.number > r.last.pass && p.windows_committed == 0 && !p.is_finished() => ok(StartPoint::Continue(p)),
        (Some(r), state) => {
            let last = &r.last;
            let why = match &state {
                None => "the state has no record of this job".to_string(),
                Some(p) => format!("the state is at pass {} but the destination's receipts are at pass {}", p.number, last.pass),
            };
            if r.finished {
                let pass = state.map_or(last.pass, |p| p.number.max(last.pass)) + 1;
                noted(
                    StartPoint::New { pass, lower: last.pass_upper.clone().map(Position::AfterCursor) },
                    format!("{why}; starting after pass {} as the receipts record it", last.pass),
                )
            } else {
                noted(
                    StartPoint::Rebuild { pass: last.pass, from: r.resume_from(), upper: last.pass_upper.clone(), next_window: last.window + 1 },
                    format!("{why}; continuing pass {} from the receipts' last point up to which every window committed", last.pass),
                )
            }
        }
        (None, Some(p)) if p.windows_committed == 0 && !p.is_finished() => ok(StartPoint::Continue(p)),
        (None, Some(p)) => noted(
            StartPoint::New { pass: p.number + 1, lower: None },
            "the state records committed windows but the destination has no receipts for this job (was it reset?); \
             starting from the destination's own max cursor"
                .to_string(),
        ),
        (None, None) => ok(StartPoint::New { pass: 1, lower: None }),
    }
}

/// Corrects each slice of the recorded pass from its last receipt: a window the state
/// missed is taken as committed, a window the destination does not have is copied again.
fn correct_slices(mut p: PassRecord, r: &PassReceipts) -> (PassRecord, Option<String>) {
    let (mut missed, mut lost) = (0u64, 0u64);
    for (i, progress) in p.progress.iter_mut().enumerate() {
        let corrected = match (r.slice(i), progress.last_window) {
            // The same last window on both sides, or a slice done on both (a state converted
            // from an older release does not know the numbers of finished slices' windows).
            (Some(rec), Some(w)) if rec.window == w => continue,
            (Some(rec), None) if progress.done && rec.slice_done => {
                progress.last_window = Some(rec.window);
                continue;
            }
            (None, None) if !progress.done => continue,
            (Some(rec), known) => {
                if !progress.done && known.is_none_or(|w| rec.window > w) {
                    missed += 1;
                } else {
                    lost += 1;
                }
                SliceProgress {
                    position: rec.end.clone(),
                    done: rec.slice_done,
                    last_window: Some(rec.window),
                }
            }
            (None, _) => {
                lost += 1;
                SliceProgress::untouched(&p.slices[i])
            }
        };
        *progress = corrected;
    }
    // Windows, not slices: a slice may have committed several windows the state missed
    // (its checkpoints wait in the flusher); the receipts count them (not the receipt that
    // closes a pass, whose slice index is past the last slice).
    if missed > 0 && !r.windows_per_slice.is_empty() {
        let in_receipts: u64 = r
            .windows_per_slice
            .iter()
            .filter(|(slice, _)| **slice < p.slices.len())
            .map(|(_, n)| n)
            .sum();
        missed = missed.max(in_receipts.saturating_sub(p.windows_committed));
    }
    p.windows_committed += missed;
    p.windows_reconciled += missed;
    p.next_window = p.next_window.max(r.last.window + 1);
    let mut notes = Vec::new();
    if missed > 0 {
        notes.push(format!("{missed} window(s) committed in the destination were missing from the state; not copying them again"));
    }
    if lost > 0 {
        notes.push(format!(
            "the state recorded windows in {lost} slice(s) that the destination's receipts do not have; copying those slices from the receipts' end"
        ));
    }
    (p, (!notes.is_empty()).then(|| notes.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{Slice, SliceKind};
    use crate::protocol::receipts::{Receipt, Resume};

    /// A pass of two slices: slices before `current_slice` done, windows numbered in order,
    /// the last committed one (`next_window - 1`) in the current slice.
    fn pass(no: u64, next_window: u64, current_slice: usize) -> PassRecord {
        let slice = |lower: Position, upper: &str| Slice {
            lower,
            kind: SliceKind::Range {
                upper: upper.into(),
            },
            estimated_rows: 10,
        };
        let slices = vec![
            slice(Position::Start, "10"),
            slice(Position::AfterCursor("10".into()), "20"),
        ];
        let progress = slices
            .iter()
            .enumerate()
            .map(|(i, s)| SliceProgress {
                position: s.lower.clone(),
                done: i < current_slice,
                last_window: (i == current_slice && next_window > 0).then(|| next_window - 1),
            })
            .collect();
        PassRecord {
            number: no,
            lower: Position::Start,
            upper: Some("20".into()),
            slices,
            progress,
            next_window,
            rows_read: 0,
            rows_written: 0,
            windows_committed: next_window,
            windows_reconciled: 0,
            started_unix: 0,
            seconds_before: 0.0,
            apply: crate::state::records::ApplyMode::Upsert,
        }
    }

    fn receipt(
        pass: u64,
        window: u64,
        slice: usize,
        slice_done: bool,
        pass_finished: bool,
    ) -> Receipt {
        Receipt {
            pass,
            window,
            slice,
            end: if slice_done {
                Position::AfterCursor("10".into())
            } else {
                Position::AfterKey {
                    cursor: "7".into(),
                    key: vec!["k".into()],
                }
            },
            slice_done,
            pass_finished,
            pass_upper: Some("20".into()),
            rows_read: 1,
            rows_written: 1,
            resume: None,
        }
    }

    fn one(r: Receipt) -> Option<PassReceipts> {
        PassReceipts::from_slices(vec![r], None)
    }

    #[test]
    fn a_receipt_the_state_missed_is_not_copied_again() {
        // Killed after the destination COMMIT of window 3, before the state heard of it.
        let r = reconcile(Some(pass(1, 3, 0)), one(receipt(1, 3, 0, false, false)));
        let StartPoint::Continue(p) = r.start else {
            panic!("{r:?}")
        };
        assert_eq!(p.next_window, 4);
        assert_eq!(p.windows_reconciled, 1);
        assert_eq!(
            p.position(),
            Position::AfterKey {
                cursor: "7".into(),
                key: vec!["k".into()]
            }
        );
        assert!(r.note.is_some());
    }

    #[test]
    fn a_finished_slice_moves_to_the_next_slice_start() {
        let StartPoint::Continue(p) =
            reconcile(Some(pass(1, 2, 0)), one(receipt(1, 2, 0, true, false))).start
        else {
            panic!()
        };
        assert_eq!(
            (p.current_slice(), p.position()),
            (1, Position::AfterCursor("10".into()))
        );
    }

    #[test]
    fn the_destination_wins_when_the_state_is_ahead() {
        let r = reconcile(Some(pass(1, 9, 1)), one(receipt(1, 3, 0, false, false)));
        let StartPoint::Continue(p) = r.start else {
            panic!()
        };
        assert_eq!((p.next_window, p.current_slice()), (9, 0));
        assert_eq!(p.progress[1], SliceProgress::untouched(&p.slices[1]));
        assert!(r
            .note
            .unwrap()
            .contains("copying those slices from the receipts' end"));
    }

    #[test]
    fn lost_state_continues_from_the_receipts() {
        let r = reconcile(None, one(receipt(4, 7, 0, false, false)));
        assert!(
            matches!(
                r.start,
                StartPoint::Rebuild {
                    pass: 4,
                    next_window: 8,
                    ..
                }
            ),
            "{r:?}"
        );
        let r = reconcile(None, one(receipt(4, 7, 1, true, true)));
        assert_eq!(
            r.start,
            StartPoint::New {
                pass: 5,
                lower: Some(Position::AfterCursor("20".into()))
            }
        );
    }

    #[test]
    fn no_receipts_and_committed_state_means_the_destination_was_reset() {
        let r = reconcile(Some(pass(2, 5, 1)), None);
        assert_eq!(
            r.start,
            StartPoint::New {
                pass: 3,
                lower: None
            }
        );
        let fresh = reconcile(None, None);
        assert_eq!(
            fresh,
            Reconciled {
                start: StartPoint::New {
                    pass: 1,
                    lower: None
                },
                note: None
            }
        );
    }

    #[test]
    fn a_planned_pass_with_nothing_committed_is_continued() {
        let p = pass(3, 0, 0);
        assert_eq!(
            reconcile(Some(p.clone()), one(receipt(2, 9, 1, true, true))).start,
            StartPoint::Continue(p)
        );
    }

    #[test]
    fn parallel_slices_are_corrected_one_by_one() {
        // --jobs 2: slice 0 in step with the state, slice 1's window 6 committed in the
        // destination but killed before its checkpoint.
        let mut p = pass(1, 7, 0);
        p.progress[0].last_window = Some(5);
        p.progress[1].last_window = Some(4);
        let mut r0 = receipt(1, 5, 0, false, false);
        r0.end = Position::AfterKey {
            cursor: "5".into(),
            key: vec!["a".into()],
        };
        p.progress[0].position = r0.end.clone();
        let r1 = receipt(1, 6, 1, false, false);
        let r = reconcile(
            Some(p),
            PassReceipts::from_slices(vec![r0.clone(), r1.clone()], None),
        );
        let StartPoint::Continue(p) = r.start else {
            panic!("{r:?}")
        };
        assert_eq!(p.progress[0].position, r0.end);
        assert_eq!(
            (p.progress[1].position.clone(), p.progress[1].last_window),
            (r1.end, Some(6))
        );
        assert_eq!((p.windows_reconciled, p.next_window), (1, 7));
        assert!(r.note.unwrap().contains("1 window(s)"));
    }

    #[test]
    fn lost_state_of_a_parallel_pass_goes_on_from_the_best_resume_point() {
        // Slice 1 is ahead of slice 0: its end is no safe place to go on from.
        let r0 = receipt(3, 4, 0, false, false);
        let mut r1 = receipt(3, 5, 1, false, false);
        r1.end = Position::AfterKey {
            cursor: "15".into(),
            key: vec!["z".into()],
        };
        let resume = Resume {
            rank: 4,
            from: Position::AfterCursor("2".into()),
        };
        let r = reconcile(None, PassReceipts::from_slices(vec![r0, r1], Some(resume)));
        assert_eq!(
            r.start,
            StartPoint::Rebuild {
                pass: 3,
                from: Position::AfterCursor("2".into()),
                upper: Some("20".into()),
                next_window: 6
            }
        );
    }

    #[test]
    fn all_slices_done_without_a_finishing_receipt_continues_to_the_end() {
        // Both slices' last windows committed at once; killed before the closing receipt.
        let mut p = pass(2, 9, 0);
        p.progress[0] = SliceProgress {
            position: Position::AfterCursor("10".into()),
            done: true,
            last_window: Some(7),
        };
        let r = reconcile(
            Some(p),
            PassReceipts::from_slices(
                vec![receipt(2, 7, 0, true, false), receipt(2, 8, 1, true, false)],
                None,
            ),
        );
        let StartPoint::Continue(p) = r.start else {
            panic!("{r:?}")
        };
        assert!(p.is_finished());
    }
}
