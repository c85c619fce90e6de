//! Validation against queueing theory: with immediate pick-up, one runner with `concurrent =
//! c` under Poisson arrivals and exponential durations is an M/M/c queue, so the share of
//! jobs that wait must match Erlang C and the mean wait must match `C / (cμ − λ)`.
//!
//! Tolerances: each case simulates `JOBS` jobs with a fixed seed. The estimator's relative
//! error grows near saturation (strong autocorrelation), so the bound is 3 % (absolute, on
//! P(wait)) and 10 % (relative, on the mean wait) at ρ ≥ 0.85, 2.5 % / 7 % below.
//! `cargo test -p fleetsim --release -- erlang --nocapture` prints the table.

use fleetsim::engine::{CollectRecords, Engine, ListSource};
use fleetsim::queueing::{erlang_c, mmc_mean_wait};
use fleetsim::seeds::SeedTree;
use fleetsim_core::spec::{FleetSpec, Pickup};
use fleetsim_core::{Fleet, JobId, JobSpec, ProjectId, TagSetId};
use rand_distr::{Distribution, Exp};

const JOBS: u64 = 200_000;

struct Outcome {
    p_wait: f64,
    mean_wait_s: f64,
}

/// Simulates M/M/c: rates per second.
fn simulate(lambda: f64, mu: f64, c: u32, pickup: Pickup, seed: u64) -> Outcome {
    let seeds = SeedTree::new(seed);
    let mut arrivals = seeds.stream("arrivals");
    let mut service = seeds.stream("durations");
    let (inter, dur) = (Exp::new(lambda).unwrap(), Exp::new(mu).unwrap());
    let mut t = 0.0f64;
    let jobs: Vec<(u64, JobSpec)> = (1..=JOBS)
        .map(|id| {
            t += inter.sample(&mut arrivals);
            let d = dur.sample(&mut service);
            let spec = JobSpec {
                id: JobId(id),
                project: ProjectId(1),
                tags: TagSetId::UNTAGGED,
                duration_ms: ((d * 1000.0).round() as u64).max(1),
                retry: 0,
                work: Default::default(),
            };
            ((t * 1000.0).round() as u64, spec)
        })
        .collect();
    let mut fleet = Fleet::new(FleetSpec::single_docker(c, pickup));
    let mut records = CollectRecords::default();
    Engine::new().run(&mut fleet, &mut ListSource::new(jobs), &mut records).unwrap();
    let n = records.records.len() as f64;
    let waited = records.records.iter().filter(|r| r.pending_ms() > 0).count() as f64;
    let total_wait: u64 = records.records.iter().map(|r| r.pending_ms()).sum();
    Outcome { p_wait: waited / n, mean_wait_s: total_wait as f64 / 1000.0 / n }
}

/// `(λ per s, μ per s, c)`: the reference's worked cases plus a high-load one.
const CASES: [(f64, f64, u32); 6] = [
    (0.2, 0.1, 3),                   // ρ = 0.67, C = 0.4444, Wq = 4.444 s
    (30.0 / 3600.0, 1.0 / 300.0, 6), // ρ = 0.42, C = 0.0474
    (1.0 / 60.0, 1.0 / 600.0, 15),   // ρ = 0.67
    (1.0 / 60.0, 1.0 / 600.0, 13),   // ρ = 0.77
    (1.0 / 60.0, 1.0 / 600.0, 12),   // ρ = 0.83
    (1.0 / 60.0, 1.0 / 600.0, 11),   // ρ = 0.91
];

#[test]
fn immediate_pickup_matches_erlang_c() {
    println!(
        "| c | ρ | P(wait) Erlang C | P(wait) sim | Wq theory (s) | Wq sim (s) | rel. error |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, &(lambda, mu, c)) in CASES.iter().enumerate() {
        let rho = lambda / mu / f64::from(c);
        let p = erlang_c(c, lambda / mu);
        let wq = mmc_mean_wait(lambda, mu, c);
        let sim = simulate(lambda, mu, c, Pickup::Immediate, 1000 + i as u64);
        let rel = (sim.mean_wait_s - wq) / wq;
        println!(
            "| {c} | {rho:.2} | {p:.4} | {:.4} | {wq:.2} | {:.2} | {:+.1} % |",
            sim.p_wait,
            sim.mean_wait_s,
            rel * 100.0
        );
        let (p_tol, w_tol) = if rho >= 0.85 { (0.03, 0.10) } else { (0.025, 0.07) };
        assert!((sim.p_wait - p).abs() < p_tol, "c={c} ρ={rho:.2}: P(wait) {} vs {p}", sim.p_wait);
        assert!(rel.abs() < w_tol, "c={c} ρ={rho:.2}: Wq {} vs {wq}", sim.mean_wait_s);
    }
}

#[test]
fn polling_costs_more_than_immediate_pickup_at_high_load() {
    // The same M/M/c workload through GitLab Runner's polling loop: every pick-up waits for
    // an offer, so the mean wait is above the Erlang C value (reference: about 8 % at c = 8,
    // ρ = 0.9, with 3 s polling and minute-long jobs). Here: c = 8, ρ = 0.9, 60 s jobs.
    let (lambda, mu, c) = (0.9 * 8.0 / 60.0, 1.0 / 60.0, 8);
    let immediate = simulate(lambda, mu, c, Pickup::Immediate, 7);
    let polling = simulate(lambda, mu, c, Pickup::Polling, 7);
    println!(
        "c={c} ρ=0.9: mean wait immediate {:.2} s, polling {:.2} s ({:+.1} %)",
        immediate.mean_wait_s,
        polling.mean_wait_s,
        (polling.mean_wait_s / immediate.mean_wait_s - 1.0) * 100.0
    );
    let ratio = polling.mean_wait_s / immediate.mean_wait_s;
    assert!(
        (1.03..1.5).contains(&ratio),
        "polling adds a few seconds per job, not a multiple: {ratio}"
    );
    assert!(polling.p_wait > immediate.p_wait, "nearly every job waits for an offer");
}
