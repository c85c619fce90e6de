//! GitLab Runner 19.4's `executors/docker/machine/provider_test.go` and `coordinator_test.go`,
//! the tests that need a job to run and end (the others are in `core/tests/go_provider.rs`):
//! through the whole fleet on simulated EC2 (boot 60 s, removal 5 s, offers every 3 s from
//! 0 s), or on a scripted cloud where a test needs one creation to fail.

use crate::common::{fixed_cloud, job, machine_rows, machine_runner, one_process, run_machines};

/// `TestMachineMaxBuilds`: `MaxBuilds` 2, `IdleCount` 1. In Go the machine has one use behind
/// it, `Use` makes it two, and `Release` removes it ("Too many builds",
/// `(*machineProvider).Release`). Here the machine (`limit` 1, so there is only one) runs two
/// jobs one after the other and is removed when the second ends, not at a later `Acquire`.
#[test]
fn test_machine_max_builds() {
    let spec = one_process(1, 3000, 0, vec![machine_runner(1, 5, 1, 0, 2)]);
    let jobs = [job(1, 100_000, 10_000), job(2, 200_000, 10_000)];
    let run = run_machines(spec, &jobs, fixed_cloud(60), None, 1);
    let on: Vec<u32> = run.records.iter().map(|r| r.machine.unwrap().0).collect();
    assert_eq!(on, vec![0, 0], "both jobs on the one machine");
    let end2 = run.records[1].finished.as_ms();
    let rows = machine_rows(&run.machines_csv);
    assert_eq!(rows[0]["jobs"], "2");
    assert_eq!(rows[0]["removal_reason"], "too many builds");
    assert_eq!(rows[0]["removal_started_at"], format!("{}.{:03}", end2 / 1000, end2 % 1000));
}

/// A cloud whose first creation fails after 10 s and whose later ones are ready after 60 s
/// (GitLab Runner's `testMachine` for `second-fail-%s` names: `Create` fails once, then
/// succeeds); removals take 5 s. Records which machines it was asked to create, and when.
#[derive(Default)]
struct SecondFail {
    created: Vec<(u64, u32)>,
}

impl fleetsim::engine::Provider for SecondFail {
    fn start(&mut self, _: &mut fleetsim::engine::Schedule<'_>) {}
    fn command(
        &mut self,
        now: fleetsim_core::SimTime,
        command: &fleetsim_core::Command,
        schedule: &mut fleetsim::engine::Schedule<'_>,
    ) {
        use fleetsim_core::{Command, Input, SimTime};
        match *command {
            Command::CreateMachine { machine, .. } => {
                let first = self.created.is_empty();
                self.created.push((now.as_ms(), machine.0));
                if first {
                    schedule.input(SimTime(now.as_ms() + 10_000), Input::MachineFailed { machine });
                } else {
                    schedule.input(SimTime(now.as_ms() + 60_000), Input::MachineReady { machine });
                }
            }
            Command::RemoveMachine { machine, .. } => {
                schedule.input(SimTime(now.as_ms() + 5000), Input::MachineRemoved { machine });
            }
            _ => {}
        }
    }
    fn event(
        &mut self,
        _: fleetsim_core::SimTime,
        _: u64,
        _: &mut fleetsim::engine::Schedule<'_>,
        _: &mut Vec<fleetsim_core::Input>,
    ) {
    }
    fn after_input(
        &mut self,
        _: fleetsim_core::SimTime,
        _: &fleetsim_core::Input,
        _: &mut fleetsim::engine::Schedule<'_>,
    ) {
    }
}

/// `TestMachineTestRetry`: with a machine whose first `Create` fails, one `useMachine` fails
/// ("fails to create a new machine"), and `retryUseMachine` (`provider.go`: up to 3
/// `useMachine` calls, `provisionRetryInterval` apart, 1 s in `consts.go`; the Go test sets
/// it to 0) succeeds with the machine acquired. Here a job is taken at 0 s on demand
/// (`IdleCount` 0): its first creation fails at 10 s, and the retry 1 s later, at 11 s,
/// creates the machine that is ready at 71 s, where the job's script starts; the job does
/// not fail and no Prepare retry (3 s) is spent.
#[test]
fn test_machine_test_retry() {
    use fleetsim::engine::{CollectRecords, Engine, ListSource};
    let spec = one_process(1, 3000, 0, vec![machine_runner(0, 0, 0, 0, 0)]);
    let mut fleet = fleetsim_core::Fleet::new(spec);
    let list = crate::common::job_specs(&mut fleet, &[job(1, 0, 10_000)]);
    let mut cloud = SecondFail::default();
    let mut records = CollectRecords::default();
    Engine::new()
        .run_with(&mut fleet, &mut ListSource::new(list), &mut records, &mut cloud)
        .expect("run ends");
    assert_eq!(cloud.created, vec![(0, 0), (11_000, 1)], "one failed create, one retry");
    assert_eq!(records.records.len(), 1);
    let r = &records.records[0];
    assert!(!r.failed, "after the retry the job has its machine");
    assert_eq!(r.machine.map(|m| m.0), Some(1));
    assert_eq!((r.started.as_ms(), r.script_started.as_ms()), (0, 71_000));
}

/// `TestRunnerMachinesCoordinator_SignalMachineAvailable` / "frees a waiting machine": a
/// waiter blocked in `createAndAcquireMachine` takes a machine made available meanwhile
/// (`addAvailableMachine`, from `signalRelease` when a job releases its machine) instead of
/// waiting for its own creation. Job 1 runs on m0 from 60 s to 80 s; job 2, taken at the
/// 66 s offer, creates m1 (ready 126 s) but takes m0 when job 1 releases it at 80 s.
#[test]
fn test_runner_machines_coordinator_signal_machine_available_frees_a_waiting_machine() {
    let spec = one_process(2, 3000, 0, vec![machine_runner(0, 600, 0, 0, 0)]);
    let jobs = [job(1, 0, 20_000), job(2, 65_000, 10_000)];
    let run = run_machines(spec, &jobs, fixed_cloud(60), None, 1);
    let two = &run.records[1];
    assert_eq!(two.id.0, 2);
    assert_eq!((two.started.as_ms(), two.script_started.as_ms()), (66_000, 80_000));
    assert_eq!(two.machine.map(|m| m.0), Some(0), "the freed machine, not its own");
    assert_eq!(run.totals.created, 2, "its own creation went on");
}

/// `TestRunnerMachinesCoordinator_SignalMachineAvailable` / "does not block": a machine
/// made available with nobody waiting (`addAvailableMachine`'s non-blocking send finds no
/// receiver) is still counted as available, and the next job's `Acquire` finds it
/// (`findFreeExistingMachine`) without a creation. Job 1 ends on m0 at 80 s with nobody
/// waiting; job 2, queued at 100 s, is taken at the 102 s offer and runs on m0 at once.
#[test]
fn test_runner_machines_coordinator_signal_machine_available_does_not_block() {
    let spec = one_process(2, 3000, 0, vec![machine_runner(0, 600, 0, 0, 0)]);
    let jobs = [job(1, 0, 20_000), job(2, 100_000, 10_000)];
    let run = run_machines(spec, &jobs, fixed_cloud(60), None, 1);
    let two = &run.records[1];
    assert_eq!((two.started.as_ms(), two.script_started.as_ms()), (102_000, 102_000));
    assert_eq!(two.machine.map(|m| m.0), Some(0));
    assert_eq!(run.totals.created, 1);
}
