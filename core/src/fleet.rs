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
//!             Acquire (docker: always) ─► POST /jobs/request ─► job? ─yes─► run it,
//!                                                      │              greedy re-poll of r
//!                                                      no              on another idle worker
//!                                                      ▼
//!                                  long polling on? hold the request : empty answer
//! ```
//!
//! Between inputs nothing changes, so [`Fleet::next_wakeup`] names the first feeder offer
//! that can change something (a blocked feeder, a job a runner could take, a long poll to
//! start) or the first long-poll deadline; offers in between are no-ops whose only effects
//! (the idle-worker rotation and the adaptive-concurrency decay) are applied in bulk when
//! time next moves. `skip_idle_offers = false` offers every `check_interval / N` instead and
//! must give the same timings (tested).

use crate::adaptive::Adaptive;
use crate::ids::{HostId, JobId, JobKey, ProjectId, RunnerId, TagSetId};
use crate::job::{Command, Input, JobRecord, JobSpec, Step};
use crate::queue::{Filed, Queue, RunnerFilter, RunnerMask};
use crate::runner_process::{Feeder, RunnerProcess, WorkerState};
use crate::spec::{FleetSpec, Pickup, RunnerSpec};
use crate::tags::TagInterner;
use crate::time::SimTime;

/// Per-runner counters, as GitLab Runner's `buildsHelper` keeps them.
#[derive(Debug)]
struct RunnerState {
    spec: RunnerSpec,
    process: usize,
    /// Jobs running plus requests in flight (the `limit` counter).
    builds: u32,
    /// Job requests in flight.
    requests: u32,
    adaptive: Adaptive,
    /// When a `limit` slot last became free after the runner was full.
    limit_free_since: SimTime,
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
}

#[derive(Debug, Clone, Copy)]
enum JobState {
    Pending,
    Running {
        runner: RunnerId,
        process: usize,
        worker: usize,
        started: SimTime,
        capacity_at: SimTime,
    },
}

#[derive(Debug, Clone, Copy)]
struct ActiveJob {
    id: JobId,
    project: ProjectId,
    filed: Filed,
    duration_ms: u64,
    created: SimTime,
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
    Job,
    Held,
    Nothing,
}

/// The simulated fleet. See the module docs for the pick-up logic.
#[derive(Debug)]
pub struct Fleet {
    pickup: Pickup,
    long_poll_ms: u64,
    skip_idle_offers: bool,
    tags: TagInterner,
    queue: Queue,
    runners: Vec<RunnerState>,
    processes: Vec<RunnerProcess>,
    jobs: Vec<Option<ActiveJob>>,
    free_keys: Vec<u32>,
    running: u32,
    now: SimTime,
    wakeup: Option<SimTime>,
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
            for r in p.runners {
                let id = RunnerId(runners.len() as u16);
                ids.push(id);
                filters.push(RunnerFilter {
                    scope: r.scope,
                    projects: r.projects.clone(),
                    tags: tags.intern(&r.tags),
                    run_untagged: r.run_untagged,
                });
                runners.push(RunnerState {
                    spec: r,
                    process: pi,
                    builds: 0,
                    requests: 0,
                    adaptive: Adaptive::default(),
                    limit_free_since: SimTime::ZERO,
                });
            }
            processes.push(RunnerProcess::new(
                ids,
                p.concurrent,
                p.check_interval_ms,
                SimTime(p.first_offer_ms),
            ));
        }
        let mut fleet = Fleet {
            pickup: spec.pickup,
            long_poll_ms: spec.long_poll_ms,
            skip_idle_offers: spec.skip_idle_offers,
            tags,
            queue: Queue::new(filters),
            runners,
            processes,
            jobs: Vec::new(),
            free_keys: Vec::new(),
            running: 0,
            now: SimTime::ZERO,
            wakeup: None,
        };
        fleet.wakeup = fleet.compute_wakeup();
        fleet
    }

    /// Interns a job's tags for [`JobSpec::tags`].
    pub fn intern_tags<S: AsRef<str>>(&mut self, tags: &[S]) -> TagSetId {
        self.tags.intern(tags)
    }

    /// Checks that some runner could ever take this job (tags ⊆ runner tags, untagged jobs
    /// need `run_untagged`, project scope). A job no runner can take would stay pending
    /// until GitLab drops it; the simulator refuses it instead of hanging.
    pub fn check_servable(&self, job: &JobSpec) -> Result<(), Unservable> {
        if self.queue.eligible(&self.tags, job.project, job.tags) != RunnerMask(0) {
            return Ok(());
        }
        let tags = self.tags.names(job.tags);
        let runners: Vec<String> = self
            .runners
            .iter()
            .map(|r| {
                format!(
                    "{:?} (tags [{}], run_untagged = {}{})",
                    r.spec.name,
                    r.spec.tags.join(", "),
                    r.spec.run_untagged,
                    match &r.spec.projects {
                        Some(ps) => format!(
                            ", projects [{}]",
                            ps.iter().map(|p| p.0.to_string()).collect::<Vec<_>>().join(", ")
                        ),
                        None => String::new(),
                    }
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

    /// Jobs running on some runner.
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
        self.now = now;
        self.skip_no_op_offers(now);
        match input {
            Input::JobCreated(spec) => self.job_created(now, spec, out),
            Input::StepDone { job, step: Step::Script } => self.job_finished(now, job, out),
            Input::Wakeup => self.wake(now, out),
        }
        if self.pickup == Pickup::Immediate {
            self.dispatch_immediately(now, out);
        }
        self.wakeup = self.compute_wakeup();
    }

    fn job_created(&mut self, now: SimTime, spec: JobSpec, out: &mut Vec<Command>) {
        let key = match self.free_keys.pop() {
            Some(k) => k,
            None => {
                self.jobs.push(None);
                (self.jobs.len() - 1) as u32
            }
        };
        let filed = self.queue.push(&self.tags, spec.id, JobKey(key), spec.project, spec.tags);
        self.jobs[key as usize] = Some(ActiveJob {
            id: spec.id,
            project: spec.project,
            filed,
            duration_ms: spec.duration_ms,
            created: now,
            state: JobState::Pending,
        });
        if self.long_poll_ms > 0 && self.pickup == Pickup::Polling {
            self.release_polls(now, self.queue.class_runners(filed.class), out);
        }
    }

    fn job_finished(&mut self, now: SimTime, key: JobKey, out: &mut Vec<Command>) {
        let job = self.jobs[key.0 as usize].take().expect("StepDone for an unknown job");
        self.free_keys.push(key.0);
        let JobState::Running { runner, process, worker, started, capacity_at } = job.state else {
            panic!("StepDone for job {} that is not running", job.id);
        };
        let queued = job.created;
        let pending = started - queued;
        let wait_capacity_ms = capacity_at.saturating_since(queued).min(pending);
        out.push(Command::JobFinished(JobRecord {
            id: job.id,
            project: job.project,
            runner,
            host: HostId(process as u16),
            created: job.created,
            queued,
            started,
            script_started: started,
            finished: now,
            wait_capacity_ms,
            wait_poll_ms: pending - wait_capacity_ms,
        }));
        self.running -= 1;
        self.queue.job_ended(runner, job.filed);
        let r = &mut self.runners[runner.0 as usize];
        let was_full = r.at_limit();
        r.builds -= 1;
        if was_full {
            r.limit_free_since = now;
        }
        self.processes[process].workers[worker].free_since = now;
        self.worker_freed(now, process, worker, out);
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
        for p in 0..self.processes.len() {
            self.expire_polls(now, p, out);
            let proc = &mut self.processes[p];
            let Feeder::Sleeping { next_at, idx } = proc.feeder else { continue };
            if next_at != now {
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
        // Acquire: the docker executor has no capacity check.
        if let Some((_, key)) = self.queue.pick(runner) {
            self.runners[runner.0 as usize].after_request(true);
            self.start_job(now, p, w, runner, key, out);
            return Requested::Job;
        }
        if self.long_poll_ms > 0 {
            let r = &mut self.runners[runner.0 as usize];
            r.builds += 1;
            r.requests += 1;
            self.processes[p].hold_poll(w, runner, now + self.long_poll_ms);
            return Requested::Held;
        }
        self.runners[runner.0 as usize].after_request(false);
        Requested::Nothing
    }

    fn start_job(
        &mut self,
        now: SimTime,
        p: usize,
        w: usize,
        runner: RunnerId,
        key: JobKey,
        out: &mut Vec<Command>,
    ) {
        let r = &mut self.runners[runner.0 as usize];
        r.builds += 1;
        let worker = &mut self.processes[p].workers[w];
        worker.state = WorkerState::Busy { job: key };
        let capacity_at = worker.free_since.max(r.limit_free_since);
        let job = self.jobs[key.0 as usize].as_mut().expect("picked job exists");
        job.state = JobState::Running { runner, process: p, worker: w, started: now, capacity_at };
        self.running += 1;
        out.push(Command::StartStep {
            job: key,
            host: HostId(p as u16),
            step: Step::Script,
            duration_ms: job.duration_ms,
        });
    }

    /// Workhorse releases the held requests of every runner that could take a new job; each
    /// goes to Rails in the order it was made and gets a job or an empty answer.
    fn release_polls(&mut self, now: SimTime, eligible: RunnerMask, out: &mut Vec<Command>) {
        for p in 0..self.processes.len() {
            let held: Vec<_> = self.processes[p]
                .polls
                .iter()
                .filter(|poll| self.processes[p].is_live(poll))
                .filter_map(|poll| match self.processes[p].workers[poll.worker].state {
                    WorkerState::Polling { runner, .. } if eligible.contains(runner) => {
                        Some((poll.worker, runner))
                    }
                    _ => None,
                })
                .collect();
            for (w, runner) in held {
                self.answer_poll(now, p, w, runner, out);
            }
        }
    }

    fn expire_polls(&mut self, now: SimTime, p: usize, out: &mut Vec<Command>) {
        while let Some(deadline) = self.processes[p].next_poll_deadline() {
            if deadline > now {
                break;
            }
            let poll = self.processes[p].polls.pop_front().expect("live poll");
            let WorkerState::Polling { runner, .. } = self.processes[p].workers[poll.worker].state
            else {
                unreachable!("live poll without a polling worker");
            };
            self.answer_poll(now, p, poll.worker, runner, out);
        }
    }

    /// A held request reaches Rails: a job if one is there for the runner, else empty.
    fn answer_poll(
        &mut self,
        now: SimTime,
        p: usize,
        w: usize,
        runner: RunnerId,
        out: &mut Vec<Command>,
    ) {
        let r = &mut self.runners[runner.0 as usize];
        r.requests -= 1;
        r.builds -= 1;
        match self.queue.pick(runner) {
            Some((_, key)) => {
                self.runners[runner.0 as usize].after_request(true);
                self.start_job(now, p, w, runner, key, out);
                if !self.runners[runner.0 as usize].spec.strict_check_interval
                    && let Some(next) = self.processes[p].idle.pop_front()
                {
                    self.process_runner(now, p, next, runner, out);
                }
            }
            None => {
                self.runners[runner.0 as usize].after_request(false);
                self.worker_freed(now, p, w, out);
            }
        }
    }

    /// Immediate pick-up: every runner, in order, takes what it can while it has an idle
    /// worker and a `limit` slot.
    fn dispatch_immediately(&mut self, now: SimTime, out: &mut Vec<Command>) {
        for runner in 0..self.runners.len() {
            let runner = RunnerId(runner as u16);
            let p = self.runners[runner.0 as usize].process;
            while !self.runners[runner.0 as usize].at_limit() && self.queue.has_job_for(runner) {
                let Some(w) = self.processes[p].idle.pop_front() else { break };
                let (_, key) = self.queue.pick(runner).expect("has_job_for");
                self.start_job(now, p, w, runner, key, out);
            }
        }
    }

    /// Fast path: moves each feeder past the offers before `now` that changed nothing, and
    /// applies their only effects: each such offer took the front idle worker and put it
    /// back at the end, and each one that reached GitLab was an empty request.
    fn skip_no_op_offers(&mut self, now: SimTime) {
        if self.pickup != Pickup::Polling {
            return;
        }
        for p in 0..self.processes.len() {
            let proc = &mut self.processes[p];
            let Some((skipped, first)) = proc.skip_offers_before(now) else { continue };
            assert!(self.skip_idle_offers, "an offer was missed in tick-by-tick mode");
            let idle = proc.idle.len();
            assert!(idle > 0, "offers were skipped while the feeder should have blocked");
            proc.idle.rotate_left((skipped % idle as u64) as usize);
            if self.long_poll_ms > 0 {
                continue; // skipped offers were runners at limit: no request was made
            }
            for local in 0..proc.runners.len() {
                let offers = proc.offers_to(skipped, first, local);
                let r = &mut self.runners[proc.runners[local].0 as usize];
                if offers > 0
                    && !r.at_limit()
                    && !r.requests_full()
                    && r.spec.adaptive_request_concurrency
                {
                    r.adaptive.after_empty_requests(offers, r.spec.request_concurrency);
                }
            }
        }
    }

    fn compute_wakeup(&mut self) -> Option<SimTime> {
        if self.pickup != Pickup::Polling {
            return None;
        }
        let mut best: Option<SimTime> = None;
        for p in 0..self.processes.len() {
            let poll = self.processes[p].next_poll_deadline();
            let offer = self.next_useful_offer(p);
            for t in [poll, offer].into_iter().flatten() {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        }
        best
    }

    /// The first feeder offer of process `p` that can change anything.
    fn next_useful_offer(&self, p: usize) -> Option<SimTime> {
        let proc = &self.processes[p];
        let Feeder::Sleeping { next_at, idx } = proc.feeder else { return None };
        if !self.skip_idle_offers || proc.idle.is_empty() {
            return Some(next_at); // tick-by-tick, or the feeder will block there
        }
        let n = proc.runners.len();
        (0..n).find_map(|k| {
            let r = &self.runners[proc.runner_at((idx + k) % n).0 as usize];
            let useful = !r.at_limit()
                && !r.requests_full()
                && (self.long_poll_ms > 0 || self.queue.has_job_for(proc.runner_at((idx + k) % n)));
            useful.then(|| next_at + k as u64 * proc.gap_ms)
        })
    }
}
