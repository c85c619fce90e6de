//! Autoscaling periods as the core sees them: which section is active at an instant.
//!
//! Cron expressions and time zones are calendar and file-format concerns, so the driver
//! implements this trait (the simulator with `fleetsim::periods`); the core only asks which
//! section applies at an `Acquire`, and when that answer may next change (so the fast path
//! never skips an offer at which the idle target changed).

use crate::time::SimTime;

/// Which autoscaling section is active when.
pub trait PeriodSchedule: std::fmt::Debug {
    /// The index of the active section at `now` (the last matching section wins), or `None`
    /// when no section matches and the root values apply.
    fn active(&mut self, now: SimTime) -> Option<usize>;

    /// An instant after `now` at or before which the active section may next change: never
    /// later than the real change (earlier is allowed, it only costs a wasted look). `None`
    /// if it never changes.
    fn next_change_after(&mut self, now: SimTime) -> Option<SimTime>;
}

/// A schedule with no sections: the root values always apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPeriods;

impl PeriodSchedule for NoPeriods {
    fn active(&mut self, _: SimTime) -> Option<usize> {
        None
    }

    fn next_change_after(&mut self, _: SimTime) -> Option<SimTime> {
        None
    }
}
