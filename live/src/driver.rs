//! The live driver: the same [`Fleet`] as the simulator, its commands carried out against a
//! real Docker engine and a real S3 server, its inputs stamped with the scaled wall clock.
//!
//! ```text
//!   trace ─► JobSource ─┐   timer (next arrival, Fleet::next_wakeup)
//!                       ▼         ▼
//!   completions ──► select! ──► Fleet::handle(now) ──► commands ─┬─► spawn step task (container, S3)
//!   (JoinSet)          ▲                                         ├─► spawn machine task (volume, scaled creation time)
//!                      └────────── Input (StepDone, MachineReady, MachineRemoved) ◄┘
//!                                               every command ─► Observer (reports, as the run goes)
//! ```
//!
//! Arrivals and core wakeups are handled at their own instants (the timer fires at or after
//! them; the core sees the exact instant, never earlier than the previous one), completions
//! at the clock's reading when they arrive. The core decides which steps run (a restore, a
//! save that is skipped because nothing changed); the driver does each step for real and
//! records what really happened — the real cache outcome (found in the bucket, in the
//! machine's volume, nowhere, refused), the real step times, a failed container — in the job
//! record it passes on, and counts how often the core's cache decision matched reality.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fleetsim_core::cache::{CacheDecl, Outcome, Policy};
use fleetsim_core::drive::{Drive, JobSource, Observer, Port};
use fleetsim_core::{
    Command, Fleet, Input, JobId, JobKey, JobSpec, MachineId, Placement, RunnerId, SimTime, Step,
};
use tokio::task::JoinSet;

use crate::LiveError;
use crate::archive::{self, ArchiveError};
use crate::clock::{LiveClock, Stopwatch};
use crate::docker::{self, DockerPort, Exit, Swept, VOLUME_MOUNT};
use crate::report::LiveStats;
use crate::s3::{S3Port, object_name};

/// Draws machine creation times (the simulated cloud's distribution, from the run's seed).
pub trait CreationTimes: Send {
    /// The creation time of a machine of `runner`, in run-time ms.
    fn creation_ms(&mut self, runner: RunnerId) -> u64;
}

/// What the driver needs to know about one `[[runners]]` entry.
#[derive(Debug, Clone)]
pub struct RunnerLive {
    /// The short token in object names (`runner/<short-token>/`).
    pub short_token: String,
    /// The distributed cache, when `[runners.cache]` has one.
    pub s3: Option<S3Port>,
}

/// A run's settings.
#[derive(Debug, Clone)]
pub struct LiveSetup {
    /// The run id: the `fleetsim.run` label value and the prefix of every name.
    pub run_id: String,
    /// Run time per wall time.
    pub speed: f64,
    /// Factor applied to the trace's `cache_size` for the files jobs really write.
    pub cache_scale: f64,
    /// The engine.
    pub docker: DockerPort,
    /// Per `[[runners]]` entry, indexed by `RunnerId`.
    pub runners: Vec<RunnerLive>,
    /// Runner hosts (processes) of the fleet: each docker-executor host gets one volume.
    pub hosts: u16,
}

/// How a run ended.
#[derive(Debug)]
pub struct LiveEnd {
    /// Run time of the last input handled.
    pub end: SimTime,
    /// Jobs handed to the fleet: read from the source, and released by pipelines.
    pub jobs: u64,
    /// Jobs of pipelines skipped because a predecessor failed.
    pub skipped: u64,
    /// Whether the cancel future fired first.
    pub interrupted: bool,
    /// What the final sweep removed (everything left with the run's label).
    pub swept: Swept,
    /// What was measured.
    pub stats: LiveStats,
    /// Wall seconds the run took.
    pub wall_s: f64,
    /// Every machine of the run, by id.
    pub machines: BTreeMap<MachineId, MachineLife>,
}

/// One machine's life, in run time (for `machines.csv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineLife {
    /// Its `[[runners]]` entry.
    pub runner: RunnerId,
    /// When the core asked for it.
    pub created: SimTime,
    /// When it was ready.
    pub ready: Option<SimTime>,
    /// When its removal started.
    pub removal_started: Option<SimTime>,
    /// When its volume was gone.
    pub removed: Option<SimTime>,
    /// Why it was removed (GitLab Runner's wording).
    pub reason: &'static str,
    /// Jobs whose script ran on it.
    pub jobs: u32,
    /// Time running jobs (first step to the end of the job), ms.
    pub busy_ms: u64,
}

/// What the driver knows of a running job beyond the core.
#[derive(Debug, Clone, Copy, Default)]
struct JobLive {
    outcome: Option<Outcome>,
    failed: bool,
    bytes_down: u64,
    bytes_up: u64,
    pull_ms: u64,
    restore_ms: u64,
    save_ms: u64,
    /// The script rewrote the cache files (a miss, or the job changes them).
    wrote_cache: bool,
}

/// State the tasks share with the loop.
struct Shared {
    setup: LiveSetup,
    clock: LiveClock,
    stats: Mutex<LiveStats>,
    jobs: Mutex<BTreeMap<JobId, JobLive>>,
    machines: Mutex<BTreeMap<MachineId, MachineLife>>,
}

impl Shared {
    fn stats(&self) -> std::sync::MutexGuard<'_, LiveStats> {
        self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn job(&self, id: JobId, f: impl FnOnce(&mut JobLive)) {
        let mut jobs = self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(jobs.entry(id).or_default());
    }
    fn job_get(&self, id: JobId) -> JobLive {
        let jobs = self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        jobs.get(&id).copied().unwrap_or_default()
    }
    fn machine(&self, m: MachineId, f: impl FnOnce(&mut MachineLife)) {
        let mut ms = self.machines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(life) = ms.get_mut(&m) {
            f(life);
        }
    }
    fn docker_error(&self, what: String) {
        self.stats().docker_errors.push(what);
    }
    fn record_container(&self, exit: &Exit) {
        let mut s = self.stats();
        s.containers += 1;
        s.container_create.record_us(exit.times.create_us);
        s.container_start.record_us(exit.times.start_us);
        s.container_remove.record_us(exit.times.remove_us);
    }
    fn volume(&self, on: Placement) -> String {
        let run = &self.setup.run_id;
        match on {
            Placement::Host(h) => format!("fleetsim-{run}-host{}", h.0),
            Placement::Machine(m) => format!("fleetsim-{run}-m{}", m.0),
        }
    }
}

/// The volume name of machine `m` in run `run_id` (tests look for it).
pub fn machine_volume(run_id: &str, m: MachineId) -> String {
    format!("fleetsim-{run_id}-m{}", m.0)
}

/// Runs `fleet` live until the source is exhausted and every job has finished, or `cancel`
/// completes (Ctrl-C); removes everything the run created in either case.
pub async fn run<S, O>(
    fleet: &mut Fleet,
    setup: LiveSetup,
    source: &mut S,
    observer: &mut O,
    mut creation: Box<dyn CreationTimes>,
    cancel: impl Future<Output = ()>,
) -> Result<LiveEnd, LiveError>
where
    S: JobSource,
    S::Error: std::fmt::Display,
    O: Observer,
{
    let clock = LiveClock::start(setup.speed);
    let shared = Arc::new(Shared {
        setup,
        clock,
        stats: Mutex::new(LiveStats::default()),
        jobs: Mutex::new(BTreeMap::new()),
        machines: Mutex::new(BTreeMap::new()),
    });
    let wall = Stopwatch::start();
    let mut tasks: JoinSet<Option<Input>> = JoinSet::new();
    let result =
        drive(fleet, &shared, source, observer, creation.as_mut(), &mut tasks, cancel).await;
    // Whatever happened, nothing of the run may stay on the engine: stop the tasks, then
    // sweep by label twice (a create call in flight when its task was aborted can still land).
    tasks.shutdown().await;
    let docker = shared.setup.docker.client().clone();
    let run_id = shared.setup.run_id.clone();
    let mut swept = docker::sweep(&docker, Some(&run_id)).await.unwrap_or_default();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let again = docker::sweep(&docker, Some(&run_id)).await.unwrap_or_default();
    swept.containers += again.containers;
    swept.volumes += again.volumes;
    let (end, jobs, skipped, interrupted) = result?;
    let stats = shared.stats().clone();
    let machines =
        shared.machines.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    Ok(LiveEnd {
        end,
        jobs,
        skipped,
        interrupted,
        swept,
        stats,
        wall_s: wall.elapsed().as_secs_f64(),
        machines,
    })
}

async fn drive<S, O>(
    fleet: &mut Fleet,
    shared: &Arc<Shared>,
    source: &mut S,
    observer: &mut O,
    creation: &mut dyn CreationTimes,
    tasks: &mut JoinSet<Option<Input>>,
    cancel: impl Future<Output = ()>,
) -> Result<(SimTime, u64, u64, bool), LiveError>
where
    S: JobSource,
    S::Error: std::fmt::Display,
    O: Observer,
{
    let s = &shared.setup;
    for h in 0..s.hosts {
        let name = shared.volume(Placement::Host(fleetsim_core::HostId(h)));
        s.docker.create_volume(&name).await.map_err(|e| {
            LiveError::Docker(format!("creating the runner host volume {name}: {e}"))
        })?;
    }
    tokio::pin!(cancel);
    let clock = shared.clock;
    let mut drive = Drive::new();
    let input_error = |e: S::Error| LiveError::Input(e.to_string());
    let mut next_arrival = drive.next_job(fleet, source).map_err(input_error)?;
    let mut last = SimTime::ZERO;
    let mut jobs = 0u64;
    let mut batch = Vec::new();
    loop {
        if next_arrival.is_none() && fleet.is_idle() {
            return Ok((last, jobs, drive.pipelines().skipped(), false));
        }
        let due = match (next_arrival.as_ref().map(|(t, _)| *t), fleet.next_wakeup()) {
            (Some(a), Some(w)) => Some(a.min(w)),
            (a, w) => a.or(w),
        };
        let timer = async {
            match due {
                Some(t) => tokio::time::sleep_until(clock.instant_of(t)).await,
                None => std::future::pending().await,
            }
        };
        let mut inputs: Vec<(SimTime, Input)> = Vec::new();
        tokio::select! {
            biased;
            () = &mut cancel => return Ok((last, jobs, drive.pipelines().skipped(), true)),
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(Some(input)) = done {
                    inputs.push((clock.now().max(last), input));
                }
            }
            () = timer => {}
        }
        // Everything due by now: arrivals in trace order, then the core's wakeup.
        let now = clock.now();
        while let Some((t, _)) = &next_arrival
            && *t <= now
        {
            let (t, spec) = next_arrival.take().expect("checked");
            next_arrival = drive.next_job(fleet, source).map_err(input_error)?;
            inputs.push((t, Input::JobCreated(spec)));
        }
        inputs.sort_by_key(|(t, _)| *t);
        let mut port = LivePort { shared, creation, tasks };
        // One input at a time, each at its own instant (never before the previous one), with
        // the jobs its job ends release right after it.
        let mut handle = |at: SimTime, input: Input, fleet: &mut Fleet| {
            let now = at.max(last);
            last = now;
            batch.clear();
            batch.push(input);
            jobs += drive.handle(fleet, now, &mut batch, &mut port, observer).jobs;
        };
        for (t, input) in inputs {
            handle(t, input, fleet);
        }
        if let Some(w) = fleet.next_wakeup()
            && w <= clock.now()
        {
            handle(w, Input::Wakeup, fleet);
        }
    }
}

/// The live port: steps become containers and S3 requests, machines become volumes; what
/// really happened is written into the job records before anyone sees them.
struct LivePort<'a> {
    shared: &'a Arc<Shared>,
    creation: &'a mut dyn CreationTimes,
    tasks: &'a mut JoinSet<Option<Input>>,
}

impl Port for LivePort<'_> {
    fn carry_out(&mut self, now: SimTime, input: &Input, commands: &mut [Command]) {
        let (shared, tasks) = (self.shared, &mut *self.tasks);
        match *input {
            Input::MachineReady { machine } => shared.machine(machine, |l| l.ready = Some(now)),
            Input::MachineRemoved { machine } => {
                shared.machine(machine, |l| l.removed = Some(now));
            }
            _ => {}
        }
        for c in commands.iter_mut() {
            match c {
                Command::StartStep { job, on, step, duration_ms, token, work } => {
                    if let (Placement::Machine(m), Step::Script) = (*on, *step) {
                        shared.machine(m, |l| l.jobs += 1);
                    }
                    let task = StepTask {
                        key: *job,
                        step: *step,
                        token: *token,
                        duration_ms: *duration_ms,
                        spec: work.spec,
                        runner: work.runner,
                        on: *on,
                        cache: work.cache.clone(),
                    };
                    let shared = shared.clone();
                    tasks.spawn(async move { Some(task.run(&shared).await) });
                }
                Command::CreateMachine { machine, runner } => {
                    let life = MachineLife {
                        runner: *runner,
                        created: now,
                        ready: None,
                        removal_started: None,
                        removed: None,
                        reason: "",
                        jobs: 0,
                        busy_ms: 0,
                    };
                    shared
                        .machines
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(*machine, life);
                    let ready_at = now + self.creation.creation_ms(*runner);
                    let (machine, shared) = (*machine, shared.clone());
                    tasks.spawn(async move {
                        Some(create_machine(&shared, machine, now, ready_at).await)
                    });
                }
                Command::RemoveMachine { machine, reason } => {
                    let why = reason.as_str();
                    shared.machine(*machine, |l| {
                        l.removal_started = Some(now);
                        l.reason = why;
                    });
                    let (machine, shared) = (*machine, shared.clone());
                    tasks.spawn(async move {
                        let name = shared.volume(Placement::Machine(machine));
                        match shared.setup.docker.remove_volume(&name).await {
                            Ok(()) => {
                                let mut st = shared.stats();
                                st.machines_removed += 1;
                                st.machines_alive = st.machines_alive.saturating_sub(1);
                            }
                            Err(e) => shared.docker_error(format!("removing volume {name}: {e}")),
                        }
                        Some(Input::MachineRemoved { machine })
                    });
                }
                Command::JobFinished(r) => {
                    let live = shared
                        .jobs
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&r.id);
                    let live = live.unwrap_or_default();
                    let mut stats = shared.stats();
                    if let Some(real) = live.outcome {
                        let hit = |o: Outcome| {
                            matches!(o, Outcome::HitLocal { .. } | Outcome::HitRemote { .. })
                        };
                        if hit(real) == hit(r.cache) {
                            stats.cache.agreed_with_model += 1;
                        }
                        r.cache = match (real, r.cache) {
                            // A real miss keeps the core's reason when the core missed too.
                            (Outcome::Miss(_), Outcome::Miss(why)) => Outcome::Miss(why),
                            (o, _) => o,
                        };
                    }
                    if live.failed {
                        r.failed = true;
                        stats.failed_jobs += 1;
                    }
                    r.bytes_down = live.bytes_down;
                    r.bytes_up = live.bytes_up;
                    r.pull_ms = live.pull_ms;
                    r.restore_ms = live.restore_ms;
                    r.save_ms = live.save_ms;
                    if let Some(m) = r.machine {
                        let busy = r.machine_busy_ms();
                        shared.machine(m, |l| l.busy_ms += busy);
                    }
                }
            }
        }
    }
}

async fn create_machine(
    shared: &Shared,
    machine: MachineId,
    asked: SimTime,
    ready_at: SimTime,
) -> Input {
    let name = shared.volume(Placement::Machine(machine));
    let t = Stopwatch::start();
    if let Err(e) = shared.setup.docker.create_volume(&name).await {
        shared.docker_error(format!("creating volume {name}: {e}"));
        return Input::MachineFailed { machine };
    }
    {
        let mut st = shared.stats();
        st.volume_create.record_us(t.micros());
        st.machines_alive += 1;
        st.machines_max_alive = st.machines_max_alive.max(st.machines_alive);
    }
    tokio::time::sleep_until(shared.clock.instant_of(ready_at)).await;
    let mut s = shared.stats();
    s.machines_created += 1;
    let run_ms = shared.clock.now().saturating_since(asked);
    s.machine_ready.record_us(run_ms.saturating_mul(1000));
    Input::MachineReady { machine }
}

/// One step to carry out.
#[derive(Debug, Clone)]
struct StepTask {
    key: JobKey,
    step: Step,
    token: u64,
    duration_ms: u64,
    spec: JobSpec,
    runner: RunnerId,
    on: Placement,
    cache: Option<Arc<CacheDecl>>,
}

impl StepTask {
    fn container(&self, shared: &Shared, what: &str) -> String {
        format!("fleetsim-{}-j{}-{what}-{}", shared.setup.run_id, self.spec.id.0, self.token)
    }

    fn build_dir(&self) -> String {
        format!("builds/j{}", self.spec.id.0)
    }

    /// `cache/p<project>/<key>/cache.zip` in the volume, as GitLab's local archive path.
    fn local_archive(&self, key: &str) -> String {
        format!("cache/p{}/{key}/cache.zip", self.spec.project.0)
    }

    fn object(&self, shared: &Shared, key: &str) -> Option<(S3Port, String)> {
        let r = shared.setup.runners.get(self.runner.0 as usize)?;
        let s3 = r.s3.clone()?;
        let c = s3.config();
        let name = object_name(&c.path, c.shared, &r.short_token, self.spec.project.0, key)?;
        Some((s3, name))
    }

    async fn run(self, shared: &Shared) -> Input {
        let t = Stopwatch::start();
        match self.step {
            Step::Pull => {
                match shared.setup.docker.image_present().await {
                    Ok(true) => {}
                    Ok(false) => {
                        shared.docker_error(format!(
                            "job {}: the image is not present",
                            self.spec.id.0
                        ));
                        shared.job(self.spec.id, |j| j.failed = true);
                    }
                    Err(e) => {
                        shared.docker_error(format!(
                            "job {}: inspecting the image: {e}",
                            self.spec.id.0
                        ));
                        shared.job(self.spec.id, |j| j.failed = true);
                    }
                }
                shared.stats().pull.record_us(t.micros());
                let ms = shared.clock.run_ms(t.elapsed());
                shared.job(self.spec.id, |j| j.pull_ms = ms);
            }
            Step::Restore => {
                self.restore(shared).await;
                shared.stats().restore.record_us(t.micros());
                let ms = shared.clock.run_ms(t.elapsed());
                shared.job(self.spec.id, |j| j.restore_ms = ms);
            }
            Step::Script => self.script(shared).await,
            Step::Save => {
                self.save(shared).await;
                shared.stats().save.record_us(t.micros());
                let ms = shared.clock.run_ms(t.elapsed());
                shared.job(self.spec.id, |j| j.save_ms = ms);
            }
        }
        Input::StepDone { job: self.key, step: self.step, token: self.token }
    }

    /// Creates a helper container on the job's volume running `script`, lets `before` use it
    /// (archive reads and writes), then starts, waits and removes it.
    async fn helper<T>(
        &self,
        shared: &Shared,
        what: &str,
        script: &str,
        before: impl AsyncFnOnce(&str) -> T,
    ) -> Option<(T, Exit)> {
        let docker = &shared.setup.docker;
        let name = self.container(shared, what);
        let volume = shared.volume(self.on);
        let create_us = match docker.create(&name, &volume, script).await {
            Ok(us) => us,
            Err(e) => {
                shared.docker_error(format!("creating container {name}: {e}"));
                return None;
            }
        };
        let value = before(&name).await;
        match docker.start_wait_remove(&name, create_us).await {
            Ok(exit) => {
                shared.record_container(&exit);
                Some((value, exit))
            }
            Err(e) => {
                shared.docker_error(format!("running container {name}: {e}"));
                None
            }
        }
    }

    async fn restore(&self, shared: &Shared) {
        let Some(cache) = &self.cache else { return };
        if cache.policy == Policy::Push {
            return;
        }
        let docker = &shared.setup.docker;
        let build = self.build_dir();
        let script = format!("test -d {VOLUME_MOUNT}/{build} || true");
        let found = self
            .helper(shared, "restore", &script, async |name: &str| {
                for (i, key) in cache.keys.iter().enumerate() {
                    let fallback = i as u8;
                    // GitLab's extractor: the object when it exists (and its local copy is
                    // kept), else the local archive of the same key, else the next key.
                    let mut archive: Option<(Bytes, Outcome)> = None;
                    if let Some((s3, object)) = self.object(shared, key) {
                        let t = Stopwatch::start();
                        let got = s3.get(&object).await;
                        let us = t.micros();
                        let mut st = shared.stats();
                        st.cache.get_requests += 1;
                        st.s3_get.record_us(us);
                        match got {
                            Ok(Some(b)) => {
                                st.s3_down_bytes_us.0 += b.len() as u64;
                                st.s3_down_bytes_us.1 += us;
                                st.cache.bytes_down += b.len() as u64;
                                archive = Some((b, Outcome::HitRemote { fallback }));
                            }
                            Ok(None) => {}
                            Err(e) => st.s3_errors.push(format!("GET {object}: {e}")),
                        }
                    }
                    let remote = archive.is_some();
                    if archive.is_none() {
                        let path = format!("{VOLUME_MOUNT}/{}", self.local_archive(key));
                        match docker.download(name, &path).await {
                            Ok(Some(tar)) => match archive::tar_single_file(&tar) {
                                Ok(Some(zip)) => {
                                    archive = Some((zip.into(), Outcome::HitLocal { fallback }))
                                }
                                Ok(None) => {}
                                Err(e) => {
                                    shared.stats().archive_errors.push(format!("{path}: {e}"))
                                }
                            },
                            Ok(None) => {}
                            Err(e) => shared.docker_error(format!("reading {path}: {e}")),
                        }
                    }
                    let Some((zip, outcome)) = archive else { continue };
                    match archive::zip_to_tar(&zip, &format!("{build}/")) {
                        Ok((tar, _)) => {
                            if let Err(e) = docker.upload(name, VOLUME_MOUNT, tar).await {
                                shared
                                    .docker_error(format!("extracting the cache into {name}: {e}"));
                                continue;
                            }
                            if remote {
                                // The downloaded archive stays on the machine, as GitLab keeps it.
                                if let Ok(t) =
                                    archive::single_file_tar(&self.local_archive(key), &zip)
                                    && let Err(e) = docker.upload(name, VOLUME_MOUNT, t).await
                                {
                                    shared.docker_error(format!("keeping the local archive: {e}"));
                                }
                            }
                            return Some((outcome, zip.len() as u64));
                        }
                        Err(e) => {
                            let mut st = shared.stats();
                            if matches!(e, ArchiveError::Unsafe { .. }) {
                                st.cache.refused += 1;
                            }
                            st.archive_errors
                                .push(format!("job {} key {key:?}: {e}", self.spec.id.0));
                        }
                    }
                }
                None
            })
            .await;
        let (outcome, bytes) = match found {
            Some((Some((o, n)), _)) => (o, n),
            _ => (Outcome::Miss(fleetsim_core::cache::MissReason::NeverUploaded), 0),
        };
        {
            let mut st = shared.stats();
            st.cache.restores += 1;
            match outcome {
                Outcome::HitRemote { .. } => st.cache.hits_remote += 1,
                Outcome::HitLocal { .. } => st.cache.hits_local += 1,
                _ => st.cache.misses += 1,
            }
        }
        let remote_bytes = if matches!(outcome, Outcome::HitRemote { .. }) { bytes } else { 0 };
        shared.job(self.spec.id, |j| {
            j.outcome = Some(outcome);
            j.bytes_down = remote_bytes;
        });
    }

    async fn script(&self, shared: &Shared) {
        let speed = shared.setup.speed;
        let live = shared.job_get(self.spec.id);
        // The core adds the miss penalty when *its* restore missed; live mode adds it when the
        // real restore missed, so the job's time follows what really happened.
        let script_ms = match live.outcome {
            Some(Outcome::Miss(_)) => self.spec.duration_ms + self.spec.work.cache_miss_penalty_ms,
            Some(_) => self.spec.duration_ms,
            None => self.duration_ms,
        };
        let sleep_s = script_ms as f64 / 1000.0 / speed;
        let mut script = String::new();
        let writes = self.cache.as_ref().is_some_and(|c| c.policy != Policy::Pull)
            && (self.spec.work.cache_changed
                || !matches!(
                    live.outcome,
                    Some(Outcome::HitLocal { .. } | Outcome::HitRemote { .. })
                ));
        if writes {
            let bytes =
                (self.spec.work.cache_size as f64 * shared.setup.cache_scale).round() as u64;
            let dir = format!("{VOLUME_MOUNT}/{}/cache", self.build_dir());
            script.push_str(&format!(
                "mkdir -p {dir} && head -c {bytes} /dev/urandom > {dir}/cache.bin && "
            ));
        }
        script.push_str(&format!("sleep {sleep_s:.3}"));
        let t = Stopwatch::start();
        let exit = self.helper(shared, "script", &script, async |_: &str| ()).await;
        let wall_us = t.micros();
        match exit {
            Some(((), exit)) => {
                let mut st = shared.stats();
                st.script_run.record_us(exit.times.run_us);
                st.script_overhead.record_us(wall_us.saturating_sub((sleep_s * 1e6) as u64));
                if !exit.ok() {
                    st.docker_errors.push(format!(
                        "job {}: script container ended with {}",
                        self.spec.id.0,
                        exit.code
                            .map_or("no exit code (removed from outside)".to_owned(), |c| format!(
                                "exit code {c}"
                            ))
                    ));
                    drop(st);
                    shared.job(self.spec.id, |j| j.failed = true);
                } else {
                    drop(st);
                    shared.job(self.spec.id, |j| j.wrote_cache = writes);
                }
            }
            None => shared.job(self.spec.id, |j| j.failed = true),
        }
    }

    async fn save(&self, shared: &Shared) {
        let Some(cache) = &self.cache else { return };
        let live = shared.job_get(self.spec.id);
        // `cache:when` with the script's real outcome (the core chose from the trace's): by
        // default (`on_success`) a failed job uploads nothing.
        let failed = live.failed || self.spec.work.script_fails;
        if !self.spec.work.cache_when.saves(failed) {
            shared.stats().cache.saves_skipped_failed += 1;
            return;
        }
        let docker = &shared.setup.docker;
        let key = cache.keys[0].clone();
        let build = self.build_dir();
        let script = format!("rm -rf {VOLUME_MOUNT}/{build}");
        let saved = self
            .helper(shared, "save", &script, async |name: &str| {
                let path = format!("{VOLUME_MOUNT}/{build}/cache");
                let tar = match docker.download(name, &path).await {
                    Ok(Some(t)) => t,
                    // "No files to cache": nothing to archive.
                    Ok(None) => return None,
                    Err(e) => {
                        shared.docker_error(format!("reading {path}: {e}"));
                        return None;
                    }
                };
                let zip = match archive::tar_to_zip(&tar) {
                    Ok((z, _)) => z,
                    Err(e) => {
                        shared.stats().archive_errors.push(format!("archiving {path}: {e}"));
                        return None;
                    }
                };
                match archive::single_file_tar(&self.local_archive(&key), &zip) {
                    Ok(t) => {
                        if let Err(e) = docker.upload(name, VOLUME_MOUNT, t).await {
                            shared.docker_error(format!("writing the local archive: {e}"));
                        }
                    }
                    Err(e) => shared.stats().archive_errors.push(e.to_string()),
                }
                let mut up = 0;
                if let Some((s3, object)) = self.object(shared, &key) {
                    let n = zip.len() as u64;
                    let t = Stopwatch::start();
                    let r = s3.put(&object, Bytes::from(zip)).await;
                    let us = t.micros();
                    let mut st = shared.stats();
                    st.cache.put_requests += 1;
                    st.s3_put.record_us(us);
                    match r {
                        Ok(()) => {
                            st.s3_up_bytes_us.0 += n;
                            st.s3_up_bytes_us.1 += us;
                            st.cache.bytes_up += n;
                            up = n;
                        }
                        Err(e) => st.s3_errors.push(format!("PUT {object}: {e}")),
                    }
                }
                Some(up)
            })
            .await;
        if let Some((Some(up), _)) = saved {
            shared.stats().cache.saves += 1;
            shared.job(self.spec.id, |j| j.bytes_up = up);
        }
    }
}
