//! docker-autoscaler (taskscaler) on simulated EC2: the docs' idle-slot examples and
//! hand-worked timelines. Offers are every 3 s from 0 s (one runner, `check_interval` 3 s);
//! boot takes the given constant, removal 5 s. Scaling runs after every input and at the
//! scaler's own instants (idle expiries, deadlines, policy changes), so instances are created
//! at the very instant demand appears.

use fleetsim_core::spec::RunnerSpec;
use fleetsim_core::taskscaler::{AutoscalerSpec, Policy, ScaleFactorRule, Throttle};
use proptest::prelude::*;

use crate::common::{TestJob, fixed_cloud, job, machine_rows, one_process, run_machines};

/// A docker-autoscaler runner whose only policy is the default one.
pub(crate) fn scaler(
    capacity: u32,
    policy: Policy,
    max_instances: u32,
    max_use_count: u32,
) -> RunnerSpec {
    RunnerSpec {
        executor: fleetsim_core::ExecutorKind::DockerAutoscaler(AutoscalerSpec {
            capacity_per_instance: capacity,
            max_use_count,
            max_instances,
            acquire_wait_ms: 3 * 15 * 60_000 + 6000,
            policies: Vec::new(),
            default_policy: policy,
            throttle: Throttle { per_s: Some(100), burst: 100 },
            scale_factor_rule: ScaleFactorRule::Max,
            contention: 0.0,
        }),
        ..RunnerSpec::docker("da")
    }
}

pub(crate) fn idle(idle_count: u32, idle_time_s: u64) -> Policy {
    Policy {
        idle_count,
        idle_time_ms: idle_time_s * 1000,
        preemptive: idle_count > 0, // GitLab Runner's default
        ..Policy::default()
    }
}

fn created_at(csv: &str, at: &str) -> usize {
    machine_rows(csv).iter().filter(|r| r["created_at"] == at).count()
}

#[test]
fn idle_count_counts_job_slots_not_instances() {
    // The docs (§3.4): capacity 1 with idle_count 5 keeps 5 instances; capacity 5, one.
    // The scaler acts at time 0, before any job; the job at 100 s keeps the run going.
    let jobs = [job(1, 100_000, 1000)];
    let one = run_machines(
        one_process(4, 3000, 0, vec![scaler(1, idle(5, 600), 0, 0)]),
        &jobs,
        fixed_cloud(60),
        None,
        1,
    );
    assert_eq!(created_at(&one.machines_csv, "0.000"), 5);
    let five = run_machines(
        one_process(4, 3000, 0, vec![scaler(5, idle(5, 600), 0, 0)]),
        &jobs,
        fixed_cloud(60),
        None,
        1,
    );
    assert_eq!(created_at(&five.machines_csv, "0.000"), 1);
}

#[test]
fn without_preemptive_mode_the_job_is_taken_first_and_waits_for_its_instance() {
    // idle_count 0 (preemptive off by default): the 12 s offer reserves, gets the job queued at
    // 10 s, and Prepare waits; the reservation makes the scaler create an instance at 12 s,
    // ready at 72 s, where the script starts. The job ends at 172 s; with idle_time 0 the
    // instance has no reason to stay and is deleted at once.
    let spec = one_process(4, 3000, 0, vec![scaler(1, idle(0, 0), 0, 0)]);
    let run = run_machines(spec, &[job(1, 10_000, 100_000)], fixed_cloud(60), None, 1);
    let r = &run.records[0];
    assert_eq!(
        (r.queued.as_ms(), r.started.as_ms(), r.script_started.as_ms(), r.finished.as_ms()),
        (10_000, 12_000, 72_000, 172_000)
    );
    assert_eq!(r.wait_machine_ms, 0, "it waited in Prepare, after GitLab gave it out");
    let rows = machine_rows(&run.machines_csv);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["created_at"], "12.000");
    assert_eq!(rows[0]["removal_started_at"], "172.000");
    assert_eq!(rows[0]["removal_reason"], "too many idle machines");
}

#[test]
fn in_preemptive_mode_no_job_is_requested_until_a_slot_is_ready() {
    // idle_count 1 (preemptive): an instance is created at 0 s, ready at 61 s. The job queued
    // at 10 s stays pending (no request without a free ready slot) until the 63 s offer, and
    // runs at once. Taking the slot leaves no idle slot, so a second instance starts at 63 s.
    let spec = one_process(4, 3000, 0, vec![scaler(1, idle(1, 600), 0, 0)]);
    let run = run_machines(spec, &[job(1, 10_000, 100_000)], fixed_cloud(61), None, 1);
    let r = &run.records[0];
    assert_eq!(
        (r.started.as_ms(), r.script_started.as_ms(), r.finished.as_ms()),
        (63_000, 63_000, 163_000)
    );
    assert_eq!(r.wait_machine_ms, 51_000, "queued at 10 s, a slot was free from 61 s");
    assert_eq!(r.wait_poll_ms, 2000);
    assert_eq!(created_at(&run.machines_csv, "0.000"), 1);
    assert_eq!(created_at(&run.machines_csv, "63.000"), 1);
}

#[test]
fn max_use_count_deletes_the_instance_after_its_last_job() {
    let spec = one_process(2, 3000, 0, vec![scaler(1, idle(0, 1800), 0, 1)]);
    let run =
        run_machines(spec, &[job(1, 0, 10_000), job(2, 100_000, 10_000)], fixed_cloud(30), None, 1);
    let rows = machine_rows(&run.machines_csv);
    assert_eq!(rows.len(), 2, "max_use_count = 1: the second job cannot reuse the instance");
    for row in &rows {
        assert_eq!(row["removal_reason"], "too many builds");
        assert_eq!(row["jobs"], "1");
    }
}

#[test]
fn a_job_whose_prepare_cannot_acquire_an_instance_in_time_fails_and_is_retried() {
    // Boot takes 150 s but Prepare gives up after 100 s: the job taken at 12 s fails at
    // 112 s. Its retry is queued then, taken at the 114 s offer, and gets the instance
    // created for the first attempt when it is ready at 162 s.
    let mut runner = scaler(1, idle(0, 0), 0, 0);
    if let fleetsim_core::ExecutorKind::DockerAutoscaler(a) = &mut runner.executor {
        a.acquire_wait_ms = 100_000;
    }
    let spec = one_process(4, 3000, 0, vec![runner]);
    let jobs = [TestJob { retry: 1, ..job(1, 10_000, 5000) }];
    let run = run_machines(spec, &jobs, fixed_cloud(150), None, 1);
    let first = &run.records[0];
    assert!(first.failed);
    assert_eq!((first.started.as_ms(), first.finished.as_ms()), (12_000, 112_000));
    assert_eq!(first.machine, None);
    let retry = &run.records[1];
    assert!(!retry.failed);
    assert_eq!(retry.attempt, 2);
    assert_eq!(
        (retry.started.as_ms(), retry.script_started.as_ms()),
        (114_000, 162_000),
        "the instance created for the first attempt serves the retry"
    );
    assert_eq!(machine_rows(&run.machines_csv).len(), 1);
}

#[test]
fn capacity_two_packs_two_jobs_on_one_instance_and_contention_slows_them() {
    // Two jobs at 10 s, capacity 2, non-preemptive: both are taken (12 s offer and greedy
    // re-poll) and wait in Prepare; two reservations need ceil(2 / 2) = 1 instance, ready at
    // 72 s; both start there. With contention 0.5 the second script to start (one other job
    // on the instance) takes 1.5 × 100 s.
    let mut runner = scaler(2, idle(0, 0), 0, 0);
    if let fleetsim_core::ExecutorKind::DockerAutoscaler(a) = &mut runner.executor {
        a.contention = 0.5;
    }
    let spec = one_process(4, 3000, 0, vec![runner]);
    let run = run_machines(
        spec,
        &[job(1, 10_000, 100_000), job(2, 10_000, 100_000)],
        fixed_cloud(60),
        None,
        1,
    );
    assert_eq!(machine_rows(&run.machines_csv).len(), 1);
    let ends: Vec<(u64, u64)> =
        run.records.iter().map(|r| (r.script_started.as_ms(), r.finished.as_ms())).collect();
    assert_eq!(ends, vec![(72_000, 172_000), (72_000, 222_000)]);
    assert_eq!(run.records[0].machine, run.records[1].machine);
}

#[test]
fn policies_switch_on_seoul_office_hours() {
    // Time 0 is Sunday 2026-03-01 23:00 UTC = Monday 08:00 in Seoul. Policy 0 (always)
    // keeps no idle slot; policy 1 (`* 9-17 * * mon-fri`, Asia/Seoul) keeps 2. The later
    // matching policy wins from 09:00 (3600 s) to 18:00 (36000 s): two instances are created
    // at 3600 s and, with idle_time 0, deleted at 36000 s. No offer is needed for either.
    use fleetsim::periods::{CalendarPeriods, CronDialect, PeriodSet};
    let mut runner = scaler(1, idle(0, 0), 0, 0);
    if let fleetsim_core::ExecutorKind::DockerAutoscaler(a) = &mut runner.executor {
        a.policies = vec![idle(0, 0), idle(2, 0)];
    }
    let set = |expr: &str, tz: &str| {
        PeriodSet::parse(&[expr.to_owned()], tz, CronDialect::Minutes5).unwrap()
    };
    let origin: jiff::Timestamp = "2026-03-01T23:00:00Z".parse().unwrap();
    let periods = CalendarPeriods::new(
        origin,
        vec![set("* * * * *", ""), set("* 9-17 * * mon-fri", "Asia/Seoul")],
    );
    let spec = one_process(4, 3000, 0, vec![runner]);
    let run = run_machines(
        spec,
        &[job(1, 40_000_000, 1000)],
        fixed_cloud(60),
        Some(Box::new(periods)),
        1,
    );
    let rows = machine_rows(&run.machines_csv);
    let office: Vec<_> = rows.iter().filter(|r| r["created_at"] == "3600.000").collect();
    assert_eq!(office.len(), 2, "{rows:?}");
    for r in office {
        assert_eq!(r["removal_started_at"], "36000.000");
    }
}

/// The most jobs holding a slot at once on any one instance, and the most instances alive
/// (created, not yet being deleted) at once.
fn peaks(run: &crate::common::MachineRun) -> (u32, u32) {
    let mut per_machine: std::collections::BTreeMap<u32, Vec<(u64, i32)>> = Default::default();
    for r in run.records.iter().filter(|r| !r.failed) {
        // A job holds its slot from acquisition (its pull starts there) to its end.
        let from = r.script_started.as_ms() - r.pull_ms - r.restore_ms;
        let m = r.machine.expect("a finished job ran on an instance").0;
        per_machine.entry(m).or_default().extend([(from, 1), (r.finished.as_ms(), -1)]);
    }
    let max_overlap = |mut ev: Vec<(u64, i32)>| {
        ev.sort(); // ends (-1) before starts (+1) at the same instant
        let mut cur = 0;
        ev.iter()
            .map(|&(_, d)| {
                cur += d;
                cur
            })
            .max()
            .unwrap_or(0) as u32
    };
    let jobs = per_machine.into_values().map(max_overlap).max().unwrap_or(0);
    let ms = |s: &str| (s.parse::<f64>().unwrap() * 1000.0).round() as u64;
    let mut ev = Vec::new();
    for row in machine_rows(&run.machines_csv) {
        let end = match row["removal_started_at"].as_str() {
            "" => u64::MAX,
            s => ms(s),
        };
        ev.extend([(ms(&row["created_at"]), 1), (end, -1)]);
    }
    (jobs, max_overlap(ev))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn slots_and_instances_stay_within_their_caps(
        capacity in 1u32..4,
        idle_count in 0u32..4,
        preemptive in any::<bool>(),
        max_instances in 1u32..5,
        max_use_count in 0u32..3,
        idle_time_s in 0u64..120,
        arrivals in prop::collection::vec((0u64..600_000, 1_000u64..200_000), 1..25),
    ) {
        // Preemptive mode with idle_count 0 never requests a job (nothing is ever idle): a
        // real misconfiguration that the config reader warns about; not a case here.
        let policy = Policy { preemptive: preemptive && idle_count > 0, ..idle(idle_count, idle_time_s) };
        let spec = one_process(8, 3000, 0, vec![scaler(capacity, policy, max_instances, max_use_count)]);
        let mut arrivals = arrivals;
        arrivals.sort();
        let jobs: Vec<TestJob> =
            arrivals.iter().enumerate().map(|(i, &(at, d))| job(i as u64 + 1, at, d)).collect();
        let run = run_machines(spec, &jobs, fixed_cloud(45), None, 7);
        prop_assert_eq!(run.records.iter().filter(|r| !r.failed).count(), jobs.len());
        let (jobs_per_instance, instances) = peaks(&run);
        prop_assert!(jobs_per_instance <= capacity, "{} jobs on one instance", jobs_per_instance);
        prop_assert!(instances <= max_instances, "{} instances alive", instances);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The fast path skips offers while `Reserve` would refuse or no job waits: it must give
    /// the same records and machines as visiting every offer.
    #[test]
    fn fast_path_equals_tick_by_tick(
        capacity in 1u32..4,
        idle_count in 0u32..3,
        preemptive in any::<bool>(),
        max_instances in 0u32..4,
        long_poll in any::<bool>(),
        jobs in crate::equivalence::jobs_strategy(),
        seed in 0u64..100,
    ) {
        let policy = Policy { preemptive: preemptive && idle_count > 0, ..idle(idle_count, 30) };
        let mut spec = one_process(3, 3000, 1000, vec![scaler(capacity, policy, max_instances, 2)]);
        spec.processes[0].runners[0].tags = vec!["a".into(), "b".into()];
        spec.long_poll_ms = if long_poll { 7000 } else { 0 };
        let mut tick = spec.clone();
        tick.skip_idle_offers = false;
        let cloud = crate::common::fixed_cloud(20);
        let fast = run_machines(spec, &jobs, cloud.clone(), None, seed);
        let slow = run_machines(tick, &jobs, cloud, None, seed);
        prop_assert_eq!(fast.records, slow.records);
        prop_assert_eq!(fast.machines_csv, slow.machines_csv);
    }
}

mod migrate {
    //! `sim migrate` and docker-autoscaler scenarios through the `sim` binary.

    use crate::cli::{assert_bad_input, repo, sim, stderr};
    use fleetsim::config::{Executor, load_config_file, load_config_str};

    #[test]
    fn the_seed_config_migrates_to_the_committed_one_which_gitlab_runner_keys_accept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("config.toml");
        let o = sim(&[
            "migrate",
            "scenarios/seed-autoscale.config.toml",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let written = std::fs::read_to_string(&out).unwrap();
        let committed =
            std::fs::read_to_string(repo().join("scenarios/seed-autoscale-migrated.config.toml"))
                .unwrap();
        assert_eq!(written, committed, "the committed config is what `sim migrate` writes");
        let loaded = load_config_file(&out).unwrap();
        // Only checkConfigConcurrency's warning (request_concurrency = 1), which GitLab Runner
        // 19.4 logs for this config too.
        let others: Vec<_> =
            loaded.warnings.iter().filter(|w| !w.contains("Long polling issues")).collect();
        assert!(others.is_empty(), "unknown or legacy keys: {others:?}");
        let r = &loaded.config.runners[0];
        assert_eq!(r.executor, Executor::DockerAutoscaler);
        assert!(r.machine.is_none());
        let a = r.autoscaler.as_ref().unwrap();
        assert_eq!((a.capacity_per_instance, a.max_instances, a.max_use_count), (1, 20, 0));
        assert_eq!(a.policies.len(), 1);
        assert_eq!((a.policies[0].idle_count, a.policies[0].idle_time_ms), (1, 1_800_000));
        assert!(a.policies[0].preemptive_mode, "IdleCount > 0 behaved preemptively");
        assert_eq!(
            a.plugin_config.0.get("region").and_then(|v| v.as_str()),
            Some("ap-northeast-2")
        );
        // The S3 cache moved where a current runner reads it; secrets stay out of the report.
        assert!(r.cache.s3.is_some());
        let err = stderr(&o);
        assert!(err.contains("fixed:") && err.contains("[runners.cache.s3]"), "{err}");
        assert!(
            err.contains("manual:") && err.contains("amazonec2-instance-type=t2.medium"),
            "{err}"
        );
        assert!(!err.contains("uVHmnvl0Kz3sOR1"), "a secret leaked: {err}");
    }

    const PERIODS: &str = r#"concurrent = 10
[[runners]]
  name = "dm"
  url = "https://gitlab.example.com"
  token = "glrt-x"
  executor = "docker+machine"
  limit = 10
  [runners.machine]
    IdleCount = 4
    IdleCountMin = 1
    IdleScaleFactor = 0.5
    IdleTime = 600
    MaxGrowthRate = 2
    MaxBuilds = 50
    MachineOptions = ["amazonec2-instance-type=c5.large"]
    [[runners.machine.autoscaling]]
      Periods = ["* * 9-17 * * mon-fri *"]
      Timezone = "Europe/Berlin"
      IdleCount = 6
      IdleTime = 1200
    [[runners.machine.autoscaling]]
      Periods = ["* * * * * sat,sun 2026"]
      IdleCount = 0
"#;

    #[test]
    fn periods_factors_and_caps_map_with_every_loss_reported() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("dm.toml");
        std::fs::write(&input, PERIODS).unwrap();
        let o =
            sim(&["migrate", input.to_str().unwrap(), "--capacity", "2", "--preemptive", "off"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let text = String::from_utf8(o.stdout.clone()).unwrap();
        let loaded = load_config_str(&text, std::path::Path::new("migrated.toml")).unwrap();
        let others: Vec<_> =
            loaded.warnings.iter().filter(|w| !w.contains("Long polling issues")).collect();
        assert!(others.is_empty(), "{others:?}");
        let a = loaded.config.runners[0].autoscaler.clone().unwrap();
        assert_eq!((a.capacity_per_instance, a.max_instances, a.max_use_count), (2, 5, 50));
        let p: Vec<_> = a
            .policies
            .iter()
            .map(|p| {
                (
                    p.periods.join("|"),
                    p.idle_count,
                    p.scale_factor,
                    p.scale_factor_limit,
                    p.idle_time_ms,
                    p.preemptive_mode,
                )
            })
            .collect();
        assert_eq!(
            p,
            vec![
                // Root: IdleCountMin 1 × 2 slots minimum, factor 0.5, at most IdleCount 4 × 2.
                ("* * * * *".into(), 2, 0.5, 8, 600_000, false),
                ("* 9-17 * * mon-fri".into(), 12, 0.0, 0, 1_200_000, false),
                ("* * * * sat,sun".into(), 0, 0.0, 0, 0, false),
            ]
        );
        assert_eq!(a.policies[1].timezone.as_deref(), Some("Europe/Berlin"));
        let err = stderr(&o);
        assert!(err.contains("MaxGrowthRate = 2"), "{err}");
        assert!(err.contains("year field \"2026\" dropped"), "{err}");
        assert!(!err.contains("note: concurrent"), "concurrent 10 = 5 instances × 2: {err}");
    }

    #[test]
    fn migrate_refuses_what_it_cannot_migrate() {
        let o = sim(&["migrate", "scenarios/seed-single-server.config.toml"]);
        assert_bad_input(&o, &["docker+machine"]);
        let o = sim(&["migrate", "scenarios/seed-autoscale.config.toml", "--capacity", "0"]);
        assert_bad_input(&o, &["--capacity"]);
    }

    #[test]
    fn a_docker_autoscaler_scenario_needs_its_instance_type_and_valid_switches() {
        let s = "scenarios/seed-autoscale-migrated.toml";
        let o = sim(&["run", s, "--set", "autoscaler.instance_type=", "--out", "/dev/null"]);
        assert_bad_input(&o, &["autoscaler.instance_type"]);
        let o = sim(&["run", s, "--set", "autoscaler.scale_factor_rule=median"]);
        assert_bad_input(&o, &["autoscaler.scale_factor_rule", "median"]);
        let o = sim(&["run", s, "--set", "autoscaler.contention=-1"]);
        assert_bad_input(&o, &["autoscaler.contention"]);
        let o = sim(&["run", s, "--set", "runners[0].autoscaler.policy[0].periods=[\"* * *\"]"]);
        assert_bad_input(&o, &["runners[0].autoscaler.policy[0].periods"]);
    }

    #[test]
    fn the_migrated_seed_runs_and_compares_with_docker_machine() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("dm");
        let b = dir.path().join("da");
        for (scenario, out) in [
            ("scenarios/seed-autoscale-spot-s3.toml", &a),
            ("scenarios/seed-autoscale-migrated.toml", &b),
        ] {
            let o = sim(&["run", scenario, "--out", out.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        }
        let o = sim(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let table = String::from_utf8(o.stdout).unwrap();
        assert!(table.contains("pending.p95_s") && table.contains("machines.created"), "{table}");
    }
}
