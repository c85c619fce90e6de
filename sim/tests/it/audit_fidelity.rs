//! The fidelity audit's scenarios (`shared/reference/fidelity-audit.md`), replayed with exact
//! timings against GitLab Runner 19.4's source. Each test names the audit item and the Go (or
//! Workhorse/Rails) function it mirrors; every number was worked out by hand first.

use fleetsim_core::spec::{DEFAULT_LONG_POLL_MS, RunnerSpec};

use crate::common::{fixed_cloud, job, machine_runner, one_process, run, run_machines, starts};

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
    let run = run_machines(spec, &[job(1, 0, 10_000), job(2, 61_000, 10_000)], fixed_cloud(60), None, 1);
    assert_eq!(starts(&run.records), vec![(1, 60_000, 0, 0), (2, 70_000, 9000, 0)]);
    assert_eq!(run.records[1].machine, run.records[0].machine, "the same machine m0");
    assert_eq!(run.totals.created, 1);
}
