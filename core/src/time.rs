//! Simulated time: integer milliseconds since the start of the run.
//!
//! The core never reads a clock. Every call into it carries `now`, so the same code runs on the
//! simulator's event clock and on the live driver's scaled wall clock.

use std::fmt;
use std::ops::{Add, Sub};

/// An instant of the run: milliseconds since the run started (the trace origin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of the run.
    pub const ZERO: SimTime = SimTime(0);

    /// Milliseconds since the start of the run.
    pub const fn as_ms(self) -> u64 {
        self.0
    }

    /// Builds an instant from whole seconds (handy in tests and hand-worked timelines).
    pub const fn from_secs(secs: u64) -> SimTime {
        SimTime(secs * 1000)
    }

    /// Seconds since the start of the run, as a float (for reports only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Milliseconds from `earlier` to `self`, or 0 when `earlier` is later.
    pub fn saturating_since(self, earlier: SimTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<u64> for SimTime {
    type Output = SimTime;
    /// Adds a number of milliseconds, saturating at the end of time: a delay read from a
    /// hostile input (`check_interval = 9223372036854775807`) must not wrap the clock around
    /// to the past. The simulator stops such a run as stalled long before.
    fn add(self, ms: u64) -> SimTime {
        SimTime(self.0.saturating_add(ms))
    }
}

impl Sub for SimTime {
    type Output = u64;
    /// Milliseconds between two instants; panics (a broken invariant) if `rhs` is later.
    fn sub(self, rhs: SimTime) -> u64 {
        assert!(rhs <= self, "time went backwards: {rhs:?} is after {self:?}");
        self.0 - rhs.0
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_in_milliseconds() {
        let t = SimTime::from_secs(3) + 250;
        assert_eq!(t.as_ms(), 3250);
        assert_eq!(t - SimTime::from_secs(1), 2250);
        assert_eq!(SimTime(5).saturating_since(SimTime(9)), 0);
        assert_eq!(t.to_string(), "3.250s");
    }

    #[test]
    #[should_panic(expected = "time went backwards")]
    fn subtracting_a_later_instant_is_a_bug() {
        let _ = SimTime(1) - SimTime(2);
    }
}
