//! Where a run starts, decided from the state store's pass record and the destination's
//! last receipt for the job. The destination wins: a receipt the state missed means the
//! window committed (it is not copied again); a window the state marked committed without a
//! receipt did not (it is copied again). Pure logic, no I/O.

use crate::plan::Position;
use crate::receipts::Receipt;
use crate::state::records::PassRecord;

/// How the next run begins.
#[derive(Debug, Clone, PartialEq)]
pub enum StartPoint {
    /// Continue this recorded pass (already corrected from the receipts).
    Continue(PassRecord),
    /// Continue a pass known only from the receipts: slices are planned again from `from`.
    Rebuild {
        /// Pass number.
        pass: u64,
        /// Position after the last committed window.
        from: Position,
        /// The pass's upper bound.
        upper: Option<String>,
        /// Next window number.
        next_window: u64,
    },
    /// Start a new pass; `lower: None` means "fall back to the destination's max cursor".
    New {
        /// Pass number.
        pass: u64,
        /// Lower bound, if known.
        lower: Option<Position>,
    },
}

/// The decision and, when state and destination disagreed, a note for the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconciled {
    /// Where to start.
    pub start: StartPoint,
    /// What was corrected, if anything.
    pub note: Option<String>,
}

/// Decides where to start. `state` is `None` when the store has no (readable) pass record.
pub fn reconcile(state: Option<PassRecord>, receipt: Option<Receipt>) -> Reconciled {
    let ok = |start| Reconciled { start, note: None };
    let noted = |start, note: String| Reconciled {
        start,
        note: Some(note),
    };
    match (receipt, state) {
        (Some(r), Some(p)) if r.pass == p.pass => {
            if r.pass_finished {
                let start = StartPoint::New { pass: p.pass + 1, lower: r.pass_upper.clone().map(Position::AfterCursor) };
                if p.is_finished() {
                    ok(start)
                } else {
                    noted(start, format!("pass {} had finished in the destination; the state had missed its last window", p.pass))
                }
            } else {
                let mut p = p;
                let receipt_next = r.window + 1;
                let note = match receipt_next.cmp(&p.next_window) {
                    std::cmp::Ordering::Equal => None,
                    std::cmp::Ordering::Greater => {
                        let missed = receipt_next - p.next_window;
                        p.windows_reconciled += missed;
                        p.windows_committed += missed;
                        Some(format!("{missed} window(s) committed in the destination were missing from the state; not copying them again"))
                    }
                    std::cmp::Ordering::Less => Some(format!(
                        "the state recorded windows up to {} but the destination's receipts end at {}; copying from the receipts' end",
                        p.next_window.saturating_sub(1),
                        r.window
                    )),
                };
                p.next_window = receipt_next;
                p.current_slice = r.slice + usize::from(r.slice_done);
                p.position = match (r.slice_done, p.slices.get(p.current_slice)) {
                    (true, Some(next)) => next.lower.clone(),
                    _ => r.end.clone(),
                };
                Reconciled { start: StartPoint::Continue(p), note }
            }
        }
        (Some(r), Some(p)) if p.pass > r.pass && p.windows_committed == 0 && !p.is_finished() => ok(StartPoint::Continue(p)),
        (Some(r), state) => {
            let why = match &state {
                None => "the state has no record of this job".to_string(),
                Some(p) => format!("the state is at pass {} but the destination's receipts are at pass {}", p.pass, r.pass),
            };
            if r.pass_finished {
                let pass = state.map_or(r.pass, |p| p.pass.max(r.pass)) + 1;
                noted(
                    StartPoint::New { pass, lower: r.pass_upper.clone().map(Position::AfterCursor) },
                    format!("{why}; starting after pass {} as the receipts record it", r.pass),
                )
            } else {
                noted(
                    StartPoint::Rebuild { pass: r.pass, from: r.end.clone(), upper: r.pass_upper.clone(), next_window: r.window + 1 },
                    format!("{why}; continuing pass {} after window {} as the receipts record it", r.pass, r.window),
                )
            }
        }
        (None, Some(p)) if p.windows_committed == 0 && !p.is_finished() => ok(StartPoint::Continue(p)),
        (None, Some(p)) => noted(
            StartPoint::New { pass: p.pass + 1, lower: None },
            "the state records committed windows but the destination has no receipts for this job (was it reset?); \
             starting from the destination's own max cursor"
                .to_string(),
        ),
        (None, None) => ok(StartPoint::New { pass: 1, lower: None }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Slice, SliceKind};

    fn pass(no: u64, next_window: u64, current_slice: usize) -> PassRecord {
        let slice = |lower: Position, upper: &str| Slice {
            lower,
            kind: SliceKind::Range {
                upper: upper.into(),
            },
            estimated_rows: 10,
        };
        PassRecord {
            pass: no,
            lower: Position::Start,
            upper: Some("20".into()),
            slices: vec![
                slice(Position::Start, "10"),
                slice(Position::AfterCursor("10".into()), "20"),
            ],
            current_slice,
            position: Position::Start,
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
        }
    }

    #[test]
    fn a_receipt_the_state_missed_is_not_copied_again() {
        // Killed after the destination COMMIT of window 3, before the state heard of it.
        let r = reconcile(Some(pass(1, 3, 0)), Some(receipt(1, 3, 0, false, false)));
        let StartPoint::Continue(p) = r.start else {
            panic!("{r:?}")
        };
        assert_eq!(p.next_window, 4);
        assert_eq!(p.windows_reconciled, 1);
        assert_eq!(
            p.position,
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
            reconcile(Some(pass(1, 2, 0)), Some(receipt(1, 2, 0, true, false))).start
        else {
            panic!()
        };
        assert_eq!(
            (p.current_slice, p.position),
            (1, Position::AfterCursor("10".into()))
        );
    }

    #[test]
    fn the_destination_wins_when_the_state_is_ahead() {
        let r = reconcile(Some(pass(1, 9, 1)), Some(receipt(1, 3, 0, false, false)));
        let StartPoint::Continue(p) = r.start else {
            panic!()
        };
        assert_eq!((p.next_window, p.current_slice), (4, 0));
        assert!(r.note.unwrap().contains("copying from the receipts' end"));
    }

    #[test]
    fn lost_state_continues_from_the_receipts() {
        let r = reconcile(None, Some(receipt(4, 7, 0, false, false)));
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
        let r = reconcile(None, Some(receipt(4, 7, 1, true, true)));
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
            reconcile(Some(p.clone()), Some(receipt(2, 9, 1, true, true))).start,
            StartPoint::Continue(p)
        );
    }
}
