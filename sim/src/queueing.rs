//! Queueing-theory oracles used to validate the simulator (M/M/c, Erlang C).
//!
//! λ: arrival rate, μ: service rate of one server, c: servers, a = λ/μ, ρ = a/c < 1.

/// Erlang C: the probability that an arriving job waits, `C(c, a)`.
/// Computed with the numerically stable Erlang B recursion, `C = B / (1 − ρ(1 − B))`.
pub fn erlang_c(c: u32, a: f64) -> f64 {
    assert!(c > 0 && a >= 0.0 && a < f64::from(c), "needs ρ = a/c < 1");
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
    }
    let rho = a / f64::from(c);
    b / (1.0 - rho * (1.0 - b))
}

/// Mean wait in queue of M/M/c: `Wq = C / (cμ − λ)`, in the time unit of the rates.
pub fn mmc_mean_wait(lambda: f64, mu: f64, c: u32) -> f64 {
    erlang_c(c, lambda / mu) / (f64::from(c) * mu - lambda)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_worked_values_of_the_reference() {
        // λ=0.2, μ=0.1, c=3 → C = 0.4444, Wq = 4.444
        assert!((erlang_c(3, 2.0) - 0.4444).abs() < 1e-4);
        assert!((mmc_mean_wait(0.2, 0.1, 3) - 4.444).abs() < 1e-3);
        // λ=30/h, mean 5 min, c=6 → C = 0.0474
        assert!((erlang_c(6, 2.5) - 0.0474).abs() < 1e-4);
        // 60 jobs/h of 10 min: c = 11/12/13/15 → P(wait) .682/.449/.285/.102
        for (c, p, wq_min) in
            [(11, 0.682, 6.82), (12, 0.449, 2.25), (13, 0.285, 0.95), (15, 0.102, 0.20)]
        {
            assert!((erlang_c(c, 10.0) - p).abs() < 1e-3, "c={c}");
            assert!((mmc_mean_wait(1.0, 0.1, c) - wq_min).abs() < 0.01, "c={c}");
        }
    }
}
