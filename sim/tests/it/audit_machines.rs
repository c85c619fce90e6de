//! The fidelity audit's docker+machine and cache items (`shared/reference/fidelity-audit.md`
//! items 2, 6, 7, 10 and the differential case), replayed with exact timings against GitLab
//! Runner 19.4's source. Offers are every 3 s from 0 s (one runner, `check_interval` 3 s);
//! boot takes the fixed time given, removal 5 s. Every number was worked out by hand first.
//! Item 2 (legacy flat S3 keys) is in `cache.rs` (`legacy_flat_s3_keys`).

use fleetsim::engine::{CollectRecords, Engine, ListSource};
use fleetsim_core::cache::{MissReason, Outcome, Policy};
use fleetsim_core::spec::{FleetSpec, Pickup, ProcessSpec, RunnerSpec};
use fleetsim_core::{Fleet, JobId, JobRecord, JobSpec, JobWork, ProjectId, TagSetId};

use crate::common::{fixed_cloud, job, machine_rows, machine_runner, one_process, run_machines};

/// Audit item 10. GitLab Runner 19.4 `executors/docker/machine/provider.go`: `useMachine`
/// finds no free machine and calls `createAndAcquireMachine`, which always `create`s one for
/// the job — even while another creation is under way — and takes whichever comes first, its
/// own machine or one freed meanwhile; the creation goes on either way.
#[test]
fn every_waiting_prepare_creates_its_own_machine() {
    // IdleCount 0, IdleTime 600, no growth limit, boot 60 s.
    // Job 1 (0 s, 20 s): taken at 0 s, creates m0 (ready 60 s), runs 60–80 s.
    // Job 2 (65 s): taken at the 66 s offer (no idle machine, on demand), creates m1 (ready
    //   126 s); m0 comes free at 80 s and job 2 takes it (the coordinator's signal).
    // Job 3 (90 s): taken at 90 s, creates m2 (ready 150 s) although m1 is still being
    //   created; m1 is ready at 126 s, job 2 no longer waits, so job 3 takes it.
    // m2 is ready at 150 s with nobody waiting: it idles and goes at the first Acquire
    //   600 s later (750 s). Three creations; the audit's fleetsim made two (job 3 reused m1).
    let spec = one_process(5, 3000, 0, vec![machine_runner(0, 600, 0, 0, 0)]);
    let jobs = [job(1, 0, 20_000), job(2, 65_000, 1_000_000), job(3, 90_000, 1_000_000)];
    let run = run_machines(spec, &jobs, fixed_cloud(60), None, 1);
    let got: Vec<(u64, u64, u64, u32)> = run
        .records
        .iter()
        .map(|r| (r.id.0, r.started.as_ms(), r.script_started.as_ms(), r.machine.unwrap().0))
        .collect();
    assert_eq!(got, vec![(1, 0, 60_000, 0), (2, 66_000, 80_000, 0), (3, 90_000, 126_000, 1)]);
    assert_eq!(run.totals.created, 3);
    let rows = machine_rows(&run.machines_csv);
    let m2 = rows.iter().find(|r| r["machine_id"] == "2").expect("m2");
    assert_eq!(m2["created_at"], "90.000");
    assert_eq!(m2["ready_at"], "150.000");
    assert_eq!(m2["removal_started_at"], "750.000");
    assert_eq!(m2["jobs"], "0");
}

/// Audit item 10, retries. A Prepare whose own creation fails: GitLab Runner 19.4
/// `provider.go` `retryUseMachine` sleeps `provisionRetryInterval` (1 s, `consts.go`) after
/// each of its 3 `useMachine` failures, the last included; then `common/build.go`
/// `retryCreateExecutor` sleeps `PreparationRetryInterval` (3 s, `common/consts.go`) after
/// each of its 3 failed Prepares, the last included, and the job fails.
#[test]
fn failed_on_demand_creations_are_retried_after_1_s_and_3_s_sleeps() {
    // Every creation fails after 10 s. Job 1 is taken at 0 s. Creations start at
    // 0, 11, 22 (fails 32: Prepare 1 failed, +1 +3 s), 36, 47, 58 (fails 68, +4 s), 72, 83,
    // 94 s; the ninth fails at 104 s and the job fails at 104 + 1 + 3 = 108 s.
    let spec = one_process(1, 3000, 0, vec![machine_runner(0, 0, 0, 0, 0)]);
    let cloud = fleetsim::cloud::ec2::CloudSpec {
        failure_probability: 1.0,
        failure_ms: (10_000, 10_000),
        ..fixed_cloud(60)
    };
    let run = run_machines(spec, &[job(1, 0, 10_000)], cloud, None, 1);
    assert_eq!(run.records.len(), 1);
    let r = &run.records[0];
    assert!(r.failed);
    assert_eq!(r.finished.as_ms(), 108_000);
    let created: Vec<String> =
        machine_rows(&run.machines_csv).iter().map(|r| r["created_at"].clone()).collect();
    assert_eq!(
        created,
        ["0.000", "11.000", "22.000", "36.000", "47.000", "58.000", "72.000", "83.000", "94.000"]
    );
    assert_eq!(run.totals.creation_failed, 9);
}

/// The `IdleTime = 0` rule behind the differential case. GitLab Runner 19.4
/// `idle_limit_strategy.go` `idleTimeExceeded` is `time.Since(Used) > IdleTime`; `Release`
/// sets `Used`, and the next `Acquire` (`provider.go`, after `docker-machine ls`) always runs
/// later in real time, so with `IdleTime = 0` it removes the released machine
/// (`updateMachines` → `shouldRemoveIdle`) before `findFreeMachine` could reuse it — even
/// when the blocked feeder hands the freed worker the runner at once.
#[test]
fn with_idle_time_0_the_next_acquire_removes_a_released_machine_even_at_once() {
    // concurrent 1, IdleCount 0, IdleTime 0, boot 60 s. Job 1 (0 s, 10 s): taken at 0 s, m0
    // ready 60 s, runs to 70 s. Job 2 arrives at 61 s; the 63 s offer finds no idle worker
    // and the feeder blocks. At 70 s m0 is released, then the worker takes the blocked
    // offer: Acquire removes m0 (idle for "more than" 0 s) and says on demand; job 2 is
    // taken at 70 s and boots m1 (ready 130 s).
    let spec = one_process(1, 3000, 0, vec![machine_runner(0, 0, 0, 0, 0)]);
    let run =
        run_machines(spec, &[job(1, 0, 10_000), job(2, 61_000, 10_000)], fixed_cloud(60), None, 1);
    let r2 = &run.records[1];
    assert_eq!((r2.started.as_ms(), r2.script_started.as_ms()), (70_000, 130_000));
    assert_eq!(r2.machine.unwrap().0, 1);
    let rows = machine_rows(&run.machines_csv);
    assert_eq!(
        rows.iter().find(|r| r["machine_id"] == "0").unwrap()["removal_started_at"],
        "70.000"
    );
    assert_eq!(run.totals.created, 2);
}

fn cache_job(fleet: &mut Fleet, id: u64, at_ms: u64) -> (u64, JobSpec) {
    let cache = fleet.declare_cache("k", &[] as &[&str], Policy::PullPush);
    let work = JobWork {
        cache: Some(cache),
        cache_size: 100_000_000,
        cache_changed: true,
        cache_miss_penalty_ms: 60_000,
        ..Default::default()
    };
    let spec = JobSpec {
        id: JobId(id),
        project: ProjectId(1),
        tags: TagSetId::UNTAGGED,
        duration_ms: 10_000,
        retry: 0,
        work,
    };
    (at_ms, spec)
}

fn run_docker(spec: FleetSpec, at: &[u64]) -> Vec<JobRecord> {
    let mut fleet = Fleet::new(spec);
    let list: Vec<_> =
        at.iter().enumerate().map(|(i, &t)| cache_job(&mut fleet, i as u64 + 1, t)).collect();
    let mut records = CollectRecords::default();
    Engine::new().run(&mut fleet, &mut ListSource::new(list), &mut records).unwrap();
    records.records.sort_by_key(|r| r.id);
    records.records
}

/// Audit item 6. GitLab Runner 19.4 `executors/docker/volume.go` names the cache volume
/// `ProjectRealUniqueName()` (`common/build.go`: token, system ID, project ID,
/// `ProjectRunnerID`), and `commands/builds_helper.go` `addBuild` gives each job the lowest
/// `ProjectRunnerID` that no running job of its token and project holds.
#[test]
fn docker_cache_volume_follows_the_project_index_not_the_worker() {
    // concurrent 4, docker, local cache only. One project, key k, four jobs far apart
    // (10 s script, +60 s on a miss): the idle-worker rotation puts them on workers 0–3, but
    // each runs alone, so each is ProjectRunnerID 0 and finds the volume the last one left.
    let spec = one_process(4, 3000, 0, vec![RunnerSpec::docker("d")]);
    let records = run_docker(spec, &[0, 100_000, 200_000, 300_000]);
    let cache: Vec<Outcome> = records.iter().map(|r| r.cache).collect();
    let hit = Outcome::HitLocal { fallback: 0 };
    assert_eq!(cache, [Outcome::Miss(MissReason::NeverUploaded), hit, hit, hit]);
    // Two jobs at once get indices 0 and 1: the second is cold; a later lone job is index 0.
    let spec = one_process(4, 3000, 0, vec![RunnerSpec::docker("d")]);
    let records = run_docker(spec, &[0, 100_000, 100_000, 300_000]);
    let cache: Vec<Outcome> = records.iter().map(|r| r.cache).collect();
    let cold = Outcome::Miss(MissReason::ColdMachine);
    assert_eq!(cache, [Outcome::Miss(MissReason::NeverUploaded), hit, cold, hit]);
}

/// Audit item 7. GitLab Runner 19.4 `cache/cache.go` `GetAdapter`: the object namespace is
/// `runner/<short token>` unless `Shared`, so two hosts with one `config.toml` (one token)
/// share it; hosts registered separately (a token each) do not.
#[test]
fn hosts_sharing_a_token_share_the_cache_namespace() {
    // Two hosts, one docker runner each, S3 cache. host-0 offers at 0, 3, 6 … s and host-1 at
    // 1.5, 4.5 … s. Job 1 (0 s) runs on host-0 and uploads k; job 2 (102.5 s) is taken by
    // host-1's 103.5 s offer and restores k: from S3 when the token is shared.
    for (token_1, want) in [
        (Some(0), Outcome::HitRemote { fallback: 0 }),
        (Some(1), Outcome::Miss(MissReason::NeverUploaded)),
    ] {
        let runner = |token| {
            let mut r = RunnerSpec::docker("d");
            r.cache.distributed = true;
            r.cache.token = token;
            r
        };
        let process = |h: u64, token| ProcessSpec {
            name: format!("host-{h}"),
            concurrent: 1,
            check_interval_ms: 3000,
            first_offer_ms: h * 1500,
            runners: vec![runner(token)],
        };
        let spec = FleetSpec {
            processes: vec![process(0, Some(0)), process(1, token_1)],
            pickup: Pickup::Polling,
            long_poll_ms: 0,
            request_latency_ms: 0,
            cache: Default::default(),
            containers: Default::default(),
            emit_every_step: false,
            skip_idle_offers: true,
        };
        let records = run_docker(spec, &[0, 102_500]);
        assert_eq!((records[0].host.0, records[1].host.0), (0, 1));
        assert_eq!(records[1].cache, want, "token of host-1: {token_1:?}");
    }
}

/// The differential case of issue 13 (`scenarios/differential-growth/`, from
/// `shared/reference/differential-case/`): docker+machine, `IdleCount = 0`, `IdleTime = 0`,
/// `MaxGrowthRate = 1`, `concurrent = 4`, `limit = 10`, fixed 60 s boot, 200 jobs overloading
/// the 4 slots. fleetsim reported a mean pending of 5,003.3 s and an independent compact model
/// of `provider.go` 4,238.8 s; GitLab Runner 19.4's source says neither:
/// - `commands/multi.go` `processRunner`: the machine is released before the worker returns
///   (audit item 5), so the feeder blocked on the runner runs `Acquire` at once;
/// - `executors/docker/machine/provider.go` `Acquire` → `updateMachines` → `shouldRemoveIdle`
///   (`idle_limit_strategy.go` `idleTimeExceeded`, `time.Since(Used) > 0`) removes the
///   released machine, and `canCreateOnDemand` lets the request go (nothing `Creating`);
/// - the job's Prepare (`useMachine` → `createAndAcquireMachine`) boots its own machine, and
///   while it is `Creating`, `machinesGrowthExceeded` (`MaxGrowthRate = 1`) refuses every
///   other `Acquire` — unless another job ends meanwhile and the waiting Prepare takes that
///   machine (`availableMachineSignal`), leaving its own creation to idle and go.
///
/// So every job boots a machine: 200 creations, mean pending 5,614.5 s. The compact model
/// (and fleetsim with the release order alone) let the blocked feeder's `Acquire` reuse the
/// just-released machine at the same instant (4,239.0 s, 12 machines); the old fleetsim freed
/// the worker before the machine, so the next job took the released machine while its own
/// creation blocked growth for 60 s (5,003.3 s, 197 machines).
#[test]
fn differential_case_every_job_boots_its_own_machine() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = crate::cli::sim(&[
        "run",
        "scenarios/differential-growth/scenario.toml",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", crate::cli::stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["pending"]["mean_s"].as_f64(), Some(5614.452));
    assert_eq!(summary["machines"]["created"].as_u64(), Some(200));
    assert_eq!(summary["jobs"]["total"].as_u64(), Some(200));
}

/// Audit item 4. GitLab Runner 19.4 `provider.go` `removeMachine` stops, then removes the
/// machine, which stays `Removing` and counts in `data.go` `Total()` (so against `limit`,
/// `idle_limit_strategy.go` `totalMachinesExceeded`) until it is gone. EC2 bills only the
/// `running` state (Amazon EC2 User Guide, billing by instance state): not the `pending`
/// start (6.4 s, `EC2_PENDING_MS`), not `stopping`/`shutting-down`.
#[test]
fn a_removing_machine_holds_limit_and_is_not_billed() {
    // limit 1, IdleCount 0, MaxBuilds 1, boot 60 s, removal 5 s. Job 1 (0 s, 120 s) is taken
    // at 0 s; m0 created 0 s, ready 60 s, job until 180 s; MaxBuilds removes m0 at 180 s
    // (gone 185 s). Job 2 (100 s) waits for the `limit` slot, then the 183 s Acquire still
    // counts m0 (Removing) against limit 1; the 186 s one creates m1 on demand.
    let spec = one_process(2, 3000, 0, vec![machine_runner(0, 0, 1, 0, 1)]);
    let run = run_machines(
        spec,
        &[job(1, 0, 120_000), job(2, 100_000, 10_000)],
        fixed_cloud(60),
        None,
        1,
    );
    assert_eq!(run.records[1].started.as_ms(), 186_000);
    let rows = machine_rows(&run.machines_csv);
    let row = |id: &str| rows.iter().find(|r| r["machine_id"] == id).unwrap().clone();
    let m0 = row("0");
    assert_eq!(
        (m0["removal_started_at"].as_str(), m0["removed_at"].as_str()),
        ("180.000", "185.000")
    );
    assert_eq!(m0["billed_s"], "174", "running from 6.4 s to the stop at 180 s");
    let m1 = row("1");
    assert_eq!(m1["created_at"], "186.000");
    assert_eq!(m1["billed_s"], "64", "192.4 s to 256 s");
    assert_eq!(run.totals.billed_s, 174 + 64);
}
