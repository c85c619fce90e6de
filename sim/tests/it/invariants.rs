//! Invariants that must hold for every fleet and workload (proptest).

use fleetsim::engine::{Engine, ListSource, Observer};
use fleetsim::report::level_areas::LevelAreas;
use fleetsim_core::spec::{FleetSpec, Pickup, ProcessSpec, RunnerSpec};
use fleetsim_core::{Command, Fleet, JobId, JobRecord, JobSpec, ProjectId, SimTime, TagSetId};
use proptest::prelude::*;

use crate::equivalence::jobs_strategy;

struct Check {
    areas: LevelAreas,
    records: Vec<JobRecord>,
    slots: u32,
    limits: Vec<u32>,
}

impl Observer for Check {
    fn after_input(&mut self, now: SimTime, fleet: &Fleet, _: bool, commands: &[Command]) {
        assert!(fleet.running() <= self.slots, "more jobs running than workers");
        for (r, &limit) in self.limits.iter().enumerate() {
            let builds = fleet.runner_builds(fleetsim_core::RunnerId(r as u16));
            assert!(limit == 0 || builds <= limit, "runner {r} over its limit");
        }
        for c in commands {
            if let Command::JobFinished(r) = c {
                self.records.push(*r);
            }
        }
        self.areas.observe(now, fleet.pending(), fleet.running());
    }
}

/// Most intervals `[start, end)` open at once among those selected by `key == k`.
fn max_overlap(records: &[JobRecord], key: impl Fn(&JobRecord) -> u16, k: u16) -> usize {
    let mut edges: Vec<(u64, i32)> = records
        .iter()
        .filter(|r| key(r) == k)
        .flat_map(|r| [(r.started.as_ms(), 1), (r.finished.as_ms(), -1)])
        .collect();
    edges.sort(); // ends (-1) sort before starts (+1) at the same instant
    let (mut open, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        open += d;
        most = most.max(open);
    }
    most as usize
}

fn spec_strategy() -> impl Strategy<Value = FleetSpec> {
    (
        1u32..5,
        0u32..3,
        0u32..3,
        any::<bool>(),
        prop_oneof![Just(0u64), Just(50_000u64)],
        1u64..4000,
        prop_oneof![Just(0u64), Just(300u64)],
    )
        .prop_map(|(concurrent, limit0, limit1, immediate, long_poll_ms, ci, latency)| {
            FleetSpec {
                processes: vec![ProcessSpec {
                    name: "host-0".into(),
                    concurrent,
                    check_interval_ms: ci.max(2),
                    first_offer_ms: 0,
                    runners: vec![
                        RunnerSpec {
                            limit: limit0,
                            tags: vec!["a".into(), "b".into()],
                            ..RunnerSpec::docker("r0")
                        },
                        RunnerSpec { limit: limit1, ..RunnerSpec::docker("r1") },
                    ],
                }],
                pickup: if immediate { Pickup::Immediate } else { Pickup::Polling },
                long_poll_ms,
                request_latency_ms: latency,
                cache: Default::default(),
                containers: Default::default(),
                emit_every_step: false,
                skip_idle_offers: true,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn every_job_ends_once_within_limits_and_littles_law_holds(spec in spec_strategy(), jobs in jobs_strategy()) {
        let slots = spec.processes[0].concurrent;
        let limits: Vec<u32> = spec.processes[0].runners.iter().map(|r| r.limit).collect();
        let mut fleet = Fleet::new(spec);
        let list: Vec<(u64, JobSpec)> = jobs
            .iter()
            .map(|j| {
                let tags = if j.tags.is_empty() { TagSetId::UNTAGGED } else { fleet.intern_tags(&j.tags) };
                (j.at_ms, JobSpec { id: JobId(j.id), project: ProjectId(j.project), tags, duration_ms: j.duration_ms, retry: 0, work: Default::default() })
            })
            .collect();
        let mut check = Check { areas: LevelAreas::default(), records: Vec::new(), slots, limits: limits.clone() };
        Engine::new().run(&mut fleet, &mut ListSource::new(list), &mut check).unwrap();

        // Every job finished exactly once.
        let mut ids: Vec<u64> = check.records.iter().map(|r| r.id.0).collect();
        ids.sort_unstable();
        let expected: Vec<u64> = jobs.iter().map(|j| j.id).collect();
        prop_assert_eq!(ids, expected);
        for r in &check.records {
            prop_assert!(r.queued <= r.started && r.started <= r.finished);
            prop_assert_eq!(r.wait_capacity_ms + r.wait_poll_ms, r.pending_ms());
            let j = &jobs[(r.id.0 - 1) as usize];
            prop_assert_eq!(r.finished - r.started, j.duration_ms);
        }
        // Never more running than workers, never more per entry than its limit.
        prop_assert!(max_overlap(&check.records, |r| r.host.0, 0) <= slots as usize);
        for (i, &limit) in limits.iter().enumerate() {
            if limit > 0 {
                prop_assert!(max_overlap(&check.records, |r| r.runner.0, i as u16) <= limit as usize);
            }
        }
        // Little's law on the sample path: the area under the pending curve equals the sum
        // of the pending times.
        let total: u128 = check.records.iter().map(|r| u128::from(r.pending_ms())).sum();
        prop_assert_eq!(check.areas.pending_ms(), total);
    }
}
