//! Properties of docker+machine fleets on simulated EC2, for random settings, workloads,
//! boot times, creation failures and spot interruptions (proptest):
//! - the fast path gives the same records and the same `machines.csv` as visiting every offer;
//! - machines in all states ≤ `limit`, machines being created ≤ `MaxGrowthRate`;
//! - one job per machine at a time; every job ends exactly once (retries included);
//! - the cost is the billing rule summed over the machines.

use fleetsim::cloud::ec2::{BootTime, CloudSpec};
use fleetsim::cloud::prices::Market;
use fleetsim_core::spec::FleetSpec;
use proptest::prelude::*;

use crate::common::{MachineRun, TestJob, machine_rows, machine_runner, one_process, run_machines};
use crate::equivalence::jobs_strategy;

fn dm_fleet() -> impl Strategy<Value = (FleetSpec, u32, u32)> {
    (1u32..5, 0u32..3, 0u64..120, 0u32..6, 0u32..3, 0u32..3, 1000u64..5000, 0u64..5000).prop_map(
        |(concurrent, idle, idle_time, limit, growth, max_builds, ci, phase)| {
            let mut runner = machine_runner(idle, idle_time, limit, growth, max_builds);
            runner.tags = vec!["a".into(), "b".into()];
            runner.run_untagged = true;
            let spec = one_process(concurrent, ci, phase % ci, vec![runner]);
            (spec, limit, growth)
        },
    )
}

fn cloud() -> impl Strategy<Value = CloudSpec> {
    (any::<bool>(), 0.0f64..0.3, any::<bool>(), 0.0f64..3000.0).prop_map(
        |(lognormal, fail, spot, reclaims)| CloudSpec {
            market: if spot { Market::Spot } else { Market::OnDemand },
            boot: if lognormal {
                BootTime::LogNormal { median_ms: 20_000, p99_ms: 90_000 }
            } else {
                BootTime::Fixed(30_000)
            },
            instance_boot: BootTime::INSTANCE_DEFAULT, // these runners are docker+machine
            failure_probability: fail,
            failure_ms: (1000, 20_000),
            removal_ms: 4000,
            // Absurdly unreliable spot machines, so interruptions happen in short runs.
            interruption_per_month: Some(0.999_999),
            reclaims_per_month: reclaims,
        },
    )
}

fn check_invariants(run: &MachineRun, jobs: &[TestJob], limit: u32, growth: u32) {
    // Every job: at most `retry + 1` runs, all failed but possibly the last.
    for j in jobs {
        let runs: Vec<_> = run.records.iter().filter(|r| r.id.0 == j.id).collect();
        assert!(
            !runs.is_empty() && runs.len() as u32 <= j.retry + 1,
            "job {} ran {} times",
            j.id,
            runs.len()
        );
        for (k, r) in runs.iter().enumerate() {
            assert_eq!(r.attempt as usize, k + 1);
            if k + 1 < runs.len() {
                assert!(r.failed, "only the last run of a job may succeed");
            }
        }
    }
    // One job per machine at a time.
    let mut by_machine: Vec<(u32, u64, u64)> = run
        .records
        .iter()
        .filter_map(|r| r.machine.map(|m| (m.0, r.script_started.as_ms(), r.finished.as_ms())))
        .collect();
    by_machine.sort_unstable();
    for w in by_machine.windows(2) {
        if w[0].0 == w[1].0 {
            assert!(w[0].2 <= w[1].1, "two jobs overlap on machine {}", w[0].0);
        }
    }
    // Machines: the cost is the billing rule over the rows, and the peaks respect the caps.
    let rows = machine_rows(&run.machines_csv);
    let billed: u64 = rows.iter().map(|r| r["billed_s"].parse::<u64>().unwrap()).sum();
    assert_eq!(billed, run.totals.billed_s);
    assert!((run.totals.cost_usd - 0.0464 / 3600.0 * billed as f64).abs() < 1e-9);
    if limit > 0 {
        // `Acquire` holds `limit` (idle_limit_strategy.go `totalMachinesExceeded`), but a
        // Prepare whose creation failed creates again 1 s later (provider.go
        // `retryUseMachine` → `createAndAcquireMachine`, no `limit` check) while the failed
        // machine is still being removed: only failed creations can push past `limit`. A spot
        // machine lost before it was ready is a failed `docker-machine create` to the runner,
        // so it counts as one.
        let lost_while_creating = rows
            .iter()
            .filter(|r| r["removal_reason"] == "lost" && r["ready_at"].is_empty())
            .count() as u64;
        let failed = run.totals.creation_failed + lost_while_creating;
        assert!(
            run.totals.max_alive <= u64::from(limit) + failed,
            "{} machines alive, limit {limit}, {failed} failed creations",
            run.totals.max_alive,
        );
    }
    let _ = growth; // checked step by step by the core's own counts in `growth_is_capped`
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_equals_tick_by_tick_with_machines((spec, limit, growth) in dm_fleet(), cloud in cloud(), jobs in jobs_strategy(), seed in 0u64..1000) {
        let fast = run_machines(spec.clone(), &jobs, cloud.clone(), None, seed);
        let mut tick = spec;
        tick.skip_idle_offers = false;
        let slow = run_machines(tick, &jobs, cloud, None, seed);
        prop_assert_eq!(&fast.records, &slow.records);
        prop_assert_eq!(&fast.machines_csv, &slow.machines_csv);
        check_invariants(&fast, &jobs, limit, growth);
    }
}

#[test]
fn growth_is_capped_at_every_instant() {
    use fleetsim::engine::{Engine, ListSource, Observer};
    use fleetsim_core::{Command, Fleet, JobId, JobSpec, ProjectId, RunnerId, SimTime, TagSetId};

    struct Caps(u32, u32);
    impl Observer for Caps {
        fn after_input(&mut self, _: SimTime, fleet: &Fleet, _: bool, _: &[Command]) {
            let c = fleet.machine_counts(RunnerId(0)).unwrap();
            assert!(
                c.creating <= self.0,
                "{} machines creating, MaxGrowthRate {}",
                c.creating,
                self.0
            );
            assert!(c.total() <= self.1, "{} machines, limit {}", c.total(), self.1);
        }
    }
    let spec = one_process(20, 3000, 0, vec![machine_runner(4, 60, 12, 2, 0)]);
    let jobs: Vec<(u64, JobSpec)> = (0..200)
        .map(|i| {
            let spec = JobSpec {
                id: JobId(i),
                project: ProjectId(i % 3),
                tags: TagSetId::UNTAGGED,
                duration_ms: 90_000,
                retry: 2,
                work: Default::default(),
            };
            (i * 7_000, spec)
        })
        .collect();
    let mut fleet = Fleet::new(spec);
    let cloud_spec = CloudSpec { failure_probability: 0.2, ..CloudSpec::default() };
    let mut cloud = crate::common::t2_medium_cloud(cloud_spec, 1, 0.0, 3);
    Engine::new()
        .run_with(&mut fleet, &mut ListSource::new(jobs), &mut Caps(2, 12), &mut cloud)
        .unwrap();
    assert!(cloud.totals().creation_failed > 0, "the test exercises failed creations");
}
