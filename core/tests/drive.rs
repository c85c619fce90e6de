//! The core tests itself: a small deterministic driver, in the core's own crate, that runs
//! [`Fleet::handle`] and [`Fleet::next_wakeup`] end to end through the same contract the
//! simulator and the live driver use ([`Drive`], [`JobSource`], [`Port`], [`Observer`]),
//! without `sim`: a time-ordered event list, steps that end after their duration, machines
//! that boot and go away in fixed times. Each test works its expected timings out by hand from
//! GitLab Runner's rules, cited where they are used.

use std::collections::{BTreeMap, VecDeque};

use fleetsim_core::docker_machine::{DockerMachineSpec, IdleSettings};
use fleetsim_core::drive::{Drive, JobSource, Observer, Port};
use fleetsim_core::pipelines::{NewJob, Pipelines};
use fleetsim_core::{
    Command, ExecutorKind, Fleet, FleetSpec, Input, JobId, JobRecord, JobSpec, JobWork, Pickup,
    ProjectId, RunnerSpec, SimTime, Step, TagSetId,
};

/// A job of `ms` script time.
fn job(id: u64, ms: u64) -> JobSpec {
    JobSpec {
        id: JobId(id),
        project: ProjectId(1),
        tags: TagSetId(0),
        duration_ms: ms,
        retry: 0,
        work: JobWork::default(),
    }
}

/// Jobs at their instants, or pipelines handed whole to the core at their creation.
#[derive(Default)]
struct Jobs {
    flat: VecDeque<(SimTime, JobSpec)>,
    /// Pipelines not yet handed over: creation, jobs, needs.
    pipelines: VecDeque<(SimTime, Vec<NewJob>, Vec<u32>)>,
    /// Jobs of the last pipeline pending at once, in reverse order.
    roots: Vec<(SimTime, JobSpec)>,
}

impl JobSource for Jobs {
    type Error = std::convert::Infallible;

    fn next_job(
        &mut self,
        _: &mut Fleet,
        pipelines: &mut Pipelines,
    ) -> Result<Option<(SimTime, JobSpec)>, Self::Error> {
        if let Some(root) = self.roots.pop() {
            return Ok(Some(root));
        }
        if let Some((created, jobs, needs)) = self.pipelines.pop_front() {
            pipelines.insert(created, &jobs, &needs, &mut self.roots).expect("no cycle");
            self.roots.reverse();
            return Ok(self.roots.pop());
        }
        Ok(self.flat.pop_front())
    }
}

/// Steps end after their duration; machines are ready `boot_ms` after they are asked for and
/// gone `removal_ms` after their removal starts.
struct World {
    events: BTreeMap<(SimTime, u64), Input>,
    seq: u64,
    boot_ms: u64,
    removal_ms: u64,
}

impl World {
    fn at(&mut self, t: SimTime, input: Input) {
        self.seq += 1;
        self.events.insert((t, self.seq), input);
    }
}

impl Port for World {
    fn carry_out(&mut self, now: SimTime, _: &Input, commands: &mut [Command]) {
        for c in commands.iter() {
            match *c {
                Command::StartStep { job, step, duration_ms, token, .. } => {
                    self.at(now + duration_ms, Input::StepDone { job, step, token });
                }
                Command::CreateMachine { machine, .. } => {
                    self.at(now + self.boot_ms, Input::MachineReady { machine });
                }
                Command::RemoveMachine { machine, .. } => {
                    self.at(now + self.removal_ms, Input::MachineRemoved { machine });
                }
                Command::JobFinished(_) => {}
            }
        }
    }
}

/// What the run did.
#[derive(Default)]
struct Log {
    records: Vec<JobRecord>,
    created: u32,
    removed: u32,
    most_running: u32,
    inputs: u64,
    /// Every step started: job, step, duration.
    steps: Vec<(u64, Step, u64)>,
}

impl Observer for Log {
    fn after_input(&mut self, _: SimTime, fleet: &Fleet, _: bool, commands: &[Command]) {
        self.inputs += 1;
        self.most_running = self.most_running.max(fleet.running());
        for c in commands {
            match c {
                Command::JobFinished(r) => self.records.push(*r),
                Command::CreateMachine { .. } => self.created += 1,
                Command::RemoveMachine { .. } => self.removed += 1,
                Command::StartStep { step, duration_ms, work, .. } => {
                    self.steps.push((work.spec.id.0, *step, *duration_ms));
                }
            }
        }
    }
}

/// Runs until the source is empty and the fleet idle (and every machine event is in), in the
/// simulator's order: arrivals first at an instant, then scheduled events, the core's wakeup
/// last.
fn run(spec: FleetSpec, jobs: Jobs, boot_ms: u64) -> (Log, Drive) {
    run_fleet(Fleet::new(spec), jobs, boot_ms)
}

/// [`run`] with a fleet made (and its caches declared) by the test.
fn run_fleet(mut fleet: Fleet, mut jobs: Jobs, boot_ms: u64) -> (Log, Drive) {
    let mut world = World { events: BTreeMap::new(), seq: 0, boot_ms, removal_ms: 5_000 };
    let mut log = Log::default();
    let mut drive = Drive::new();
    let mut next = drive.next_job(&mut fleet, &mut jobs).expect("infallible");
    let mut batch = Vec::new();
    loop {
        // Done when every job has ended and every machine asked for is gone.
        if next.is_none()
            && fleet.is_idle()
            && world.events.is_empty()
            && log.removed == log.created
        {
            break;
        }
        assert!(log.inputs < 100_000, "the run does not end");
        let event = world.events.keys().next().map(|&(t, _)| t);
        let input_at = [next.map(|(t, _)| t), event].into_iter().flatten().min();
        let wake = fleet.next_wakeup();
        let input_first = match (input_at, wake) {
            (Some(i), Some(w)) => i <= w,
            (i, _) => i.is_some(),
        };
        let (now, input) = if input_first {
            let i = input_at.expect("an input");
            if next.is_some_and(|(t, _)| t == i) {
                let (_, spec) = next.take().expect("checked");
                next = drive.next_job(&mut fleet, &mut jobs).expect("infallible");
                (i, Input::JobCreated(spec))
            } else {
                let (&k, _) = world.events.iter().next().expect("an event");
                (i, world.events.remove(&k).expect("present"))
            }
        } else {
            (wake.expect("the fleet has more to do"), Input::Wakeup)
        };
        batch.clear();
        batch.push(input);
        drive.handle(&mut fleet, now, &mut batch, &mut world, &mut log);
    }
    assert!(fleet.is_idle());
    (log, drive)
}

fn docker(concurrent: u32, pickup: Pickup) -> FleetSpec {
    let mut spec = FleetSpec::single_docker(concurrent, pickup);
    spec.processes[0].check_interval_ms = 3_000;
    spec
}

fn secs(t: SimTime) -> f64 {
    t.as_secs_f64()
}

/// The queue and the feeder (GitLab Runner `commands/multi.go` `feedRunners`: one offer per
/// `check_interval`, here 3 s from 0, sent on the unbuffered `runners` channel): job 1 arrives
/// at 0 and is taken at the offer at 0; job 2 arrives at 1 s while the only worker
/// (`concurrent = 1`) is busy until 10 s. The offer at 3 s blocks in `feedRunner` until a
/// worker receives it, so the worker that frees at 10 s takes it at once and job 2 starts at
/// 10 s, not at the next tick (12 s).
#[test]
fn a_busy_worker_leaves_the_next_job_to_the_next_offer() {
    let jobs = Jobs {
        flat: [(SimTime(0), job(1, 10_000)), (SimTime(1_000), job(2, 10_000))].into(),
        ..Jobs::default()
    };
    let (log, _) = run(docker(1, Pickup::Polling), jobs, 0);
    let r: Vec<_> =
        log.records.iter().map(|r| (r.id.0, secs(r.started), secs(r.finished))).collect();
    assert_eq!(r, vec![(1, 0.0, 10.0), (2, 10.0, 20.0)]);
    assert_eq!(log.most_running, 1);
}

/// No per-tick work when nothing can change: a job at 0 and one a day later are two jobs'
/// worth of inputs, not 28,800 feeder ticks (`FleetSpec::skip_idle_offers`).
#[test]
fn an_idle_day_costs_no_inputs() {
    let jobs = Jobs {
        flat: [(SimTime(0), job(1, 1_000)), (SimTime(86_400_000), job(2, 1_000))].into(),
        ..Jobs::default()
    };
    let (log, _) = run(docker(1, Pickup::Polling), jobs, 0);
    assert_eq!(log.records.len(), 2);
    assert_eq!(secs(log.records[1].started), 86_400.0, "the offer at 86,400 s (a multiple of 3 s)");
    assert!(log.inputs < 50, "{} inputs for two jobs a day apart", log.inputs);
}

/// A docker+machine burst (GitLab Runner `executors/docker/machine/provider.go` `Acquire`:
/// with `IdleCount = 0` a machine is created on demand for each job, up to `limit`): five jobs
/// at 0 on a `limit = 5` runner create five machines; each script starts when its machine is
/// ready (60 s boot); the five run side by side; idle with `IdleTime = 0`, every machine is
/// removed afterwards.
#[test]
fn a_docker_machine_burst_creates_one_machine_per_job_and_removes_them() {
    let dm = DockerMachineSpec {
        root: IdleSettings { idle_count: 0, idle_time_ms: 0, ..IdleSettings::default() },
        sections: Vec::new(),
        max_growth_rate: 0,
        max_builds: 0,
    };
    let runner = RunnerSpec {
        executor: ExecutorKind::DockerMachine(dm),
        limit: 5,
        ..RunnerSpec::docker("m")
    };
    let mut spec = docker(10, Pickup::Polling);
    spec.processes[0].runners = vec![runner];
    let jobs =
        Jobs { flat: (1..=5).map(|i| (SimTime(0), job(i, 30_000))).collect(), ..Jobs::default() };
    let (log, _) = run(spec, jobs, 60_000);
    assert_eq!(log.created, 5);
    assert_eq!(log.removed, 5);
    assert_eq!(log.most_running, 5);
    assert_eq!(log.records.len(), 5);
    let machines: std::collections::BTreeSet<_> =
        log.records.iter().map(|r| r.machine.expect("on a machine")).collect();
    assert_eq!(machines.len(), 5, "one machine per job");
    for r in &log.records {
        assert!(secs(r.script_started) >= 60.0, "job {} started its script before a boot", r.id);
        assert_eq!(r.finished - r.script_started, 30_000);
    }
}

/// Pipeline release through the one input handler (GitLab's `needs` and stages): job 1
/// (stage 0, 10 s) and job 3 (stage 1, `needs: []`) are pending at once; job 2 (stage 1, no
/// needs) is released at the instant job 1 finishes and, with immediate pick-up, starts then.
/// Its record is created with the pipeline (0 s) and queued at 10 s. In a second pipeline job
/// 4 fails (no retry) and its stage-1 dependant, job 5, is skipped.
#[test]
fn pipeline_jobs_are_released_at_the_instant_their_predecessors_finish() {
    let nj = |spec, stage, needs| NewJob { spec, stage, needs };
    let mut failing = job(4, 2_000);
    failing.work.script_fails = true;
    let jobs = Jobs {
        pipelines: [
            (
                SimTime(0),
                vec![
                    nj(job(1, 10_000), 0, None),
                    nj(job(2, 5_000), 1, None),
                    nj(job(3, 1_000), 1, Some((0, 0))),
                ],
                vec![],
            ),
            (SimTime(100_000), vec![nj(failing, 0, None), nj(job(5, 1_000), 1, None)], vec![]),
        ]
        .into(),
        ..Jobs::default()
    };
    let (log, drive) = run(docker(4, Pickup::Immediate), jobs, 0);
    let by_id = |id: u64| *log.records.iter().find(|r| r.id.0 == id).expect("ran");
    assert_eq!((secs(by_id(1).started), secs(by_id(1).finished)), (0.0, 10.0));
    assert_eq!(secs(by_id(3).started), 0.0, "needs: [] is pending at once");
    let two = by_id(2);
    assert_eq!((secs(two.created), secs(two.queued), secs(two.started)), (0.0, 10.0, 10.0));
    assert!(by_id(4).failed);
    assert!(log.records.iter().all(|r| r.id.0 != 5), "job 5 is skipped");
    assert_eq!(drive.pipelines().skipped(), 1);
    assert_eq!(drive.pipelines().live(), 0);
}

/// The docker executor's containers and stages ([`fleetsim_core::containers`], after GitLab
/// Runner 19.4 `common/build.go` `executeScript` and `executors/docker/docker_command.go`):
/// with container costs, a job with a cache runs Pull, Sources (helper created +
/// `prepare_script` + `get_sources`), Restore (a stage), Script (build created + a stage),
/// Save (a stage) and Cleanup (`cleanup_file_variables` + removal); a job without a cache has
/// no `restore_cache` or `archive_cache` stage (`ErrSkipBuildStage`). Its record ends after
/// the cleanup (`Build.Run` defers `executor.Cleanup()` after the status update, so it runs
/// first).
#[test]
fn container_costs_are_the_executor_stages() {
    use fleetsim_core::cache::{Policy, Transfer};
    use fleetsim_core::containers::ContainerCosts;
    let mut spec = docker(1, Pickup::Immediate);
    spec.containers =
        ContainerCosts { create_ms: 100, stage_ms: 300, remove_ms: 50, ..Default::default() };
    // Local cache only, no transfer time: the steps' times are the containers' alone.
    spec.cache.transfer = Transfer { local_bytes_per_s: 0, ..Transfer::default() };
    let mut fleet = Fleet::new(spec.clone());
    let cache = fleet.declare_cache("main", &[] as &[&str], Policy::PullPush);
    let mut cached = job(1, 10_000);
    cached.work.cache = Some(cache);
    let jobs = Jobs {
        flat: [(SimTime(0), cached), (SimTime(60_000), job(2, 10_000))].into(),
        ..Jobs::default()
    };
    let (log, _) = run_fleet(fleet, jobs, 0);
    let steps = |id| log.steps.iter().filter(|s| s.0 == id).map(|s| (s.1, s.2)).collect::<Vec<_>>();
    assert_eq!(
        steps(1),
        vec![
            (Step::Sources, 700),
            (Step::Restore, 300),
            (Step::Script, 10_400),
            (Step::Save, 300),
            (Step::Cleanup, 350),
        ]
    );
    assert_eq!(steps(2), vec![(Step::Sources, 700), (Step::Script, 10_400), (Step::Cleanup, 350)]);
    let one = log.records[0];
    assert_eq!(secs(one.finished), 12.05);
    assert_eq!(secs(one.script_started), 1.0, "after Sources and Restore");
    assert_eq!((one.sources_ms, one.restore_ms, one.save_ms), (700, 300, 300));
    assert_eq!(one.machine_busy_ms(), 12_050, "from the first step to the end");
    assert_eq!(secs(log.records[1].finished), 60.0 + 11.45);

    // Without costs, a step of no time is skipped; with `emit_every_step` (live mode) every
    // stage the runner runs is still carried out, in the same order.
    let mut fleet = Fleet::new(docker(1, Pickup::Immediate));
    fleet.emit_every_step();
    let jobs = Jobs { flat: [(SimTime(0), job(3, 1_000))].into(), ..Jobs::default() };
    let (log, _) = run_fleet(fleet, jobs, 0);
    let kinds: Vec<Step> = log.steps.iter().map(|s| s.1).collect();
    assert_eq!(kinds, vec![Step::Pull, Step::Sources, Step::Script, Step::Cleanup]);
    assert_eq!(secs(log.records[0].finished), 1.0);
}

/// The engine is shared (`fleetsim_core::containers`, "The engine is shared"; an assumption
/// measured by `sim live calibrate`, not a GitLab Runner rule): with a contention of 0.5, an
/// operation starting while another job's container work is in progress takes 1.5 times its
/// cost alone. Two jobs at 0 on `concurrent = 2`: job 1's Sources (700 ms) starts alone,
/// job 2's beside it (1,050 ms). Job 1's script container start (400 ms) comes at 0.7 s while
/// job 2's Sources runs (600); job 2's at 1.05 s while job 1's start is in progress until
/// 1.3 s (600). The scripts themselves are not engine work: each Cleanup (350 ms) starts
/// after the other job's start has ended and before its cleanup, alone.
#[test]
fn an_engine_operation_is_slower_beside_other_jobs_container_work() {
    use fleetsim_core::containers::ContainerCosts;
    let mut spec = docker(2, Pickup::Immediate);
    spec.containers = ContainerCosts {
        create_ms: 100,
        stage_ms: 300,
        remove_ms: 50,
        contention_permille: 500,
        shared_engine: false,
    };
    let jobs = Jobs {
        flat: [(SimTime(0), job(1, 10_000)), (SimTime(0), job(2, 20_000))].into(),
        ..Jobs::default()
    };
    let (log, _) = run(spec, jobs, 0);
    let steps = |id| log.steps.iter().filter(|s| s.0 == id).map(|s| (s.1, s.2)).collect::<Vec<_>>();
    assert_eq!(steps(1), vec![(Step::Sources, 700), (Step::Script, 10_600), (Step::Cleanup, 350)]);
    assert_eq!(
        steps(2),
        vec![(Step::Sources, 1_050), (Step::Script, 20_600), (Step::Cleanup, 350)]
    );
}

/// A driver that stamps inputs with a clock (the live driver) can hand the fleet an input
/// later than a wakeup it has not handled yet: a completion whose task was joined before the
/// timer fired, say. `Drive::handle_stamped` handles the wakeups due before the input first.
/// Here the only worker (`concurrent = 1`) is busy with job 1 from 0 to 100 s; the next
/// feeder offer (3 s) blocks in `feedRunner` (GitLab Runner `commands/multi.go`). Job 2,
/// stamped 20 s, must not make the fast path skip that offer: handed straight to
/// `Drive::handle` at 20 s the fleet stops with "offers were skipped while the feeder should
/// have blocked" (the panic a 200-job `sim live --speed 4` run hit). With the wakeup at 3 s
/// handled first, job 2 starts the moment job 1 ends, as in
/// `a_busy_worker_leaves_the_next_job_to_the_next_offer`.
#[test]
fn a_clock_stamped_input_after_a_due_wakeup_comes_after_it() {
    let mut fleet = Fleet::new(docker(1, Pickup::Polling));
    let mut world = World { events: BTreeMap::new(), seq: 0, boot_ms: 0, removal_ms: 0 };
    let mut log = Log::default();
    let mut drive = Drive::new();
    let mut last = SimTime::ZERO;
    let first = [(SimTime(0), Input::JobCreated(job(1, 100_000)))];
    drive.handle_stamped(&mut fleet, first, SimTime(0), &mut last, &mut world, &mut log);
    assert_eq!(fleet.running(), 1, "job 1 taken at the offer at 0");
    // The clock reads 20 s when job 2 arrives; the offer at 3 s was never handled.
    let second = [(SimTime(20_000), Input::JobCreated(job(2, 1_000)))];
    drive.handle_stamped(&mut fleet, second, SimTime(20_000), &mut last, &mut world, &mut log);
    // Completions come back as a live driver would see them: each stamped with its instant.
    while let Some((&(t, seq), _)) = world.events.iter().next() {
        let input = world.events.remove(&(t, seq)).expect("present");
        drive.handle_stamped(&mut fleet, [(t, input)], t, &mut last, &mut world, &mut log);
    }
    assert!(fleet.is_idle());
    let r: Vec<_> =
        log.records.iter().map(|r| (r.id.0, secs(r.started), secs(r.finished))).collect();
    assert_eq!(r, vec![(1, 0.0, 100.0), (2, 100.0, 101.0)]);
}
