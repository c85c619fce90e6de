//! The exact areas under the pending and running curves, in job·ms: the summary's time-averaged
//! levels. By Little's law on the sample path the pending area equals the sum of every job's
//! pending time (a proptest checks it, `sim/tests/it/invariants.rs`).
//!
//! Kept apart from [`crate::report::timeline::Timeline`] because a run that writes no files (a
//! sweep point) needs these two numbers and nothing of the timeline's rows.

use fleetsim_core::SimTime;

/// Integrates the pending and running levels over time.
#[derive(Debug, Clone, Copy, Default)]
pub struct LevelAreas {
    last_at: SimTime,
    pending: u32,
    running: u32,
    pending_area: u128,
    running_area: u128,
}

impl LevelAreas {
    /// The levels after an input at `now` (not before the last one's instant): the levels
    /// before it held since then.
    pub fn observe(&mut self, now: SimTime, pending: u32, running: u32) {
        let dt = u128::from(now - self.last_at);
        self.pending_area += dt * u128::from(self.pending);
        self.running_area += dt * u128::from(self.running);
        self.last_at = now;
        self.pending = pending;
        self.running = running;
    }

    /// The area under the pending curve up to the last input observed, in job·ms.
    pub fn pending_ms(&self) -> u128 {
        self.pending_area
    }

    /// The area under the running curve up to the last input observed, in job·ms.
    pub fn running_ms(&self) -> u128 {
        self.running_area
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_counts_from_its_input_to_the_next() {
        let mut a = LevelAreas::default();
        a.observe(SimTime(30_000), 2, 0); // 2 pending from 30 s
        a.observe(SimTime(90_000), 0, 1); // picked up at 90 s
        a.observe(SimTime(100_000), 0, 0); // done at 100 s
        assert_eq!((a.pending_ms(), a.running_ms()), (2 * 60_000, 10_000));
    }
}
