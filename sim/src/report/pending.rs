//! Pending-time statistics: an HDR histogram for percentiles (3 significant digits, so a
//! percentile is within 0.1 % of the exact value), exact sums for the mean and the split.

use fleetsim_core::JobRecord;
use hdrhistogram::Histogram;

/// The largest pending time the histogram resolves: 400 days in ms (larger values saturate).
const MAX_TRACKED_MS: u64 = 400 * 24 * 3600 * 1000;

/// Accumulates pending times of finished jobs.
#[derive(Debug, Clone)]
pub struct PendingStats {
    hist: Histogram<u64>,
    to_script: Histogram<u64>,
    failed: u64,
    retried: u64,
    machine_ms: u128,
    count: u64,
    sum_ms: u128,
    max_ms: u64,
    capacity_ms: u128,
    poll_ms: u128,
    waited: u64,
    waited_for_capacity: u64,
    run_ms: u128,
}

impl Default for PendingStats {
    fn default() -> Self {
        PendingStats {
            hist: Histogram::new_with_bounds(1, MAX_TRACKED_MS, 3).expect("valid HDR bounds"),
            to_script: Histogram::new_with_bounds(1, MAX_TRACKED_MS, 3).expect("valid HDR bounds"),
            failed: 0,
            retried: 0,
            machine_ms: 0,
            count: 0,
            sum_ms: 0,
            max_ms: 0,
            capacity_ms: 0,
            poll_ms: 0,
            waited: 0,
            waited_for_capacity: 0,
            run_ms: 0,
        }
    }
}

impl PendingStats {
    /// Adds one job run (finished or failed).
    pub fn record(&mut self, r: &JobRecord) {
        let p = r.pending_ms();
        if r.failed {
            self.failed += 1;
        } else {
            self.to_script.saturating_record(r.script_started - r.queued);
        }
        self.retried += u64::from(r.attempt > 1);
        self.machine_ms += u128::from(r.wait_machine_ms);
        self.hist.saturating_record(p);
        self.count += 1;
        self.sum_ms += u128::from(p);
        self.max_ms = self.max_ms.max(p);
        self.capacity_ms += u128::from(r.wait_capacity_ms);
        self.poll_ms += u128::from(r.wait_poll_ms);
        self.waited += u64::from(p > 0);
        self.waited_for_capacity += u64::from(r.wait_capacity_ms > 0);
        self.run_ms += u128::from(r.finished - r.started);
    }

    /// Jobs recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of all pending times, in ms.
    pub fn sum_ms(&self) -> u128 {
        self.sum_ms
    }

    /// Mean pending time in seconds (0 with no jobs).
    pub fn mean_s(&self) -> f64 {
        self.mean_of(self.sum_ms)
    }

    /// Mean time waiting for capacity, in seconds.
    pub fn mean_capacity_s(&self) -> f64 {
        self.mean_of(self.capacity_ms)
    }

    /// Mean time waiting for an idle machine while pending, in seconds.
    pub fn mean_machine_s(&self) -> f64 {
        self.mean_of(self.machine_ms)
    }

    /// Job runs that failed.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Job runs that were retries.
    pub fn retried(&self) -> u64 {
        self.retried
    }

    /// The `q` quantile of queued → script start, in seconds, over runs that did not fail.
    pub fn to_script_quantile_s(&self, q: f64) -> f64 {
        if self.to_script.is_empty() {
            0.0
        } else {
            self.to_script.value_at_quantile(q) as f64 / 1000.0
        }
    }

    /// Mean polling delay, in seconds.
    pub fn mean_poll_s(&self) -> f64 {
        self.mean_of(self.poll_ms)
    }

    /// Mean time from pick-up to finish, in seconds.
    pub fn mean_run_s(&self) -> f64 {
        self.mean_of(self.run_ms)
    }

    fn mean_of(&self, total_ms: u128) -> f64 {
        if self.count == 0 { 0.0 } else { round_ms(total_ms as f64 / self.count as f64) }
    }

    /// Share of jobs that waited at all (pending > 0).
    pub fn share_waited(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.waited as f64 / self.count as f64 }
    }

    /// Share of jobs that waited for capacity (a free worker or `limit` slot) at all.
    pub fn share_waited_for_capacity(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.waited_for_capacity as f64 / self.count as f64 }
    }

    /// The `q` quantile (0..=1) in seconds, from the histogram.
    pub fn quantile_s(&self, q: f64) -> f64 {
        if self.count == 0 { 0.0 } else { self.hist.value_at_quantile(q) as f64 / 1000.0 }
    }

    /// The longest pending time in seconds (exact).
    pub fn max_s(&self) -> f64 {
        self.max_ms as f64 / 1000.0
    }

    /// Fraction of jobs pending longer than `ms` (from the histogram).
    pub fn share_above_ms(&self, ms: u64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let at_most = self.hist.count_between(0, ms);
        (self.count - at_most) as f64 / self.count as f64
    }
}

/// Rounds a ms value to whole ms and returns seconds.
fn round_ms(ms: f64) -> f64 {
    ms.round() / 1000.0
}
