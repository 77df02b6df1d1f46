//! Retrying transient failures: capped exponential back-off for up to `--retry-for`. The
//! loop is pure over a `Clock`, so its schedule is unit-tested with a fake one; the real
//! clock sleeps through `shutdown::sleep`, which a SIGINT/SIGTERM cuts short.

use crate::error::Error;
use crate::runtime::shutdown;
use std::time::{Duration, Instant};

/// First pause after a transient failure.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest pause between two retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Time as the retry loop sees it.
pub trait Clock {
    /// Now.
    fn now(&mut self) -> Instant;
    /// Waits; false when SIGINT/SIGTERM cut the wait short.
    fn sleep(&mut self, pause: Duration) -> bool;
}

/// The process's clock; sleeps end early on SIGINT/SIGTERM.
pub struct RealClock;

impl Clock for RealClock {
    fn now(&mut self) -> Instant {
        Instant::now()
    }

    fn sleep(&mut self, pause: Duration) -> bool {
        shutdown::sleep(pause)
    }
}

/// How a retried attempt ended when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub enum Retried<T> {
    /// An attempt returned this.
    Done(T),
    /// SIGINT/SIGTERM arrived during a back-off pause.
    Interrupted,
}

/// Runs `attempt` until it succeeds, fails permanently, or the next pause would end after
/// `retry_for` from now; `before_pause` hears of each transient error and the pause that
/// follows it.
pub fn with_retries<T>(
    clock: &mut impl Clock,
    retry_for: Duration,
    mut attempt: impl FnMut() -> Result<T, Error>,
    mut before_pause: impl FnMut(&Error, Duration),
) -> Result<Retried<T>, Error> {
    let deadline = clock.now() + retry_for;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match attempt() {
            Ok(value) => return Ok(Retried::Done(value)),
            Err(e) if e.is_transient() && clock.now() + backoff < deadline => {
                before_pause(&e, backoff);
                if !clock.sleep(backoff) {
                    return Ok(Retried::Interrupted);
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{DbError, DbErrorKind, Side};

    /// Time moves only when the loop sleeps; `interrupt_at` makes that sleep fail.
    struct FakeClock {
        now: Instant,
        pauses: Vec<Duration>,
        interrupt_at: Option<usize>,
    }

    impl FakeClock {
        fn new() -> Self {
            FakeClock {
                now: Instant::now(),
                pauses: Vec::new(),
                interrupt_at: None,
            }
        }
    }

    impl Clock for FakeClock {
        fn now(&mut self) -> Instant {
            self.now
        }

        fn sleep(&mut self, pause: Duration) -> bool {
            if self.interrupt_at == Some(self.pauses.len()) {
                return false;
            }
            self.pauses.push(pause);
            self.now += pause;
            true
        }
    }

    fn lost() -> Error {
        Error::Db(DbError::other(
            Side::Source,
            DbErrorKind::ConnectionLost,
            "reading a window",
            "connection reset",
        ))
    }

    fn permanent() -> Error {
        Error::Usage("no".into())
    }

    #[test]
    fn transient_failures_back_off_exponentially_up_to_the_cap() {
        let mut clock = FakeClock::new();
        let mut failures = 9;
        let result = with_retries(
            &mut clock,
            Duration::from_secs(3600),
            || {
                if failures == 0 {
                    return Ok("done");
                }
                failures -= 1;
                Err(lost())
            },
            |_, _| {},
        )
        .unwrap();
        assert_eq!(result, Retried::Done("done"));
        let secs: Vec<f64> = clock.pauses.iter().map(Duration::as_secs_f64).collect();
        assert_eq!(secs, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
    }

    #[test]
    fn the_error_returns_when_the_next_pause_would_outlast_retry_for() {
        let mut clock = FakeClock::new();
        let mut attempts = 0;
        let result = with_retries(
            &mut clock,
            Duration::from_secs(5),
            || -> Result<(), Error> {
                attempts += 1;
                Err(lost())
            },
            |_, _| {},
        );
        assert!(result.unwrap_err().is_transient());
        // Pauses 0.5 + 1 + 2 = 3.5 s; the next (4 s) would end past 5 s.
        assert_eq!(clock.pauses.len(), 3);
        assert_eq!(attempts, 4);
    }

    #[test]
    fn a_permanent_error_returns_at_once() {
        let mut clock = FakeClock::new();
        let result = with_retries(
            &mut clock,
            Duration::from_secs(3600),
            || -> Result<(), Error> { Err(permanent()) },
            |_, _| panic!("no pause for a permanent error"),
        );
        assert!(matches!(result, Err(Error::Usage(_))));
        assert!(clock.pauses.is_empty());
    }

    #[test]
    fn an_interrupt_during_a_pause_is_an_outcome_not_an_error() {
        let mut clock = FakeClock::new();
        clock.interrupt_at = Some(1);
        let mut told = Vec::new();
        let result = with_retries(
            &mut clock,
            Duration::from_secs(3600),
            || -> Result<(), Error> { Err(lost()) },
            |e, pause| told.push((e.to_string(), pause)),
        )
        .unwrap();
        assert_eq!(result, Retried::Interrupted);
        assert_eq!(told.len(), 2);
        assert_eq!(told[1].1, Duration::from_secs(1));
    }

    #[test]
    fn no_retry_when_retry_for_is_zero() {
        let mut clock = FakeClock::new();
        let result = with_retries(
            &mut clock,
            Duration::ZERO,
            || -> Result<(), Error> { Err(lost()) },
            |_, _| {},
        );
        assert!(result.is_err());
        assert!(clock.pauses.is_empty());
    }
}
