//! GitLab Runner 19.4's `executors/docker/machine/provider_test.go`, the tests that need a job
//! to run and end (the others are in `core/tests/go_provider.rs`): through the whole fleet on
//! simulated EC2 (boot 60 s, removal 5 s, offers every 3 s from 0 s).

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
