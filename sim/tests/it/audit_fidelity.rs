//! The fidelity audit's scenarios (`shared/reference/fidelity-audit.md`), replayed with exact
//! timings against GitLab Runner 19.4's source. Each test names the audit item and the Go (or
//! Workhorse/Rails) function it mirrors; every number was worked out by hand first.

use fleetsim::scenario::Scenario;
use fleetsim::seeds::SeedTree;
use fleetsim_core::spec::{DEFAULT_LONG_POLL_MS, DEFAULT_REQUEST_LATENCY_MS, RunnerSpec};
use fleetsim_core::{Command, Fleet, Input, RunnerId, SimTime};

use crate::common::{
    TestJob, fixed_cloud, job, job_specs, machine_rows, machine_runner, one_process, run,
    run_machines, starts,
};
use crate::docker_autoscaler::{idle, scaler};

/// Audit item 5 (job end). GitLab Runner 19.4 `commands/multi.go` `(*RunCommand).processRunner`
/// registers `defer buildsHelper.releaseBuild` and then `defer provider.Release`; Go runs
/// deferred calls in reverse order, so the machine goes back to the pool, then the `limit`
/// slot, and only then does the worker return to the channel — where a blocked feeder hands
/// it the runner at once, and that `Acquire` finds the machine idle.
#[test]
fn job_end_releases_the_machine_before_the_worker_so_a_blocked_feeder_finds_it() {
    // concurrent 1, check_interval 3 s (offers at 0, 3, 6, … s), docker+machine IdleCount 1,
    // IdleTime 3600, limit 1 (so a single machine ever), boot 60 s.
    // 0 s: Acquire pre-creates m0 (ready at 60 s); no idle machine, so no job request.
    // 60 s: m0 ready; the 60 s offer takes job 1 (queued at 0 s) onto it; it runs 10 s.
    // 61 s: job 2 arrives. 63 s: the offer finds no idle worker, so the feeder blocks.
    // 70 s: job 1 ends. m0 is released (idle), then `limit`, then the worker, which takes
    //   the blocked offer: Acquire finds m0 idle and job 2 starts at 70 s (9 s waiting for
    //   the worker). Freeing the worker first would find m0 still in use, refuse, and leave
    //   job 2 to the 73 s offer.
    let spec = one_process(1, 3000, 0, vec![machine_runner(1, 3600, 1, 0, 0)]);
    let run =
        run_machines(spec, &[job(1, 0, 10_000), job(2, 61_000, 10_000)], fixed_cloud(60), None, 1);
    assert_eq!(starts(&run.records), vec![(1, 60_000, 0, 0), (2, 70_000, 9000, 0)]);
    assert_eq!(run.records[1].machine, run.records[0].machine, "the same machine m0");
    assert_eq!(run.totals.created, 1);
}

/// Audit item 1 (long polling), the audit's own scenario. Workhorse
/// `internal/builds/register.go` `RegisterHandler`: a held request whose runner key changes
/// is answered `204` (`WatchKeyStatusSeenChange`, "We could potentially proxy request to
/// Rails, but..."), and so is one that times out; only a request whose `last_update` is
/// already out of date goes to Rails (`WatchKeyStatusAlreadyChanged`). GitLab Runner 19.4
/// `network/gitlab.go` `(*GitLabClient).RequestJob` takes the 204 as "no job" and
/// `commands/multi.go` `processBuildOnRunner` returns without a requeue, so the job waits for
/// the runner's next request.
#[test]
fn long_poll_released_by_a_job_is_answered_204_and_the_next_offer_takes_the_job() {
    // concurrent 4, check_interval 10 s (offers at 0, 10, 20, 30, 40 s), request_concurrency 1,
    // long polling 50 s.
    // 0 s: the request is held (last_update current). 10 s: the request slot is taken.
    // 12 s: job 1 ticks the runner: 204, the worker and the slot are free, last_update stale.
    // 20 s: the offer goes to Rails and takes job 1 (8 s of polling delay); the greedy re-poll
    //   goes to Rails too, gets 204 with a current last_update, and is not held.
    // 30 s: the offer is held. 33 s: job 2: 204. 40 s: the offer takes job 2 (7 s).
    let mut spec = one_process(4, 10_000, 0, vec![RunnerSpec::docker("r")]);
    spec.long_poll_ms = DEFAULT_LONG_POLL_MS;
    let records = run(spec, &[job(1, 12_000, 100_000), job(2, 33_000, 100_000)]);
    assert_eq!(starts(&records), vec![(1, 20_000, 0, 8000), (2, 40_000, 0, 7000)]);
}

/// Audit item 1, the other half: a request whose `last_update` is out of date goes to Rails,
/// which answers at once (Rails `lib/api/ci/runner.rb` `POST /jobs/request`: 204 with a new
/// `X-GitLab-Last-Update` when there is no job); it is not held, so it does not tie up the
/// worker. A 201 carries no new value, so after a job the runner asks Rails again.
#[test]
fn a_stale_request_without_a_job_is_answered_at_once_not_held() {
    // concurrent 1, two entries (r0 tag a, r1 tag b), check_interval 10 s: r0 is offered at
    // 0, 10, 20 s, r1 at 5, 15, 25 s. Long polling 50 s. Jobs take 1 s.
    // 0 s: r0 held. 1 s: job A (a): 204, r0 stale. 2 s: job B (b): r1 stale.
    // 5 s: r1 asks Rails, takes B. 10 s: r0 asks Rails, takes A.
    // 15 s: r1 is still stale (the 201 had no new value): Rails answers 204 at once.
    // 17 s: job C (a). 20 s: r0 (stale since its 201) asks Rails and takes C.
    // Had the 15 s request been held, the single worker would be tied up until 65 s and C
    // would start then.
    let mut r0 = RunnerSpec::docker("r0");
    r0.tags = vec!["a".into()];
    r0.run_untagged = false;
    let mut r1 = RunnerSpec::docker("r1");
    r1.tags = vec!["b".into()];
    r1.run_untagged = false;
    let mut spec = one_process(1, 10_000, 0, vec![r0, r1]);
    spec.long_poll_ms = DEFAULT_LONG_POLL_MS;
    let tagged = |id, at, tag| TestJob { tags: vec![tag], ..job(id, at, 1000) };
    let records = run(spec, &[tagged(1, 1000, "a"), tagged(2, 2000, "b"), tagged(3, 17_000, "a")]);
    let got: Vec<(u64, u16)> = records.iter().map(|r| (r.started.as_ms(), r.runner.0)).collect();
    assert_eq!(got, vec![(10_000, 0), (5000, 1), (20_000, 0)]);
}

/// Steps the fleet through its own wakeups up to `until`.
fn drive(fleet: &mut Fleet, until: u64, out: &mut Vec<Command>) {
    while let Some(t) = fleet.next_wakeup().filter(|t| t.as_ms() <= until) {
        fleet.handle(t, Input::Wakeup, out);
    }
}

/// The fleet of the audit's item 11 scenario, driven by hand up to 5 s; returns the runner's
/// request cap then.
fn request_cap_after_refusals(adaptive: bool, skip_idle_offers: bool) -> u32 {
    // docker+machine IdleCount 1, request_concurrency 4, concurrent 4, offers every 1 s.
    // 0 s: Acquire pre-creates m0 and refuses (no idle machine): cap 1.
    // 0.5 s: m0 ready. 1 s: Acquire takes m0, job 1 comes: ×1.1 → 1.1, cap 2. The greedy
    //   re-poll's Acquire starts m1 (never ready here) and refuses: ×0.95 → 1.045.
    // 2 s, 3 s, 4 s: Acquire refuses: ×0.95 → floor 1, cap 1. Job 2 stays pending.
    let mut r = machine_runner(1, 3600, 0, 0, 0);
    r.request_concurrency = 4;
    r.adaptive_request_concurrency = adaptive;
    let mut spec = one_process(4, 1000, 0, vec![r]);
    spec.skip_idle_offers = skip_idle_offers;
    let mut fleet = Fleet::new(spec);
    let jobs = job_specs(&mut fleet, &[job(1, 0, 600_000), job(2, 0, 600_000), job(3, 5000, 1)]);
    let mut out = Vec::new();
    fleet.handle(SimTime(0), Input::JobCreated(jobs[0].1), &mut out);
    fleet.handle(SimTime(0), Input::JobCreated(jobs[1].1), &mut out);
    drive(&mut fleet, 0, &mut out);
    let Some(&Command::CreateMachine { machine, .. }) = out.first() else {
        panic!("Acquire pre-creates the idle machine at 0 s: {out:?}");
    };
    fleet.handle(SimTime(500), Input::MachineReady { machine }, &mut out);
    drive(&mut fleet, 4999, &mut out);
    // An input at 5 s applies the offers the fast path skipped.
    fleet.handle(SimTime(5000), Input::JobCreated(jobs[2].1), &mut out);
    assert_eq!(fleet.pending(), 2, "jobs 2 and 3 wait for a machine");
    fleet.request_cap(RunnerId(0))
}

/// Audit item 11. GitLab Runner 19.4 `commands/multi.go` `(*RunCommand).processRunner`: when
/// `provider.Acquire` fails (docker+machine `NoFreeExecutorError`), it calls
/// `buildsHelper.releaseRequest(runner, false, false)`, and `builds_helper.go`
/// `releaseRequest` multiplies the adaptive limit by `concurrencyDecreaseFactor` (0.95).
#[test]
fn adaptive_request_cap_decays_while_acquire_refuses() {
    assert_eq!(request_cap_after_refusals(true, true), 1, "decayed to the floor");
    assert_eq!(request_cap_after_refusals(true, false), 1, "the same offer by offer");
    // Without the decay on refusals the value would have stayed 1.1, a cap of 2.
}

/// Audit item 11, the feature flag: `FF_USE_ADAPTIVE_REQUEST_CONCURRENCY = false` makes
/// `acquireRequest` use `request_concurrency` as it is (`builds_helper.go`).
#[test]
fn adaptive_request_concurrency_off_keeps_request_concurrency_as_the_cap() {
    assert_eq!(request_cap_after_refusals(false, true), 4);
    assert_eq!(request_cap_after_refusals(false, false), 4);
}

/// A scenario directory: `config.toml`, a small trace, and `s.toml` with `extra` appended.
fn scenario_dir(config: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    std::fs::write(
        dir.path().join("trace.csv"),
        "job_id,created_at,duration,project_id\n1,0,60,1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        format!(
            "[scenario]\nname = \"t\"\nseed = 7\n[runner]\nconfig = \"config.toml\"\n\
             [workload]\ntrace = \"trace.csv\"\n{extra}"
        ),
    )
    .unwrap();
    dir
}

const TWO_EXECUTORS: &str = r#"concurrent = 4
[[runners]]
  name = "dm"
  url = "http://gitlab.example"
  token = "glrt-AAAAAAAAAAAAAAAAAAAA"
  executor = "docker+machine"
  [runners.feature_flags]
    FF_USE_ADAPTIVE_REQUEST_CONCURRENCY = false
  [runners.machine]
    IdleCount = 0
    MachineDriver = "amazonec2"
    MachineName = "m-%s"
    MachineOptions = ["amazonec2-instance-type=t2.medium", "amazonec2-region=us-east-1"]
[[runners]]
  name = "da"
  url = "http://gitlab.example"
  token = "glrt-BBBBBBBBBBBBBBBBBBBB"
  executor = "docker-autoscaler"
  [runners.autoscaler]
    plugin = "aws:latest"
    capacity_per_instance = 1
    max_instances = 4
    [[runners.autoscaler.policy]]
      idle_count = 0
"#;

fn build(dir: &tempfile::TempDir, sets: &[&str]) -> fleetsim::scenario::Build {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let s = Scenario::load(&dir.path().join("s.toml"), &sets).unwrap();
    s.build(SeedTree::new(7)).unwrap()
}

/// Audit item 11: `[runners.feature_flags]` is read per runner, as GitLab Runner 19.4
/// `common/config.go` `(*RunnerSettings).IsFeatureFlagOn` does (the runner's table, else the
/// flag's default: true in `helpers/featureflags/flags.go`); `[gitlab]
/// adaptive_request_concurrency` overrides every runner when set.
#[test]
fn feature_flag_under_runners_feature_flags_is_honoured_per_runner() {
    let dir = scenario_dir(TWO_EXECUTORS, "[autoscaler]\ninstance_type = \"t2.medium\"\n");
    let flags = |b: &fleetsim::scenario::Build| -> Vec<bool> {
        b.spec.processes[0].runners.iter().map(|r| r.adaptive_request_concurrency).collect()
    };
    assert_eq!(flags(&build(&dir, &[])), vec![false, true]);
    assert_eq!(
        flags(&build(&dir, &["gitlab.adaptive_request_concurrency=true"])),
        vec![true, true]
    );
}

/// Audit item 3: job requests take time. The default is an assumption (300 ms, see
/// `DEFAULT_REQUEST_LATENCY_MS`); `"0s"` restores the instant request of the theory checks.
#[test]
fn request_latency_has_a_default_and_zero_turns_it_off() {
    let dir = scenario_dir(TWO_EXECUTORS, "[autoscaler]\ninstance_type = \"t2.medium\"\n");
    assert_eq!(build(&dir, &[]).spec.request_latency_ms, DEFAULT_REQUEST_LATENCY_MS);
    assert_eq!(build(&dir, &["gitlab.request_latency=0s"]).spec.request_latency_ms, 0);
    assert_eq!(build(&dir, &["gitlab.request_latency=450ms"]).spec.request_latency_ms, 450);
}

/// Audit item 3, the audit's scenario: `concurrent = 30`, one docker runner, `check_interval
/// = 3`, 30 parallel jobs at 0 s. GitLab Runner 19.4 `commands/multi.go`
/// `processBuildOnRunner` requeues the runner (`requeueRunner`) only after `requestJob`
/// returned the job, so each chain picks one job per request round trip; a new chain starts
/// at each feeder offer. The job's `running` update is not on this path: `network/trace.go`
/// `(*clientJobTrace).start` sends it from its own goroutine (`go c.watch()`), so the audit's
/// `update_latency` has no part in the pick-up.
#[test]
fn a_fan_out_is_picked_one_request_round_trip_at_a_time() {
    let jobs: Vec<_> = (1..=30).map(|i| job(i, 0, 600_000)).collect();
    let sorted_starts = |latency_ms: u64| -> Vec<u64> {
        let mut spec = one_process(30, 3000, 0, vec![RunnerSpec::docker("r")]);
        spec.request_latency_ms = latency_ms;
        let mut s: Vec<u64> = run(spec, &jobs).iter().map(|r| r.started.as_ms()).collect();
        s.sort_unstable();
        s
    };
    assert_eq!(sorted_starts(0), vec![0; 30], "instant requests: all in one instant");
    // 300 ms per request: the chain from the 0 s offer answers at 0.3, 0.6, … s. The feeder's
    // offers at 3 s, 6 s, … start no second chain: `request_concurrency` is 1 (the default),
    // and its one request slot is always taken by the chain (`builds_helper.go`
    // `acquireRequest`: "'request_concurrency' already reached"). 30 jobs take 9 s, not the
    // audit's "k × RTT / chains" with several chains.
    let want: Vec<u64> = (1..=30).map(|k| 300 * k).collect();
    assert_eq!(sorted_starts(300), want);
}

/// Audit item 8: each executor boots its own way. `docker-machine create` provisions Docker
/// over SSH after the VM boots (`[cloud] boot_time`, default median 60 s); a fleeting instance
/// comes from a prepared image (`[cloud] instance_boot_time`, default median 30 s).
#[test]
fn docker_autoscaler_instances_boot_without_docker_machine_provisioning() {
    use fleetsim::cloud::ec2::BootTime;
    let dir = scenario_dir(TWO_EXECUTORS, "[autoscaler]\ninstance_type = \"t2.medium\"\n");
    let boots = |b: &fleetsim::scenario::Build| -> Vec<BootTime> {
        b.machine_types.iter().map(|t| t.as_ref().unwrap().boot).collect()
    };
    assert_eq!(boots(&build(&dir, &[])), vec![BootTime::DEFAULT, BootTime::INSTANCE_DEFAULT]);
    let dir = scenario_dir(
        TWO_EXECUTORS,
        "[autoscaler]\ninstance_type = \"t2.medium\"\n[cloud]\nboot_time = \"90s\"\ninstance_boot_time = \"40s\"\n",
    );
    assert_eq!(boots(&build(&dir, &[])), vec![BootTime::Fixed(90_000), BootTime::Fixed(40_000)]);
}

/// Audit item 9a: GitLab Runner 19.4 `docs/configuration/advanced-configuration.md`:
/// "`max_instances` — The maximum number of instances that are allowed, this is regardless of
/// the instance state (pending, running, deleting)". An instance being deleted holds its place
/// under the cap until it is gone.
#[test]
fn max_instances_counts_instances_being_deleted() {
    // max_instances 1, capacity 1, max_use_count 1, idle_count 0; boot 60 s, removal 5 s.
    // 0 s: job 1 is taken (a reservation), i0 is created, ready at 60 s; job 1 runs 60–70 s.
    //   Job 2 cannot be reserved (acquired + reserved = max_instances × capacity).
    // 70 s: i0 has used its one use and is deleted (gone at 75 s).
    // 72 s: the offer reserves and takes job 2. The cap is full with i0 deleting, so i1 is
    //   created only at 75 s, ready at 135 s, when job 2's script starts (not 132 s).
    let spec = one_process(2, 3000, 0, vec![scaler(1, idle(0, 1800), 1, 1)]);
    let run = run_machines(spec, &[job(1, 0, 10_000), job(2, 0, 10_000)], fixed_cloud(60), None, 1);
    let r2 = &run.records[1];
    assert_eq!((r2.started.as_ms(), r2.script_started.as_ms()), (72_000, 135_000));
    let rows = machine_rows(&run.machines_csv);
    let created: Vec<&str> = rows.iter().map(|r| r["created_at"].as_str()).collect();
    assert_eq!(created, vec!["0.000", "75.000"]);
}
