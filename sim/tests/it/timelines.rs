//! Hand-worked timelines of GitLab Runner's polling loop (reference §1.2–1.5). Every number
//! below was worked out by hand from the algorithm before the test was run.

use fleetsim_core::spec::{DEFAULT_LONG_POLL_MS, RunnerSpec};

use crate::common::{TestJob, job, one_process, run, starts};

#[test]
fn a_job_waits_for_the_next_offer_then_for_a_free_worker() {
    // concurrent 1, check_interval 3 s, offers at 0, 3, 6, … s.
    // A (t=1 s, 10 s) is picked up at the 3 s offer: 2 s of polling delay.
    // B (t=2 s, 5 s): at 6 s no worker is idle, so the feeder blocks; when A ends at 13 s
    //   the freed worker takes the blocked offer at once: 11 s waiting for capacity, 0 polling.
    //   The feeder sleeps from there: its next offer at 16 s finds B running and blocks again.
    // B ends at 18 s; the freed worker takes the blocked offer at once, finds no job, and the
    //   feeder's next offer is at 21 s. C (t=18.5 s) waits for it: 2.5 s of polling delay.
    let spec = one_process(1, 3000, 0, vec![RunnerSpec::docker("r")]);
    let records = run(spec, &[job(1, 1000, 10_000), job(2, 2000, 5000), job(3, 18_500, 1000)]);
    assert_eq!(
        starts(&records),
        vec![(1, 3000, 0, 2000), (2, 13_000, 11_000, 0), (3, 21_000, 0, 2500)]
    );
}

#[test]
fn greedy_re_poll_takes_several_jobs_at_one_offer_unless_strict() {
    let jobs = [job(1, 100, 60_000), job(2, 100, 60_000), job(3, 100, 60_000)];
    let spec = one_process(3, 3000, 0, vec![RunnerSpec::docker("r")]);
    let got: Vec<u64> = run(spec, &jobs).iter().map(|r| r.started.as_ms()).collect();
    assert_eq!(got, vec![3000, 3000, 3000], "one offer, then greedy re-polls on idle workers");

    let mut strict = RunnerSpec::docker("r");
    strict.strict_check_interval = true;
    let spec = one_process(3, 3000, 0, vec![strict]);
    let got: Vec<u64> = run(spec, &jobs).iter().map(|r| r.started.as_ms()).collect();
    assert_eq!(got, vec![3000, 6000, 9000], "strict_check_interval: one job per offer");
}

#[test]
fn offers_are_staggered_across_runner_entries() {
    // Two entries, check_interval 3 s: r0 offered at 0, 3, 6 s; r1 at 1.5, 4.5, 7.5 s.
    let mut r0 = RunnerSpec::docker("r0");
    r0.tags = vec!["a".into()];
    r0.run_untagged = false;
    let mut r1 = RunnerSpec::docker("r1");
    r1.tags = vec!["b".into()];
    r1.run_untagged = false;
    let spec = one_process(2, 3000, 0, vec![r0, r1]);
    let jobs = [
        TestJob { tags: vec!["a"], ..job(1, 2000, 1000) },
        TestJob { tags: vec!["b"], ..job(2, 2000, 1000) },
    ];
    let records = run(spec, &jobs);
    assert_eq!(starts(&records), vec![(1, 3000, 0, 1000), (2, 4500, 0, 2500)]);
    assert_eq!(records[0].runner.0, 0);
    assert_eq!(records[1].runner.0, 1);
}

#[test]
fn limit_caps_the_jobs_of_an_entry_and_frees_at_the_next_offer() {
    // concurrent 4 but limit 1. Job 1 starts at the 0 s offer (inputs at an instant come
    // before the core's wakeup). Job 2 waits: offers at 3, 6, 9 s find the limit reached;
    // job 1 ends at 10 s, the 12 s offer takes job 2: 10 s for capacity, 2 s polling.
    let mut r = RunnerSpec::docker("r");
    r.limit = 1;
    let spec = one_process(4, 3000, 0, vec![r]);
    let records = run(spec, &[job(1, 0, 10_000), job(2, 0, 10_000)]);
    assert_eq!(starts(&records), vec![(1, 0, 0, 0), (2, 12_000, 10_000, 2000)]);
}

#[test]
fn long_polling_answers_at_once_when_a_job_arrives() {
    // The 0 s offer holds the request (50 s); the 3 s offer finds no idle worker, so the
    // feeder blocks on the runner. A job at 20 s releases the poll with a 204 from Workhorse,
    // not the job (audit item 1; Workhorse `RegisterHandler`, `WatchKeyStatusSeenChange`);
    // the freed worker takes the blocked offer at once, and that request (its `last_update`
    // now stale) goes to Rails and takes the job at 20 s. (With an idle worker the job would
    // wait for the next offer: see `audit_fidelity`.)
    let mut spec = one_process(1, 3000, 0, vec![RunnerSpec::docker("r")]);
    spec.long_poll_ms = DEFAULT_LONG_POLL_MS;
    let records = run(spec, &[job(1, 20_000, 1000)]);
    assert_eq!(starts(&records), vec![(1, 20_000, 0, 0)]);
}

#[test]
fn long_polling_starves_other_entries_when_concurrent_is_too_small() {
    // The documented pathology: concurrent 1 with two entries. r0's empty request is held
    // from 0 s to 50 s; r1's offer at 1.5 s blocks the feeder (no idle worker). A job for r1
    // at 2 s waits until r0's poll expires at 50 s, then the freed worker takes r1 at once.
    let mut r0 = RunnerSpec::docker("r0");
    r0.tags = vec!["a".into()];
    r0.run_untagged = false;
    let mut r1 = RunnerSpec::docker("r1");
    r1.tags = vec!["b".into()];
    r1.run_untagged = false;
    let mut spec = one_process(1, 3000, 0, vec![r0, r1]);
    spec.long_poll_ms = DEFAULT_LONG_POLL_MS;
    let records = run(spec, &[TestJob { tags: vec!["b"], ..job(1, 2000, 1000) }]);
    assert_eq!(records[0].started.as_ms(), 50_000);
    assert_eq!(records[0].runner.0, 1);
}

#[test]
fn immediate_pickup_starts_jobs_the_moment_capacity_is_free() {
    let mut spec = one_process(1, 3000, 0, vec![RunnerSpec::docker("r")]);
    spec.pickup = fleetsim_core::Pickup::Immediate;
    let records = run(spec, &[job(1, 1000, 10_000), job(2, 2000, 5000)]);
    assert_eq!(starts(&records), vec![(1, 1000, 0, 0), (2, 11_000, 9000, 0)]);
}

#[test]
fn fair_usage_interleaves_projects_on_an_instance_runner() {
    // Two workers; project 1 floods jobs 1-3, project 2 has job 4. Job 1 runs for a minute
    // from the 0 s offer; at the 3 s offer project 2 has fewer running jobs (0 against 1),
    // so job 4 goes before jobs 2 and 3, which then run one after the other.
    let spec = one_process(2, 3000, 0, vec![RunnerSpec::docker("r")]);
    let jobs = [
        job(1, 0, 60_000),
        job(2, 100, 5000),
        job(3, 100, 5000),
        TestJob { project: 2, ..job(4, 200, 5000) },
    ];
    let order: Vec<u64> = {
        let mut r = run(spec, &jobs);
        r.sort_by_key(|r| r.started);
        r.iter().map(|r| r.id.0).collect()
    };
    assert_eq!(order, vec![1, 4, 2, 3]);
}
