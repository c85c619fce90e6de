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
//!
//! Files: this one holds the setup types and the loop; [`crate::port`] carries out the
//! commands, [`crate::steps`] does a step for real, [`crate::shared`] is the state the loop and
//! the tasks share.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use fleetsim_core::drive::{Drive, JobSource, Observer};
use fleetsim_core::{Fleet, Input, MachineId, RunnerId, SimTime};
use tokio::task::JoinSet;

use crate::LiveError;
use crate::clock::{LiveClock, Stopwatch};
use crate::docker::{self, DockerPort, Swept};
use crate::port::LivePort;
use crate::report::LiveStats;
use crate::s3::S3Port;
use crate::shared::Shared;

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

pub use fleetsim_core::MachineLife;

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
        local_archives: Mutex::new(BTreeMap::new()),
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
    // Every container step is carried out, also those the model gives no time.
    fleet.emit_every_step();
    tokio::pin!(cancel);
    let clock = shared.clock;
    let mut drive = Drive::new();
    let input_error = |e: S::Error| LiveError::Input(e.to_string());
    let mut next_arrival = drive.next_job(fleet, source).map_err(input_error)?;
    let mut last = SimTime::ZERO;
    let mut jobs = 0u64;
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
        // Each input at its own instant (never before the previous one), the core's wakeups
        // due before it first, then the wakeups due by now.
        let until = clock.now();
        jobs += drive.handle_stamped(fleet, inputs, until, &mut last, &mut port, observer).jobs;
    }
}
