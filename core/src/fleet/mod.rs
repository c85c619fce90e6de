//! The fleet: GitLab's queue plus every runner process, driven by [`Fleet::handle`].
//!
//! Job pick-up follows GitLab Runner's `processRunner` (§1.3):
//!
//! ```text
//! offer(r) ─► limit reached? ─yes─► nothing (worker idle again)
//!               │no
//!               ▼
//!             request slots full? ─yes─► nothing
//!               │no
//!               ▼
//!             Acquire ─NoFree─► nothing (docker+machine with no idle machine)
//!               │ (docker: always; docker+machine: scale, then reserve the newest idle machine)
//!               ▼
//!             long polling on and r's last_update current? ─yes─► Workhorse holds the request;
//!               │no                         a job for r (or the poll's end) answers it 204
//!               ▼
//!             Rails POST /jobs/request ─► job? ─yes─► run it; greedy re-poll of r on another idle worker
//!                                           │no
//!                                           ▼
//!                                  empty answer (release the machine); r's last_update current
//! ```
//!
//! Submodules (private): `machines` holds the docker+machine glue (Prepare, Release, machine
//! events); `instances` the docker-autoscaler glue (Reserve, Prepare, Release, the scaling
//! pass); `fast_path` computes the next offer that can change anything and applies the
//! effects of the skipped ones.

mod engine_load;
mod fast_path;
mod instances;
mod machines;
mod project_indices;

use std::collections::{BTreeSet, VecDeque};

use rustc_hash::FxHashMap;

use crate::adaptive::Adaptive;
use crate::cache::{CacheAt, CacheUseId, CacheWorld, ImageId, Outcome, Place};
use crate::containers::slowed;
use crate::docker_machine::{
    Acquired, Caps, DockerMachineSpec, IdleSettings, MachinePool, MachineState,
};
use crate::ids::{HostId, JobId, JobKey, MachineId, RunnerId, TagSetId};
use crate::job::{Command, Input, JobRecord, JobSpec, Placement, Step, StepWork};
use crate::periods::{NoPeriods, PeriodSchedule};
use crate::queue::{Filed, Queue, RunnerFilter, RunnerMask};
use crate::runner_process::{Feeder, RunnerProcess, WorkerState};
use crate::spec::{ExecutorKind, FleetSpec, Pickup, RunnerSpec};
use crate::tags::TagInterner;
use crate::time::SimTime;

/// The docker+machine state of one `[[runners]]` entry.
#[derive(Debug)]
struct MachineRunner {
    spec: DockerMachineSpec,
    pool: MachinePool,
    periods: Box<dyn PeriodSchedule>,
    /// Jobs in Prepare waiting for a machine (on-demand), first come first served.
    waiters: VecDeque<JobKey>,
    /// The job whose Prepare created each on-demand machine still being created.
    owners: FxHashMap<MachineId, JobKey>,
    /// `docker-machine create` commands running (the growth semaphore's `growing`).
    growing: u32,
    /// Machines `Creating` whose command waits for growth capacity, first come first served.
    growth_queue: VecDeque<MachineId>,
}

impl MachineRunner {
    fn settings(&mut self, now: SimTime) -> IdleSettings {
        match self.periods.active(now) {
            Some(i) => self.spec.sections[i],
            None => self.spec.root,
        }
    }
}

/// Per-runner counters, as GitLab Runner's `buildsHelper` keeps them.
#[derive(Debug)]
struct RunnerState {
    id: RunnerId,
    spec: RunnerSpec,
    process: usize,
    /// Its index among its process's runners (the feeder's order).
    local: usize,
    /// Jobs running plus requests in flight (the `limit` counter).
    builds: u32,
    /// Job requests in flight.
    requests: u32,
    adaptive: Adaptive,
    /// When a `limit` slot last became free after the runner was full.
    limit_free_since: SimTime,
    /// With long polling: whether the runner's `X-GitLab-Last-Update` value is out of date
    /// because GitLab queued a job it could take since Rails last answered it (Rails "ticks"
    /// the runner's queue key). Workhorse then sends its next request to Rails at once
    /// (`WatchKeyStatusAlreadyChanged`); with a current value it holds the request. A 201
    /// carries no new value, so the runner stays stale after a job and asks Rails again; a
    /// Rails 204 brings the current value. Starts current: the runner ran long before the
    /// trace.
    token_stale: bool,
    /// What its executor keeps: nothing for docker, the machine pool for docker+machine, the
    /// instance pool for docker-autoscaler.
    executor: ExecutorState,
}

/// A runner's per-executor state: one of three, never two.
#[derive(Debug)]
enum ExecutorState {
    /// `executor = "docker"`: jobs run on the runner's own host.
    Docker,
    /// `executor = "docker+machine"`.
    Machines(MachineRunner),
    /// `executor = "docker-autoscaler"`.
    Scaler(instances::ScalerRunner),
}

impl ExecutorState {
    fn machines(&self) -> Option<&MachineRunner> {
        match self {
            ExecutorState::Machines(m) => Some(m),
            _ => None,
        }
    }

    fn machines_mut(&mut self) -> Option<&mut MachineRunner> {
        match self {
            ExecutorState::Machines(m) => Some(m),
            _ => None,
        }
    }

    fn scaler(&self) -> Option<&instances::ScalerRunner> {
        match self {
            ExecutorState::Scaler(s) => Some(s),
            _ => None,
        }
    }

    fn scaler_mut(&mut self) -> Option<&mut instances::ScalerRunner> {
        match self {
            ExecutorState::Scaler(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the runner autoscales (docker+machine or docker-autoscaler).
    fn autoscales(&self) -> bool {
        !matches!(self, ExecutorState::Docker)
    }
}

impl RunnerState {
    fn at_limit(&self) -> bool {
        self.spec.limit > 0 && self.builds >= self.spec.limit
    }

    fn request_cap(&self) -> u32 {
        let ceiling = self.spec.request_concurrency;
        if self.spec.adaptive_request_concurrency { self.adaptive.cap(ceiling) } else { ceiling }
    }

    fn requests_full(&self) -> bool {
        self.requests >= self.request_cap()
    }

    fn after_request(&mut self, got_job: bool) {
        if self.spec.adaptive_request_concurrency {
            self.adaptive.after_request(got_job, self.spec.request_concurrency);
        }
    }

    fn caps(&self) -> Caps {
        let dm = &self.executor.machines().expect("docker+machine runner").spec;
        Caps {
            limit: self.spec.limit,
            max_growth_rate: dm.max_growth_rate,
            max_builds: dm.max_builds,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum JobState {
    Pending,
    Running {
        runner: RunnerId,
        process: usize,
        worker: usize,
        started: SimTime,
        /// When the worker and `limit` slot the job used were free.
        slot_free: SimTime,
        /// When the machine it got in `Acquire` was free (docker+machine).
        machine_free: SimTime,
        /// Its machine, once it has one.
        machine: Option<MachineId>,
        /// When its script started, once it has.
        script_started: Option<SimTime>,
        /// Machines created for it on demand that failed.
        failed_creations: u32,
        /// Its `ProjectRunnerID` (docker executor; 0 otherwise), which names its cache volume.
        project_index: u32,
        /// The token of its running step.
        step_token: Option<u64>,
        /// Where it works, once it has a place.
        on: Option<Placement>,
        /// The step it is in (or will start next).
        phase: Step,
        /// What its cache restore found.
        cache: Outcome,
        /// Time per step, and cache bytes moved.
        pull_ms: u64,
        sources_ms: u64,
        restore_ms: u64,
        save_ms: u64,
        bytes_down: u64,
        bytes_up: u64,
        /// The object its save publishes when the upload ends.
        publish: Option<crate::cache::Upload>,
        /// Past the last step.
        done: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct ActiveJob {
    spec: JobSpec,
    filed: Filed,
    created: SimTime,
    queued: SimTime,
    attempt: u32,
    state: JobState,
}

/// Why a job can never start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unservable {
    /// The job.
    pub job: JobId,
    /// A sentence naming the job's tags and project and the runners that were considered.
    pub reason: String,
}

/// What happened to a worker's request.
enum Requested {
    /// Rails gave it a job.
    Job,
    /// Workhorse holds it, or it is on its way to Rails: the worker waits.
    Held,
    /// No request, or an empty answer: the worker is free.
    Nothing,
}

/// The simulated fleet. See the module docs for the pick-up logic.
#[derive(Debug)]
pub struct Fleet {
    pickup: Pickup,
    long_poll_ms: u64,
    request_latency_ms: u64,
    /// Whether offers whose job request is slow but empty can be skipped: requests take
    /// time, no request is held by long polling, no runner autoscales (an `Acquire` would
    /// hold a machine or slot too) and each process's offers come further apart than a
    /// request takes, so each skipped request is answered before the next offer
    /// (`fast_path.rs`).
    latency_skips: bool,
    skip_idle_offers: bool,
    /// What container operations cost ([`FleetSpec::containers`]).
    containers: crate::containers::ContainerCosts,
    /// [`FleetSpec::emit_every_step`].
    emit_every_step: bool,
    tags: TagInterner,
    queue: Queue,
    runners: Vec<RunnerState>,
    processes: Vec<RunnerProcess>,
    jobs: Vec<Option<ActiveJob>>,
    free_keys: Vec<u32>,
    running: u32,
    /// Which runner owns each live machine.
    machine_owner: FxHashMap<MachineId, RunnerId>,
    next_machine: u32,
    /// The next step token.
    next_token: u64,
    /// Caches and images.
    cache: CacheWorld,
    now: SimTime,
    wakeup: Option<SimTime>,
    /// Whether any runner is a docker-autoscaler (its scaling pass runs after every input).
    has_scalers: bool,
    /// docker+machine Prepares sleeping before their next `useMachine` (when, which job).
    use_retries: std::collections::BTreeSet<(SimTime, JobKey)>,
    /// `ProjectRunnerID`s held by running docker-executor jobs, per (host, runner, project).
    project_indices: project_indices::ProjectIndices,
    /// Container work in progress per engine (only with a calibrated contention).
    engine_load: engine_load::EngineLoad,
    /// Runners with adaptive request concurrency whose value is off its floor of 1: the only
    /// ones whose value a skipped empty offer can change (see `fast_path.rs`).
    unsettled: BTreeSet<RunnerId>,
    /// Per process: the local indexes of runners without a token (never offered a worker).
    tokenless: Vec<Vec<usize>>,
    /// Per process: the local indexes of docker+machine and docker-autoscaler runners, whose
    /// offers can matter without a pending job.
    scaled: Vec<Vec<usize>>,
    /// The same runners by id, in id order: the only ones with machines or instances
    /// ([`Fleet::machine_totals`] is asked after every input and must not visit the others).
    autoscaled: Vec<RunnerId>,
    /// Scratch of [`Fleet::compute_wakeup`]: per process, the runners whose next offer may
    /// change something.
    candidates: Vec<Vec<usize>>,
    /// Docker-executor runners with a token, a pending job they may take and a free `limit`
    /// slot: the only docker runners whose offers can matter (while requests are instant).
    ready: RunnerMask,
    /// Runners whose `limit` count or pending jobs changed since `ready` was last brought up
    /// to date (at the next wakeup computation).
    dirty: Vec<RunnerId>,
}

impl Fleet {
    /// Builds a fleet. Panics if `spec` fails [`FleetSpec::validate`]: callers validate input
    /// first and report errors there.
    pub fn new(spec: FleetSpec) -> Fleet {
        if let Err(e) = spec.validate() {
            panic!("invalid fleet spec: {e}");
        }
        let mut tags = TagInterner::default();
        let mut runners = Vec::new();
        let mut filters = Vec::new();
        let mut processes = Vec::new();
        for (pi, p) in spec.processes.into_iter().enumerate() {
            let mut ids = Vec::new();
            for (local, r) in p.runners.into_iter().enumerate() {
                let id = RunnerId(runners.len() as u16);
                ids.push(id);
                filters.push(RunnerFilter {
                    scope: r.scope,
                    projects: r.projects.clone(),
                    tags: tags.intern(&r.tags),
                    run_untagged: r.run_untagged,
                });
                let executor = match &r.executor {
                    ExecutorKind::Docker => ExecutorState::Docker,
                    ExecutorKind::DockerAutoscaler(a) => {
                        ExecutorState::Scaler(instances::ScalerRunner::new(a.clone()))
                    }
                    ExecutorKind::DockerMachine(dm) => ExecutorState::Machines(MachineRunner {
                        spec: dm.clone(),
                        pool: MachinePool::default(),
                        periods: Box::new(NoPeriods),
                        waiters: VecDeque::new(),
                        owners: FxHashMap::default(),
                        growing: 0,
                        growth_queue: VecDeque::new(),
                    }),
                };
                runners.push(RunnerState {
                    id,
                    spec: r,
                    process: pi,
                    local,
                    builds: 0,
                    requests: 0,
                    adaptive: Adaptive::default(),
                    limit_free_since: SimTime::ZERO,
                    token_stale: false,
                    executor,
                });
            }
            processes.push(RunnerProcess::new(
                ids,
                p.concurrent,
                p.check_interval_ms,
                SimTime(p.first_offer_ms),
            ));
        }
        let process_count = processes.len();
        let mut fleet = Fleet {
            pickup: spec.pickup,
            long_poll_ms: spec.long_poll_ms,
            request_latency_ms: spec.request_latency_ms,
            latency_skips: false,
            skip_idle_offers: spec.skip_idle_offers,
            containers: spec.containers,
            emit_every_step: spec.emit_every_step,
            tags,
            queue: Queue::new(filters),
            runners,
            processes,
            jobs: Vec::new(),
            free_keys: Vec::new(),
            running: 0,
            machine_owner: FxHashMap::default(),
            next_machine: 0,
            next_token: 0,
            cache: CacheWorld::new(spec.cache),
            now: SimTime::ZERO,
            wakeup: None,
            has_scalers: false,
            use_retries: std::collections::BTreeSet::new(),
            project_indices: project_indices::ProjectIndices::default(),
            engine_load: engine_load::EngineLoad::new(&spec.containers),
            unsettled: BTreeSet::new(),
            tokenless: vec![Vec::new(); process_count],
            scaled: vec![Vec::new(); process_count],
            autoscaled: Vec::new(),
            candidates: vec![Vec::new(); process_count],
            ready: RunnerMask::default(),
            dirty: Vec::new(),
        };
        for r in &fleet.runners {
            if !r.spec.has_token {
                fleet.tokenless[r.process].push(r.local);
            } else if r.spec.adaptive_request_concurrency {
                fleet.unsettled.insert(r.id); // the value starts at 0, below its floor
            }
            if r.executor.autoscales() {
                fleet.scaled[r.process].push(r.local);
                fleet.autoscaled.push(r.id);
            }
        }
        fleet.has_scalers = fleet.runners.iter().any(|r| r.executor.scaler().is_some());
        fleet.latency_skips = spec.request_latency_ms > 0
            && spec.long_poll_ms == 0
            && !fleet.runners.iter().any(|r| r.executor.autoscales())
            && fleet.processes.iter().all(|p| p.gap_ms > spec.request_latency_ms);
        fleet.wakeup = fleet.compute_wakeup();
        fleet
    }

    /// Gives a docker+machine runner its `[[runners.machine.autoscaling]]` periods, or a
    /// docker-autoscaler runner the periods of its `[[runners.autoscaler.policy]]` entries
    /// (section `i` is policy `i`). By default none match. Panics for the docker executor,
    /// and once the run has started.
    pub fn set_periods(&mut self, runner: RunnerId, periods: Box<dyn PeriodSchedule>) {
        assert!(
            self.now == SimTime::ZERO && self.machine_owner.is_empty(),
            "set periods before the run"
        );
        let r = &mut self.runners[runner.0 as usize];
        match &mut r.executor {
            ExecutorState::Machines(m) => m.periods = periods,
            ExecutorState::Scaler(s) => s.periods = periods,
            ExecutorState::Docker => panic!("periods need docker+machine or docker-autoscaler"),
        }
        self.wakeup = self.compute_wakeup();
    }

    /// Interns a job's tags for [`JobSpec::tags`].
    pub fn intern_tags<S: AsRef<str>>(&mut self, tags: &[S]) -> TagSetId {
        self.tags.intern(tags)
    }

    /// Checks that some runner could ever take this job (tags ⊆ runner tags, untagged jobs
    /// need `run_untagged`, project scope). A job no runner can take would stay pending
    /// until GitLab drops it; the simulator refuses it instead of hanging.
    pub fn check_servable(&self, job: &JobSpec) -> Result<(), Unservable> {
        if self.queue.servable(&self.tags, job.project, job.tags) {
            return Ok(());
        }
        let tags = self.tags.names(job.tags);
        let runners: Vec<String> = self
            .runners
            .iter()
            .map(|r| {
                let projects = match &r.spec.projects {
                    Some(ps) => {
                        let ps: Vec<String> = ps.iter().map(|p| p.0.to_string()).collect();
                        format!(", projects [{}]", ps.join(", "))
                    }
                    None => String::new(),
                };
                format!(
                    "{:?} (tags [{}], run_untagged = {}{projects})",
                    r.spec.name,
                    r.spec.tags.join(", "),
                    r.spec.run_untagged
                )
            })
            .collect();
        Err(Unservable {
            job: job.id,
            reason: format!(
                "job {} of project {} with tags [{}] matches no runner: {}",
                job.id,
                job.project,
                tags.join(", "),
                runners.join("; ")
            ),
        })
    }

    /// Jobs waiting in GitLab's queue.
    pub fn pending(&self) -> u32 {
        self.queue.pending()
    }

    /// Jobs running on some runner (GitLab's `running`, including jobs whose machine boots).
    pub fn running(&self) -> u32 {
        self.running
    }

    /// Whether no job is pending or running.
    pub fn is_idle(&self) -> bool {
        self.queue.pending() == 0 && self.running == 0
    }

    /// Jobs running or requests held per runner (the `limit` counter), for invariant checks.
    pub fn runner_builds(&self, r: RunnerId) -> u32 {
        self.runners[r.0 as usize].builds
    }

    /// The runner's request cap now (`min(max(1, ceil(adaptive)), request_concurrency)`, or
    /// `request_concurrency` with the adaptive feature flag off), for tests and invariants.
    pub fn request_cap(&self, r: RunnerId) -> u32 {
        self.runners[r.0 as usize].request_cap()
    }

    /// Machines by state of a docker+machine runner, or instances of a docker-autoscaler
    /// runner (running ones count as idle without a job, used with one); `None` for the
    /// docker executor.
    pub fn machine_counts(&self, r: RunnerId) -> Option<crate::docker_machine::Counts> {
        let r = &self.runners[r.0 as usize];
        match &r.executor {
            ExecutorState::Machines(m) => Some(m.pool.counts()),
            ExecutorState::Scaler(s) => Some(s.pool.counts()),
            ExecutorState::Docker => None,
        }
    }

    /// Machines (and instances) by state over every autoscaled runner.
    pub fn machine_totals(&self) -> crate::docker_machine::Counts {
        let mut t = crate::docker_machine::Counts::default();
        for c in self.autoscaled.iter().filter_map(|&r| self.machine_counts(r)) {
            t.creating += c.creating;
            t.idle += c.idle;
            t.acquired += c.acquired;
            t.used += c.used;
            t.removing += c.removing;
        }
        t
    }

    /// Number of `[[runners]]` entries in the fleet.
    pub fn runner_count(&self) -> usize {
        self.runners.len()
    }

    /// The next instant at which the core must act by itself, if any. Never earlier than the
    /// `now` of the last [`Fleet::handle`] call.
    pub fn next_wakeup(&self) -> Option<SimTime> {
        self.wakeup
    }

    /// Handles one input at `now` (never earlier than the previous call) and appends the
    /// commands it causes to `out`.
    pub fn handle(&mut self, now: SimTime, input: Input, out: &mut Vec<Command>) {
        assert!(now >= self.now, "time went backwards: {now} after {}", self.now);
        if self.skip_idle_offers
            && let Input::StepDone { job, token, .. } = input
            && self.step_leaves_the_fleet_as_is(job, token)
        {
            // The hot path of jobs with caches and images (three or four steps each): nothing
            // that offers, polls or scaling depend on changes, so the feeders are not advanced
            // and the wakeup stays as it is. Skipped offers are applied in bulk at the next
            // input, exactly as if this one had not happened (tested against the tick-by-tick
            // mode, which does not take this shortcut).
            self.now = now;
            if self.step_token(job) == Some(token) {
                self.step_done(now, job, out);
            }
            return;
        }
        self.now = now;
        self.skip_no_op_offers(now);
        match input {
            Input::JobCreated(spec) => self.job_created(now, spec, out),
            Input::StepDone { job, token, .. } => {
                if self.step_token(job) == Some(token) {
                    self.step_done(now, job, out);
                }
            }
            Input::Wakeup => self.wake(now, out),
            Input::MachineReady { machine } => self.machine_ready(now, machine, out),
            Input::MachineFailed { machine } => self.machine_failed(now, machine, out),
            Input::MachineRemoved { machine } => self.machine_removed(machine),
            Input::MachineLost { machine } => self.machine_lost(now, machine, out),
        }
        if self.pickup == Pickup::Immediate {
            self.dispatch_immediately(now, out);
        }
        if self.has_scalers {
            self.run_scalers(now, out);
        }
        self.wakeup = self.compute_wakeup();
    }

    fn job_created(&mut self, now: SimTime, spec: JobSpec, out: &mut Vec<Command>) {
        self.enqueue(now, spec, now, 1, out);
    }

    /// Files a job as pending (a new job, or a retry of a failed one).
    fn enqueue(
        &mut self,
        now: SimTime,
        spec: JobSpec,
        created: SimTime,
        attempt: u32,
        out: &mut Vec<Command>,
    ) {
        let key = match self.free_keys.pop() {
            Some(k) => k,
            None => {
                self.jobs.push(None);
                (self.jobs.len() - 1) as u32
            }
        };
        let filed = self.queue.push(&self.tags, spec.id, JobKey(key), spec.project, spec.tags);
        self.jobs[key as usize] = Some(ActiveJob {
            spec,
            filed,
            created,
            queued: now,
            attempt,
            state: JobState::Pending,
        });
        if self.long_poll_ms > 0 && self.pickup == Pickup::Polling {
            let eligible = *self.queue.class_runners(filed.class);
            for r in eligible.iter() {
                self.runners[r.0 as usize].token_stale = true;
            }
            self.release_polls(now, eligible, out);
        }
    }

    fn job_finished(&mut self, now: SimTime, key: JobKey, out: &mut Vec<Command>) {
        let script_fails =
            self.jobs[key.0 as usize].as_ref().is_some_and(|j| j.spec.work.script_fails);
        self.end_job(now, key, script_fails, out);
    }

    /// `Release` of the machine or instance slot a job ran on, if it still holds one (a job
    /// failed by a lost machine or instance has none left to give back).
    fn release_executor(
        &mut self,
        now: SimTime,
        runner: RunnerId,
        machine: Option<MachineId>,
        out: &mut Vec<Command>,
    ) {
        let Some(m) = machine else { return };
        if self.is_scaler(runner) {
            self.release_instance(now, runner, m, out); // checks that the instance runs
        } else if self
            .machine_runner(runner)
            .pool
            .get(m)
            .is_some_and(|x| x.state == MachineState::Used)
        {
            self.release_machine(now, runner, m, out);
        }
    }

    /// Ends a running job (finished or failed): writes its record, gives back its machine or
    /// instance slot, then its `limit` slot, then its worker, and retries it if it failed and
    /// may be retried.
    ///
    /// The order is GitLab Runner 19.4's `commands/multi.go` `(*RunCommand).processRunner`:
    /// its deferred calls run in reverse order of registration, so `provider.Release` (the
    /// machine or instance slot) runs before `buildsHelper.releaseBuild` (the `limit` slot),
    /// and the worker goroutine returns to the channel only after both. A feeder blocked on
    /// this runner therefore finds the machine idle and the `limit` slot free.
    fn end_job(&mut self, now: SimTime, key: JobKey, failed: bool, out: &mut Vec<Command>) {
        let job = self.jobs[key.0 as usize].take().expect("a known job");
        self.free_keys.push(key.0);
        let JobState::Running {
            runner,
            process,
            worker,
            started,
            slot_free,
            machine_free,
            machine,
            script_started,
            cache,
            pull_ms,
            sources_ms,
            restore_ms,
            save_ms,
            bytes_down,
            bytes_up,
            project_index,
            ..
        } = job.state
        else {
            panic!("job {} ended while not running", job.spec.id);
        };
        self.project_indices.release(process, runner, job.spec.project, project_index);
        let pending = started - job.queued;
        let wait_capacity_ms = slot_free.saturating_since(job.queued).min(pending);
        let wait_machine_ms = machine_free
            .saturating_since(job.queued.max(slot_free))
            .min(pending - wait_capacity_ms);
        out.push(Command::JobFinished(JobRecord {
            id: job.spec.id,
            project: job.spec.project,
            runner,
            host: HostId(process as u16),
            machine,
            attempt: job.attempt,
            failed,
            created: job.created,
            queued: job.queued,
            started,
            script_started: script_started.unwrap_or(now),
            finished: now,
            wait_capacity_ms,
            wait_machine_ms,
            wait_poll_ms: pending - wait_capacity_ms - wait_machine_ms,
            cache,
            pull_ms,
            sources_ms,
            restore_ms,
            save_ms,
            bytes_down,
            bytes_up,
        }));
        self.running -= 1;
        self.queue.job_ended(runner, job.filed);
        self.release_executor(now, runner, machine, out);
        let r = &mut self.runners[runner.0 as usize];
        let was_full = r.at_limit();
        r.builds -= 1;
        if was_full {
            r.limit_free_since = now;
        }
        self.dirty.push(runner);
        self.processes[process].workers[worker].free_since = now;
        self.worker_freed(now, process, worker, out);
        if failed && job.attempt <= job.spec.retry {
            // GitLab retries with a new job; it keeps the original id here (see README).
            self.enqueue(now, job.spec, job.created, job.attempt + 1, out);
        }
    }

    /// A worker returned to the channel after a job or a long poll. If the feeder is blocked
    /// on it, the worker takes the offered runner at once.
    fn worker_freed(&mut self, now: SimTime, p: usize, w: usize, out: &mut Vec<Command>) {
        let proc = &mut self.processes[p];
        proc.workers[w].state = WorkerState::Idle;
        match (self.pickup, proc.feeder) {
            (Pickup::Polling, Feeder::Blocked { idx }) => {
                let runner = proc.runner_at(idx);
                proc.feeder =
                    Feeder::Sleeping { next_at: now + proc.gap_ms, idx: proc.next_idx(idx) };
                self.process_runner(now, p, w, runner, out);
            }
            _ => proc.idle.push_back(w),
        }
    }

    fn wake(&mut self, now: SimTime, out: &mut Vec<Command>) {
        self.fire_use_retries(now, out);
        for p in 0..self.processes.len() {
            self.answer_requests(now, p, out);
            self.expire_polls(now, p, out);
            let proc = &mut self.processes[p];
            let Feeder::Sleeping { next_at, idx } = proc.feeder else { continue };
            if next_at != now {
                continue;
            }
            if !self.runners[proc.runner_at(idx).0 as usize].spec.has_token {
                // GitLab Runner 19.4 (*RunCommand).feedRunner: a runner without a token is not
                // sent to the channel; the feeder sleeps its interval and offers the next one.
                proc.feeder =
                    Feeder::Sleeping { next_at: now + proc.gap_ms, idx: proc.next_idx(idx) };
                continue;
            }
            match proc.idle.pop_front() {
                None => proc.feeder = Feeder::Blocked { idx },
                Some(w) => {
                    let runner = proc.runner_at(idx);
                    proc.feeder =
                        Feeder::Sleeping { next_at: now + proc.gap_ms, idx: proc.next_idx(idx) };
                    self.process_runner(now, p, w, runner, out);
                }
            }
        }
    }

    /// GitLab Runner's `processRunner` on worker `w` (already taken off the idle queue),
    /// followed by the greedy re-poll while jobs keep coming.
    fn process_runner(
        &mut self,
        now: SimTime,
        p: usize,
        w: usize,
        runner: RunnerId,
        out: &mut Vec<Command>,
    ) {
        let mut w = w;
        loop {
            match self.request(now, p, w, runner, out) {
                Requested::Job if !self.runners[runner.0 as usize].spec.strict_check_interval => {
                    // Non-blocking send: succeeds only if another worker is idle right now.
                    match self.processes[p].idle.pop_front() {
                        Some(next) => w = next,
                        None => return,
                    }
                }
                Requested::Job | Requested::Held => return,
                Requested::Nothing => {
                    self.processes[p].idle.push_back(w);
                    return;
                }
            }
        }
    }

    fn request(
        &mut self,
        now: SimTime,
        p: usize,
        w: usize,
        runner: RunnerId,
        out: &mut Vec<Command>,
    ) -> Requested {
        let r = &self.runners[runner.0 as usize];
        if r.at_limit() || r.requests_full() {
            return Requested::Nothing;
        }
        let machine = match self.acquire(now, runner, out) {
            Acquired::NoFree => {
                // No job request is sent, but the request slot is given back as an empty
                // one: GitLab Runner 19.4 `commands/multi.go` `(*RunCommand).processRunner`
                // calls `releaseRequest(runner, false, false)` when `provider.Acquire`
                // fails, and `builds_helper.go` `releaseRequest` applies the ×0.95 decay.
                self.request_done(runner, false);
                return Requested::Nothing;
            }
            Acquired::Machine(m) => Some(m),
            Acquired::OnDemand => None,
        };
        if self.long_poll_ms > 0 && !self.runners[runner.0 as usize].token_stale {
            // Workhorse `builds.RegisterHandler`: the runner's `last_update` is current, so
            // the request is held in `watchForRunnerChange` without asking Rails (no job
            // can be waiting for it: every job it could take since marked it stale).
            let r = &mut self.runners[runner.0 as usize];
            r.builds += 1;
            r.requests += 1;
            self.dirty.push(runner);
            self.processes[p].hold_poll(w, runner, machine, now + self.long_poll_ms);
            return Requested::Held;
        }
        if self.request_latency_ms > 0 {
            // The request is on its way: GitLab Runner 19.4 `commands/multi.go`
            // `processBuildOnRunner` holds the worker, and `processRunner` the request slot,
            // the `limit` slot and the executor, until `requestJob` returns.
            let r = &mut self.runners[runner.0 as usize];
            r.builds += 1;
            r.requests += 1;
            self.dirty.push(runner);
            self.processes[p].start_request(w, runner, machine, now + self.request_latency_ms);
            return Requested::Held;
        }
        self.rails_answer(now, p, w, runner, machine, out)
    }

    /// A job request of `runner` came back (with a job or not): the adaptive concurrency
    /// update, and the runner joins the unsettled ones if its value left the floor.
    fn request_done(&mut self, runner: RunnerId, got_job: bool) {
        let r = &mut self.runners[runner.0 as usize];
        r.after_request(got_job);
        if r.spec.adaptive_request_concurrency && r.spec.has_token && !r.adaptive.at_floor() {
            self.unsettled.insert(runner);
        }
    }

    /// Rails answers a job request (`lib/api/ci/runner.rb` `POST /api/v4/jobs/request`,
    /// `Ci::RegisterJobService`): 201 with a job for the runner, else 204.
    fn rails_answer(
        &mut self,
        now: SimTime,
        p: usize,
        w: usize,
        runner: RunnerId,
        machine: Option<MachineId>,
        out: &mut Vec<Command>,
    ) -> Requested {
        if let Some((_, key)) = self.queue.pick(runner) {
            self.request_done(runner, true);
            self.start_job(now, p, w, runner, key, machine, out);
            return Requested::Job;
        }
        // 204 with `X-GitLab-Last-Update`: the runner's value is current again.
        self.runners[runner.0 as usize].token_stale = false;
        self.request_done(runner, false);
        self.request_was_empty(runner, machine);
        Requested::Nothing
    }

    /// Answers the job requests of process `p` whose latency is over, oldest first. After a
    /// job the greedy re-poll sends the runner to another idle worker (`requeueRunner`, a
    /// non-blocking send); after an empty answer the worker is free.
    fn answer_requests(&mut self, now: SimTime, p: usize, out: &mut Vec<Command>) {
        while let Some(at) = self.processes[p].next_answer() {
            if at > now {
                break;
            }
            let req = self.processes[p].in_flight.pop_front().expect("a request in flight");
            let w = req.worker;
            let WorkerState::Requesting { runner, machine, .. } =
                self.processes[p].workers[w].state
            else {
                unreachable!("a request in flight without a requesting worker");
            };
            let r = &mut self.runners[runner.0 as usize];
            let was_full = r.at_limit();
            r.requests -= 1;
            r.builds -= 1;
            self.dirty.push(runner);
            match self.rails_answer(now, p, w, runner, machine, out) {
                Requested::Job => {
                    if !self.runners[runner.0 as usize].spec.strict_check_interval
                        && let Some(next) = self.processes[p].idle.pop_front()
                    {
                        self.process_runner(now, p, next, runner, out);
                    }
                }
                Requested::Held => unreachable!("Rails answers at once"),
                Requested::Nothing => {
                    if was_full {
                        self.runners[runner.0 as usize].limit_free_since = now;
                    }
                    self.worker_freed(now, p, w, out);
                }
            }
        }
    }

    /// A job request got no job: give back what `Acquire` took.
    fn request_was_empty(&mut self, runner: RunnerId, machine: Option<MachineId>) {
        if self.is_scaler(runner) {
            self.scaler_unreserve(runner);
        } else if let Some(m) = machine {
            self.unacquire(runner, m);
        }
    }

    /// The executor's `Acquire`: always succeeds for docker; scales and reserves a machine
    /// for docker+machine; reserves a slot for docker-autoscaler.
    fn acquire(&mut self, now: SimTime, runner: RunnerId, out: &mut Vec<Command>) -> Acquired {
        if self.is_scaler(runner) {
            return self.scaler_reserve(now, runner);
        }
        if self.runners[runner.0 as usize].executor.machines().is_none() {
            return Acquired::OnDemand;
        }
        self.machine_acquire(now, runner, out)
    }

    #[allow(clippy::too_many_arguments)]
    fn start_job(
        &mut self,
        now: SimTime,
        p: usize,
        w: usize,
        runner: RunnerId,
        key: JobKey,
        machine: Option<MachineId>,
        out: &mut Vec<Command>,
    ) {
        let r = &mut self.runners[runner.0 as usize];
        r.builds += 1;
        self.dirty.push(runner);
        let r = &self.runners[runner.0 as usize];
        let limit_free_since = r.limit_free_since;
        let is_machine_runner = r.executor.machines().is_some();
        let worker = &mut self.processes[p].workers[w];
        worker.state = WorkerState::Busy { job: key };
        let slot_free = worker.free_since.max(limit_free_since);
        let is_scaler = self.is_scaler(runner);
        let machine_free = match machine {
            Some(m) => self.machine_runner(runner).pool.get(m).map_or(now, |x| x.free_since),
            None if is_scaler => self.scaler_slot_free_since(now, runner),
            None => SimTime::ZERO,
        };
        let project = self.jobs[key.0 as usize].as_ref().expect("picked job exists").spec.project;
        let project_index = if is_machine_runner || is_scaler {
            0
        } else {
            self.project_indices.take(p, runner, project)
        };
        let job = self.jobs[key.0 as usize].as_mut().expect("picked job exists");
        job.state = JobState::Running {
            runner,
            process: p,
            worker: w,
            started: now,
            slot_free,
            machine_free,
            machine: None,
            script_started: None,
            failed_creations: 0,
            project_index,
            step_token: None,
            on: None,
            phase: Step::Pull,
            cache: Outcome::None,
            pull_ms: 0,
            sources_ms: 0,
            restore_ms: 0,
            save_ms: 0,
            bytes_down: 0,
            bytes_up: 0,
            publish: None,
            done: false,
        };
        self.running += 1;
        if is_machine_runner {
            self.prepare_on_machine(now, runner, key, machine, out);
        } else if is_scaler {
            self.prepare_on_instance(now, runner, key, out);
        } else {
            self.start_work(now, key, Placement::Host(HostId(p as u16)), out);
        }
    }

    /// The job has its place (host slot or machine): pull, restore, script, save.
    fn start_work(&mut self, now: SimTime, key: JobKey, on: Placement, out: &mut Vec<Command>) {
        let job = self.jobs[key.0 as usize].as_mut().expect("running job");
        if let JobState::Running { machine, on: place, .. } = &mut job.state {
            *place = Some(on);
            if let Placement::Machine(m) = on {
                *machine = Some(m);
            }
        }
        self.next_step(now, key, out);
    }

    /// A step finished: publish an uploaded cache, then go on.
    fn step_done(&mut self, now: SimTime, key: JobKey, out: &mut Vec<Command>) {
        let job = self.jobs[key.0 as usize].as_mut().expect("running job");
        if let JobState::Running { publish, .. } = &mut job.state
            && let Some(p) = publish.take()
        {
            // Only a save sets `publish`, and its completion is the first to come after.
            self.cache.publish(now, p);
        }
        self.next_step(now, key, out);
    }

    /// Starts the job's next step that takes time (or every step, with
    /// [`FleetSpec::emit_every_step`]), or finishes the job. The steps are the docker
    /// executor's stages and containers ([`crate::containers`]).
    fn next_step(&mut self, now: SimTime, key: JobKey, out: &mut Vec<Command>) {
        let job = *self.jobs[key.0 as usize].as_ref().expect("running job");
        let JobState::Running { runner, project_index, on: Some(on), phase, cache, done, .. } =
            job.state
        else {
            unreachable!("a job works only once it is running with a place");
        };
        if done {
            return self.job_finished(now, key, out);
        }
        let spec = job.spec;
        let rc = self.runners[runner.0 as usize].spec.cache;
        let costs = self.containers;
        let (cache_place, image_place) = match on {
            Placement::Host(h) => (
                Place::Volume {
                    host: h.0,
                    runner: runner.0,
                    project: spec.project,
                    index: project_index,
                },
                Place::Host(h.0),
            ),
            Placement::Machine(m) => (Place::Machine(m), Place::Machine(m)),
        };
        // The engine's other work slows this step's container operations (the script's
        // container start included, not the script itself; `crate::containers`).
        let engine_permille =
            if phase == Step::Pull { 1000 } else { self.engine_load.slowdown(now, on) };
        let engine = |ms: u64| slowed(ms, engine_permille);
        let at = CacheAt {
            place: cache_place,
            scope: CacheWorld::scope(runner, &rc),
            distributed: rc.distributed,
            project: spec.project,
            engine_permille,
        };
        // Work out this phase: its time, and whether the runner runs it at all (a stage with
        // nothing to do starts no container, `common.ErrSkipBuildStage`).
        let (step, ms, runs, next) = match phase {
            Step::Pull => {
                let ms = spec.work.image.map_or(0, |img: ImageId| {
                    self.cache.pull(image_place, img, spec.work.image_size, rc.pull_policy)
                });
                self.update(key, |s| {
                    if let JobState::Running { pull_ms, .. } = s {
                        *pull_ms = ms;
                    }
                });
                (Step::Pull, ms, true, Step::Sources)
            }
            Step::Sources => {
                let ms = engine(costs.sources_ms());
                self.update(key, |s| {
                    if let JobState::Running { sources_ms, .. } = s {
                        *sources_ms = ms;
                    }
                });
                (Step::Sources, ms, true, Step::Restore)
            }
            Step::Restore => {
                // `cacheExtractor`: the stage runs when the job declares a cache, whatever
                // its policy.
                let r = spec.work.cache.map(|u: CacheUseId| self.cache.restore(now, at, u));
                let ms = r.map_or(0, |r| r.ms + engine(costs.cache_stage_ms()));
                self.update(key, |s| {
                    if let (JobState::Running { cache, restore_ms, bytes_down, .. }, Some(r)) =
                        (s, r)
                    {
                        *cache = r.outcome;
                        *restore_ms = ms;
                        *bytes_down = r.bytes_down;
                    }
                });
                (Step::Restore, ms, r.is_some(), Step::Script)
            }
            Step::Script => {
                self.update(key, |s| {
                    if let JobState::Running { script_started, .. } = s {
                        *script_started = Some(now);
                    }
                });
                let penalty = if matches!(cache, Outcome::Miss(_)) {
                    spec.work.cache_miss_penalty_ms
                } else {
                    0
                };
                let mut ms = spec.duration_ms + penalty;
                let factor = self.contention_factor(runner, on);
                if factor != 1.0 {
                    ms = (ms as f64 * factor).round() as u64;
                }
                // The script always runs (and is reported) even when it takes no time.
                let overhead = engine(costs.script_ms());
                self.engine_load.busy_until(on, now + overhead);
                let ms = ms + overhead;
                return self.emit_step(key, on, Step::Script, ms, Step::Save, cache_place, out);
            }
            Step::Save => {
                // `archiveCache`: the stage runs when a cache's `when` matches the outcome.
                let when = spec.work.cache_when;
                let s = spec.work.cache.filter(|_| when.saves(spec.work.script_fails)).map(|u| {
                    self.cache.save(now, at, u, spec.work.cache_size, spec.work.cache_changed)
                });
                let ms = s.map_or(0, |s| s.ms + engine(costs.cache_stage_ms()));
                self.update(key, |st| {
                    if let (JobState::Running { save_ms, bytes_up, publish, .. }, Some(s)) = (st, s)
                    {
                        *save_ms = ms;
                        *bytes_up = s.bytes_up;
                        *publish = s.publish;
                    }
                });
                (Step::Save, ms, s.is_some(), Step::Cleanup)
            }
            Step::Cleanup => (Step::Cleanup, engine(costs.cleanup_ms()), true, Step::Cleanup),
        };
        if step != Step::Pull && ms > 0 {
            // The whole step is engine work (a restore's or save's S3 request too: short
            // beside the archive moves and the stage).
            self.engine_load.busy_until(on, now + ms);
        }
        if ms > 0 || (runs && self.emit_every_step) {
            return self.emit_step(key, on, step, ms, next, cache_place, out);
        }
        if step == Step::Save {
            // Nothing to save, or a save that takes no time (an empty archive with no
            // latency): such an upload is visible at once.
            let mut published = None;
            self.update(key, |s| {
                if let JobState::Running { publish, .. } = s {
                    published = publish.take();
                }
            });
            if let Some(p) = published {
                self.cache.publish(now, p);
            }
        }
        if step == Step::Cleanup {
            return self.job_finished(now, key, out);
        }
        self.update(key, |s| {
            if let JobState::Running { phase, .. } = s {
                *phase = next;
            }
        });
        self.next_step(now, key, out)
    }

    /// Emits a step; when it is done, the job goes on with `next` (or finishes after its
    /// cleanup).
    #[allow(clippy::too_many_arguments)]
    fn emit_step(
        &mut self,
        key: JobKey,
        on: Placement,
        step: Step,
        duration_ms: u64,
        next: Step,
        place: Place,
        out: &mut Vec<Command>,
    ) {
        let token = self.next_token;
        self.next_token += 1;
        self.update(key, |s| {
            if let JobState::Running { step_token, phase, done, .. } = s {
                *step_token = Some(token);
                if step == Step::Cleanup {
                    *done = true;
                } else {
                    *phase = next;
                }
            }
        });
        let job = self.jobs[key.0 as usize].as_ref().expect("running job");
        let JobState::Running { runner, .. } = job.state else { unreachable!("a running job") };
        // The script writes the cache files; restore and save move them.
        let cache = match step {
            Step::Restore | Step::Script | Step::Save => {
                job.spec.work.cache.map(|u| self.cache.decl(u))
            }
            Step::Pull | Step::Sources | Step::Cleanup => None,
        };
        let work = StepWork { spec: job.spec, runner, place, cache };
        out.push(Command::StartStep { job: key, on, step, duration_ms, token, work });
    }

    fn update(&mut self, key: JobKey, f: impl FnOnce(&mut JobState)) {
        f(&mut self.jobs[key.0 as usize].as_mut().expect("running job").state);
    }

    /// From now on, emit every container step, even one the model gives no time (see
    /// [`FleetSpec::emit_every_step`]); the live driver calls it before its first job.
    pub fn emit_every_step(&mut self) {
        self.emit_every_step = true;
    }

    /// Interns a cache declaration for [`crate::job::JobWork::cache`].
    pub fn declare_cache<S: AsRef<str>>(
        &mut self,
        key: &str,
        fallbacks: &[S],
        policy: crate::cache::Policy,
    ) -> CacheUseId {
        self.cache.declare(key, fallbacks, policy)
    }

    /// Interns an image name for [`crate::job::JobWork::image`].
    pub fn intern_image(&mut self, name: &str) -> ImageId {
        self.cache.image(name)
    }

    /// Cache counters so far.
    pub fn cache_stats(&self) -> crate::cache::CacheStats {
        self.cache.stats()
    }

    /// Ends the run's accounting at `end` (storage of objects still stored) and returns the
    /// cache counters.
    pub fn finish_cache(&mut self, end: SimTime) -> crate::cache::CacheStats {
        self.cache.finish(end)
    }

    /// Whether a step completion changes nothing but the job itself and the caches: a stale
    /// one, or one after which the job goes on to a step before its save (the script always
    /// runs, so the job cannot finish on the way). A completed script is not such a step: the
    /// save may take no time and the job end at once.
    fn step_leaves_the_fleet_as_is(&self, key: JobKey, token: u64) -> bool {
        let Some(Some(job)) = self.jobs.get(key.0 as usize) else { return true };
        match job.state {
            JobState::Running { step_token, done, phase, .. } => {
                step_token != Some(token) || (!done && phase < Step::Save)
            }
            JobState::Pending => true,
        }
    }

    /// The token of a job's running step, if it has one.
    fn step_token(&self, key: JobKey) -> Option<u64> {
        match self.jobs.get(key.0 as usize)?.as_ref()?.state {
            JobState::Running { step_token, .. } => step_token,
            JobState::Pending => None,
        }
    }

    /// Workhorse releases the held requests of every runner that could take a new job, in the
    /// order they were made. Each is answered 204 without asking Rails (Workhorse
    /// `builds.RegisterHandler`, `WatchKeyStatusSeenChange`); the runner takes the job with
    /// its next request, which carries the now stale `last_update` and so goes to Rails.
    fn release_polls(&mut self, now: SimTime, eligible: RunnerMask, out: &mut Vec<Command>) {
        for p in 0..self.processes.len() {
            let held: Vec<_> = self.processes[p]
                .polls
                .iter()
                .filter(|poll| self.processes[p].is_live(poll))
                .filter_map(|poll| match self.processes[p].workers[poll.worker].state {
                    WorkerState::Polling { runner, machine, .. } if eligible.contains(runner) => {
                        Some((poll.worker, runner, machine))
                    }
                    _ => None,
                })
                .collect();
            for (w, runner, machine) in held {
                self.poll_answered_empty(now, p, w, runner, machine, out);
            }
        }
    }

    fn expire_polls(&mut self, now: SimTime, p: usize, out: &mut Vec<Command>) {
        while let Some(deadline) = self.processes[p].next_poll_deadline() {
            if deadline > now {
                break;
            }
            let poll = self.processes[p].polls.pop_front().expect("live poll");
            let WorkerState::Polling { runner, machine, .. } =
                self.processes[p].workers[poll.worker].state
            else {
                unreachable!("live poll without a polling worker");
            };
            self.poll_answered_empty(now, p, poll.worker, runner, machine, out);
        }
    }

    /// Workhorse answers a held request 204, released by a job or at the end of the long
    /// poll (`WatchKeyStatusSeenChange` or `WatchKeyStatusTimeout`), without asking Rails.
    /// GitLab Runner 19.4 takes it as an empty answer: `network/gitlab.go`
    /// `(*GitLabClient).RequestJob` returns no job, `processBuildOnRunner` releases the
    /// request slot (the AIMD "empty" step, `builds_helper.go` `releaseRequest`) and returns
    /// without a requeue; `processRunner`'s deferred calls give back the machine or
    /// reservation, then the `limit` slot; then the worker is free.
    fn poll_answered_empty(
        &mut self,
        now: SimTime,
        p: usize,
        w: usize,
        runner: RunnerId,
        machine: Option<MachineId>,
        out: &mut Vec<Command>,
    ) {
        self.runners[runner.0 as usize].requests -= 1;
        self.request_done(runner, false);
        self.request_was_empty(runner, machine);
        let r = &mut self.runners[runner.0 as usize];
        if r.at_limit() {
            r.limit_free_since = now;
        }
        r.builds -= 1;
        self.dirty.push(runner);
        self.worker_freed(now, p, w, out);
    }

    /// Immediate pick-up (docker only): every runner, in order, takes what it can while it
    /// has an idle worker and a `limit` slot.
    fn dispatch_immediately(&mut self, now: SimTime, out: &mut Vec<Command>) {
        for runner in 0..self.runners.len() {
            let runner = RunnerId(runner as u16);
            let p = self.runners[runner.0 as usize].process;
            while !self.runners[runner.0 as usize].at_limit() && self.queue.has_job_for(runner) {
                let Some(w) = self.processes[p].idle.pop_front() else { break };
                let (_, key) = self.queue.pick(runner).expect("has_job_for");
                self.start_job(now, p, w, runner, key, None, out);
            }
        }
    }

    fn machine_runner(&mut self, runner: RunnerId) -> &mut MachineRunner {
        self.runners[runner.0 as usize].executor.machines_mut().expect("docker+machine runner")
    }
}
