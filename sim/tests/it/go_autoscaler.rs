//! GitLab Runner 19.4's docker-autoscaler executor tests (`executors/internal/autoscaler/`),
//! ported where they pin what fleetsim models: capacity, `Reserve` (the runner's `Acquire`),
//! `Acquire` in Prepare and its timeout. One Rust test per Go case, named after it. The
//! scenarios run on simulated EC2 (boot 60 s, removal 5 s), one runner with `check_interval`
//! 3 s, offers every 3 s from 0 s.
//!
//! In Go, `(*provider).Acquire` (`provider.go`) is called before each job request: it
//! configures the schedule, then `taskscaler.Reserve`; `ErrNoCapacity` becomes
//! `common.NoFreeExecutorError`, and `commands/multi.go` `processRunner` then returns without
//! requesting a job, so the job stays pending in GitLab. In fleetsim that `Reserve` is
//! `InstancePool::can_reserve` (`core/src/taskscaler.rs`): in preemptive mode a free ready slot
//! must be left after the other reservations, otherwise `acquired + reserved < max_instances ×
//! capacity_per_instance`. The Go tests mock taskscaler's answer (`canReserve`); here each case
//! builds the fleet state that gives that answer and checks what the job does.
//!
//! # Not expressible through fleetsim's inputs
//!
//! | Go test (case) | why |
//! |---|---|
//! | `TestInit` ("nil autoscaler config return error") | a docker-autoscaler runner without `[runners.autoscaler]`: refused at load ("GitLab Runner cannot create instances", `sim/src/config/validated.rs`), never run |
//! | `TestInit` ("taskscaler exists and is not created", "taskscaler does not exist and is created", "returns correct taskscaler", "detect refresh on config change") | the provider's map of taskscaler objects and config reloads: fleetsim builds one instance pool per `[[runners]]` entry at start and never reloads |
//! | `TestInit` ("error creating fleeting plugin", "error creating new taskscaler") | plugin start-up failures: fleetsim runs no plugin |
//! | `TestInit` ("scaler lookup is keyed by URL+ID not token", "scaler lookup falls back to token when ID is unset"), `TestInitReusesScalerOnTokenRotation`, `TestProviderTokenRotationDoesNotPruneInstance` | token rotation and the scaler's map key: fleetsim has no token rotation, and each entry has its own pool |
//! | `TestAcquire` ("failed init", "failed configure schedule") | the same plugin/taskscaler start-up errors |
//! | `TestPrepare` ("no acquisition ref") | `Prepare` without the data `Acquire` returned: a Go API misuse |
//! | `TestPrepare` ("retry acquisition should Prepare twice") | a failed inner (docker) Prepare after the slot was acquired: fleetsim's Prepare on an acquired slot does not fail |
//! | `TestPrepare` ("acquire failed") | taskscaler's `Acquire` returning an error other than the timeout: not modelled |
//! | `TestAcquisitionRef_Prepare` (all cases), `TestClientClose`, `TestAcquisitionRef_PrepareClosesClientOnCancelledDial` | connection info, dialers, nesting VMs and SSH tunnels: fleetsim opens no connection |
//! | `TestAcquisitionRef_AcquisitionSlot`, `TestAcquisitionRef_Prepare_SlotCgroupEnvironmentVariable` | the slot number and its cgroup variable given to the job: no observable effect on timings |
//! | `TestBuildErrorFromContextCause` | the failure reason's Go error type |
//! | `TestMachineExecutor_*` (interactive terminal, connector) | executor interfaces for the web terminal and steps |
//! | `TestExecutor_Suspend_*`, `TestExecutor_Resume_*`, `TestReleaseCallsSuspend_NonSuspendPath` | suspend/resume of environments (`FF_SUSPENDABLE_ENVIRONMENTS`): not modelled |
//! | `TestWithInit` (`nesting_init_test.go`), `TestParseEnvKeyFields_*` (`environment_key_fields_test.go`) | nesting initialisation and runtime environment keys: not modelled |

use fleetsim_core::taskscaler::Policy;

use crate::common::{fixed_cloud, job, machine_rows, one_process, run_machines};
use crate::docker_autoscaler::scaler;

/// The policy of a `TestAcquire` case: `IdleCount` and `PreemptiveMode` as the case sets
/// them (the Go test passes `PreemptiveMode` explicitly, false unless the case says true);
/// idle instances stay 10 min, so the slot of a finished job is still there.
fn policy(idle_count: u32, preemptive: bool) -> Policy {
    Policy { idle_count, idle_time_ms: 600_000, preemptive, ..Policy::default() }
}

/// A case where `Reserve` succeeds (`canReserve: true`) for a job queued at 10 s with no job
/// running: the job is requested at the next offer, 12 s, before any instance is ready
/// (`wantAcquisitionRef`: the acquisition is made before the job request), and its Prepare
/// acquires the slot when the instance is ready. Returns the job's
/// `(started, script_started)` in ms and the instances created.
fn reserve_succeeds(policy: Policy, max_instances: u32) -> (u64, u64, usize) {
    let spec = one_process(4, 3000, 0, vec![scaler(1, policy, max_instances, 0)]);
    let run = run_machines(spec, &[job(1, 10_000, 100_000)], fixed_cloud(60), None, 1);
    let r = &run.records[0];
    assert!(!r.failed);
    assert!(r.machine.is_some(), "Prepare acquired a slot");
    (r.started.as_ms(), r.script_started.as_ms(), machine_rows(&run.machines_csv).len())
}

/// A case where `Reserve` answers `ErrNoCapacity` (`canReserve: false`): `max_instances` 1,
/// capacity 1, and job 1 (queued at 1 s, taken at the 3 s offer, its script on the instance
/// from `ready_ms` for 100 s) holds the only slot. Job 2, queued at 10 s, is never requested
/// while it does (`wantErr`: `NoFreeExecutorError`, no job request): it stays pending until
/// the first offer after job 1 released its slot and runs on the same instance at once.
fn reserve_refuses(policy: Policy, ready_ms: u64) {
    let spec = one_process(4, 3000, 0, vec![scaler(1, policy, 1, 0)]);
    let jobs = [job(1, 1000, 100_000), job(2, 10_000, 100_000)];
    let run = run_machines(spec, &jobs, fixed_cloud(60), None, 1);
    let (one, two) = (&run.records[0], &run.records[1]);
    assert_eq!((one.id.0, two.id.0), (1, 2));
    let released = ready_ms + 100_000;
    assert_eq!(
        (one.started.as_ms(), one.script_started.as_ms(), one.finished.as_ms()),
        (3000, ready_ms, released)
    );
    let offer = released.div_ceil(3000) * 3000;
    assert!(offer > released, "the release falls between offers");
    assert_eq!(
        (two.started.as_ms(), two.script_started.as_ms()),
        (offer, offer),
        "job 2 is pending while Reserve refuses"
    );
    assert_eq!(two.machine, one.machine);
    assert_eq!(machine_rows(&run.machines_csv).len(), 1, "max_instances 1");
}

/// `TestAcquire` "has capacity, no idle count": `IdleCount` 0, `Reserve` succeeds.
#[test]
fn test_acquire_has_capacity_no_idle_count() {
    // The reservation makes the scaler create the instance at 12 s, ready at 72 s.
    assert_eq!(reserve_succeeds(policy(0, false), 2), (12_000, 72_000, 1));
}

/// `TestAcquire` "preemptiveMode false": `Reserve` succeeds without a ready instance.
#[test]
fn test_acquire_preemptive_mode_false() {
    assert_eq!(reserve_succeeds(policy(0, false), 0), (12_000, 72_000, 1));
}

/// `TestAcquire` "preemptiveMode true": in preemptive mode `Reserve` succeeds only with a
/// free slot on a ready instance, so the case's `canReserve` needs one: `IdleCount` 1 keeps
/// an instance from 0 s, ready at 60 s. The job queued at 10 s is requested at the first
/// offer after that, 60 s, and its script starts at once; taking the idle slot makes the
/// scaler create a second instance.
#[test]
fn test_acquire_preemptive_mode_true() {
    assert_eq!(reserve_succeeds(policy(1, true), 0), (60_000, 60_000, 2));
}

/// `TestAcquire` "has capacity, has idle count": `IdleCount` 1 with `PreemptiveMode` false
/// (as the Go case sets it): `Reserve` succeeds before the idle instance (created at 0 s) is
/// ready; the job is requested at 12 s and acquires that instance at 60 s.
#[test]
fn test_acquire_has_capacity_has_idle_count() {
    let (started, script, _) = reserve_succeeds(policy(1, false), 0);
    assert_eq!((started, script), (12_000, 60_000));
}

/// `TestAcquire` "no capacity, no idle count": `IdleCount` 0, `Reserve` refuses. Job 1's
/// reservation creates the instance at 3 s, ready at 63 s; job 1 ends at 163 s and job 2 is
/// taken at the 165 s offer.
#[test]
fn test_acquire_no_capacity_no_idle_count() {
    reserve_refuses(policy(0, false), 63_000);
}

/// `TestAcquire` "no capacity, has idle count": `IdleCount` 1, `Reserve` refuses. The idle
/// instance is created at 0 s, ready at 60 s, and job 1 takes it; `max_instances` leaves no
/// room for another idle one. Job 1 ends at 160 s and job 2 is taken at the 162 s offer.
#[test]
fn test_acquire_no_capacity_has_idle_count() {
    reserve_refuses(policy(1, false), 60_000);
}

/// `TestPrepare` "new acquisition": Prepare of a job whose `Reserve` succeeded acquires a slot
/// (`taskscaler.Acquire` once) and the inner executor prepares on it: the job runs on an
/// instance, in the slot `Reserve` counted.
#[test]
fn test_prepare_new_acquisition() {
    let spec = one_process(4, 3000, 0, vec![scaler(2, policy(0, false), 1, 0)]);
    let jobs = [job(1, 10_000, 100_000), job(2, 10_000, 100_000)];
    let run = run_machines(spec, &jobs, fixed_cloud(60), None, 1);
    // Two reservations on one instance of capacity 2: both jobs acquire a slot on it.
    assert_eq!(run.records.len(), 2);
    assert!(run.records.iter().all(|r| !r.failed && r.machine == run.records[0].machine));
    assert_eq!(machine_rows(&run.machines_csv).len(), 1);
}

/// `TestPrepare` "acquire failed due to timeout": `instance_acquire_timeout = "3s"`
/// (`executor.go` `Prepare`: `context.WithTimeout(…, InstanceAcquireTimeout)`, "unable to
/// acquire instance within the configured timeout of 3s"). The instance takes 60 s to boot,
/// so every Prepare attempt times out: the job fails after GitLab Runner's 3 attempts
/// (`common/build.go`, `PreparationRetries`) and the 3 s pauses between them, 3 × 3 s +
/// 2 × 3 s = 15 s after it was taken, without ever getting an instance.
#[test]
fn test_prepare_acquire_failed_due_to_timeout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "concurrent = 1\ncheck_interval = 3\n[[runners]]\n  name = \"da\"\n  \
         url = \"http://gitlab.example\"\n  token = \"glrt-BBBBBBBBBBBBBBBBBBBB\"\n  \
         executor = \"docker-autoscaler\"\n  [runners.autoscaler]\n    plugin = \"aws:latest\"\n    \
         capacity_per_instance = 1\n    max_instances = 1\n    instance_acquire_timeout = \"3s\"\n    \
         [[runners.autoscaler.policy]]\n      idle_count = 0\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("trace.csv"), "job_id,created_at,duration\n1,0,60\n").unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[scenario]\nname = \"t\"\nseed = 7\n[runner]\nconfig = \"config.toml\"\n\
         [workload]\ntrace = \"trace.csv\"\n[cloud]\ninstance_boot_time = \"60s\"\n\
         [autoscaler]\ninstance_type = \"t2.medium\"\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["run", dir.path().join("s.toml").to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = machine_rows(&std::fs::read_to_string(out.join("jobs.csv")).unwrap());
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["failed"], "true");
    assert_eq!(r["machine"], "", "no instance was acquired");
    let ms = |c: &str| (r[c].parse::<f64>().unwrap() * 1000.0).round() as u64;
    assert_eq!(ms("finished_at") - ms("started_at"), 15_000);
}
