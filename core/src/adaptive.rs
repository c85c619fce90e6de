//! Adaptive request concurrency (`FF_USE_ADAPTIVE_REQUEST_CONCURRENCY`, §1.4): an AIMD
//! value per runner that caps simultaneous job requests below `request_concurrency`.

/// Multiplier after a request that received a job.
pub const INCREASE: f64 = 1.1;
/// Multiplier after an empty or failed request.
pub const DECREASE: f64 = 0.95;

/// The AIMD state of one runner. Starts at 0, so the first cap is 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptive {
    value: f64,
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive { value: 0.0 }
    }
}

impl Adaptive {
    /// The current value (for tests and reports).
    pub fn value(self) -> f64 {
        self.value
    }

    /// Updates after a finished request. (The ×0.5 on HTTP-level retries never happens in
    /// the model: GitLab does not push back on job requests here.)
    pub fn after_request(&mut self, got_job: bool, ceiling: u32) {
        let factor = if got_job { INCREASE } else { DECREASE };
        self.value = (self.value * factor).clamp(1.0, f64::from(ceiling.max(1)));
    }

    /// Applies `count` empty requests, stopping early once the value no longer changes (it
    /// sits at the floor of 1), so a long idle stretch costs a handful of steps at most.
    pub fn after_empty_requests(&mut self, count: u64, ceiling: u32) {
        for _ in 0..count {
            let before = self.value;
            self.after_request(false, ceiling);
            if self.value == before {
                break;
            }
        }
    }

    /// Whether the value sits at its floor of 1, where an empty request changes nothing.
    pub fn at_floor(self) -> bool {
        self.value == 1.0 // exact: the clamp sets it to 1.0 itself
    }

    /// The effective request cap: `clamp(ceil(value), 1, request_concurrency)`.
    pub fn cap(self, ceiling: u32) -> u32 {
        let ceiling = ceiling.max(1);
        (self.value.ceil() as u32).clamp(1, ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_one_and_grows_by_a_tenth_per_job() {
        let mut a = Adaptive::default();
        assert_eq!(a.cap(4), 1);
        a.after_request(true, 4); // 0 × 1.1 → clamped to the floor 1
        assert_eq!(a.value(), 1.0);
        a.after_request(true, 4); // 1.1 → cap 2
        assert_eq!(a.cap(4), 2);
        a.after_request(false, 4);
        assert!((a.value() - 1.045).abs() < 1e-12);
        assert_eq!(a.cap(1), 1);
    }

    #[test]
    fn batch_of_empty_requests_equals_one_by_one() {
        let mut a = Adaptive::default();
        for _ in 0..30 {
            a.after_request(true, 8);
        }
        let mut b = a;
        a.after_empty_requests(1000, 8);
        for _ in 0..1000 {
            b.after_request(false, 8);
        }
        assert_eq!(a, b);
        assert_eq!(a.value(), 1.0);
    }
}
