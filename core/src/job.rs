//! Jobs as the core receives them, the inputs and commands of [`crate::Fleet::handle`], and
//! the record of a finished job.

use std::sync::Arc;

use crate::cache::{CacheDecl, CacheUseId, ImageId, Outcome};
use crate::docker_machine::RemovalReason;
use crate::ids::{HostId, JobId, JobKey, MachineId, ProjectId, RunnerId, TagSetId};
use crate::time::SimTime;

/// A job as the trace describes it, handed to the core when it becomes pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSpec {
    /// GitLab's job id (queue order among equals).
    pub id: JobId,
    /// The project (fair-usage order, project-runner scope).
    pub project: ProjectId,
    /// The job's tags, interned with [`crate::Fleet::intern_tags`].
    pub tags: TagSetId,
    /// Script time with warm caches, in ms.
    pub duration_ms: u64,
    /// How often GitLab retries the job after a failure (`retry`): of its machine, of its
    /// Prepare, or of its script.
    pub retry: u32,
    /// Its image and cache.
    pub work: JobWork,
}

/// What a job needs besides its script's time: an image, a cache, and whether the script
/// fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobWork {
    /// Its cache declaration (interned with [`crate::Fleet::declare_cache`]).
    pub cache: Option<CacheUseId>,
    /// Size of its cache archive, in bytes.
    pub cache_size: u64,
    /// Whether the job changes the cached files (if not, and a local archive exists, the
    /// upload is skipped).
    pub cache_changed: bool,
    /// Extra script time when the cache misses (fetching dependencies), in ms.
    pub cache_miss_penalty_ms: u64,
    /// Its image (interned with [`crate::Fleet::intern_image`]).
    pub image: Option<ImageId>,
    /// Size of the image, in bytes.
    pub image_size: u64,
    /// `cache:when`: whether the cache is saved after a successful or a failed script.
    pub cache_when: crate::cache::When,
    /// Whether the script fails (exits non-zero): the job ends failed after its script and
    /// its save (if `cache_when` allows one), and is retried up to `retry` times.
    pub script_fails: bool,
}

/// Where a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// On a runner process's own host (docker executor).
    Host(HostId),
    /// On an autoscaled machine.
    Machine(MachineId),
}

/// A part of a job's execution that a driver carries out and reports back, in order (the
/// docker executor's stages and containers: see [`crate::containers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The executor's Prepare: the job's image checked or pulled, its volumes created.
    Pull,
    /// The helper container created; `prepare_script` and `get_sources` run on it.
    Sources,
    /// Restoring its cache (`restore_cache`, on the helper).
    Restore,
    /// The build container created; the job's script (`step_script`) runs on it.
    Script,
    /// Saving its cache (`archive_cache`, on the helper, after `after_script`).
    Save,
    /// `cleanup_file_variables` on the helper, then the job's containers removed (the
    /// executor's `Cleanup`, before the job's status goes to GitLab).
    Cleanup,
}

/// Something that happened, handed to the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A job became pending in GitLab.
    JobCreated(JobSpec),
    /// A step the core started with [`Command::StartStep`] finished.
    StepDone {
        /// The job.
        job: JobKey,
        /// The step that finished.
        step: Step,
        /// The token of the [`Command::StartStep`] it completes. A completion whose token is
        /// stale (the job failed meanwhile, its machine was lost) is ignored.
        token: u64,
    },
    /// The instant the core asked for with [`crate::Fleet::next_wakeup`] has come.
    Wakeup,
    /// A machine the core asked for is ready.
    MachineReady {
        /// The machine.
        machine: MachineId,
    },
    /// Creating a machine failed.
    MachineFailed {
        /// The machine.
        machine: MachineId,
    },
    /// A machine's removal finished: it is gone.
    MachineRemoved {
        /// The machine.
        machine: MachineId,
    },
    /// The cloud took a machine (spot interruption, crash); a job on it fails.
    MachineLost {
        /// The machine.
        machine: MachineId,
    },
}

/// Something the core wants done (or reported).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run `step` of `job` on `on`; report [`Input::StepDone`] when it ends. The sim
    /// driver ends it after `duration_ms`; the live driver does the step for real, with what
    /// `work` says (it never reads the fleet).
    StartStep {
        /// The job.
        job: JobKey,
        /// Where it runs.
        on: Placement,
        /// Which step.
        step: Step,
        /// How long the step takes without contention, in ms.
        duration_ms: u64,
        /// Echo it in [`Input::StepDone`].
        token: u64,
        /// What the step works on.
        work: StepWork,
    },
    /// A job ended (finished or failed); write it down.
    JobFinished(JobRecord),
    /// Create a machine for `runner`; report [`Input::MachineReady`] or
    /// [`Input::MachineFailed`].
    CreateMachine {
        /// The new machine's id.
        machine: MachineId,
        /// The `[[runners]]` entry it belongs to (its machine options).
        runner: RunnerId,
    },
    /// Remove a machine; report [`Input::MachineRemoved`] when it is gone.
    RemoveMachine {
        /// The machine.
        machine: MachineId,
        /// Why.
        reason: RemovalReason,
    },
}

/// What a step works on, carried in [`Command::StartStep`] so that a port can do the step
/// without reading the fleet's state.
#[derive(Debug, Clone, PartialEq)]
pub struct StepWork {
    /// The job: its id and project (object names), script time, cache size and whether the
    /// script changes the cache, the miss penalty, the image, and `cache:when` (whether a
    /// save is allowed after a failed or a successful script).
    pub spec: JobSpec,
    /// The `[[runners]]` entry running it (its S3 settings, its token).
    pub runner: RunnerId,
    /// Where its cache lives: the docker executor's volume (host, runner, project and
    /// `ProjectRunnerID`) or the autoscaled machine.
    pub place: crate::cache::Place,
    /// On a restore, a script or a save: the job's cache declaration, its key names in the
    /// order the runner tries them (the script writes the cached files). `None` on a pull and
    /// for jobs without a cache.
    pub cache: Option<Arc<CacheDecl>>,
}

/// Everything the reports need about one finished job. Times are instants of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobRecord {
    /// GitLab's job id.
    pub id: JobId,
    /// The project.
    pub project: ProjectId,
    /// The `[[runners]]` entry that ran it.
    pub runner: RunnerId,
    /// The runner process (host) that ran it.
    pub host: HostId,
    /// The autoscaled machine it ran on, if any.
    pub machine: Option<MachineId>,
    /// 1 for the first run, 2 for the first retry, …
    pub attempt: u32,
    /// Whether it failed: its script failed (`status = failed` in the trace), its machine was
    /// lost, no machine could be created, or no instance slot came in time.
    pub failed: bool,
    /// When the job was created in GitLab. The core sets it to the instant it was handed the
    /// job; a driver that models pipelines (the simulator's trace source) sets it to the
    /// pipeline's creation before reporting the record.
    pub created: SimTime,
    /// When it became pending: handed to the core (its pipeline predecessors, if any, had
    /// finished).
    pub queued: SimTime,
    /// When a runner got it: GitLab's `started_at`, the job turns `running`.
    pub started: SimTime,
    /// When its script started (after its machine was ready; what a developer feels).
    /// Equal to `finished` for a job that failed before its script started.
    pub script_started: SimTime,
    /// When it finished.
    pub finished: SimTime,
    /// The part of the pending time spent with no free worker or `limit` slot for it.
    pub wait_capacity_ms: u64,
    /// The part spent with a slot free but no idle machine (docker+machine with
    /// `IdleCount > 0` does not even ask GitLab then).
    pub wait_machine_ms: u64,
    /// What the cache restore found.
    pub cache: Outcome,
    /// Time pulling the image.
    pub pull_ms: u64,
    /// Time creating the helper container and running `prepare_script` and `get_sources`.
    pub sources_ms: u64,
    /// Time restoring the cache.
    pub restore_ms: u64,
    /// Time saving the cache.
    pub save_ms: u64,
    /// Cache bytes downloaded.
    pub bytes_down: u64,
    /// Cache bytes uploaded.
    pub bytes_up: u64,
    /// The rest of the pending time: capacity was free, the runner had not polled yet.
    pub wait_poll_ms: u64,
}

/// One autoscaled machine's life, in run time: what the ledger bills and `machines.csv`
/// reports, the same whether the machine was simulated or real.
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
    /// When it was gone.
    pub removed: Option<SimTime>,
    /// Why it was removed (GitLab Runner's wording; empty if it was not).
    pub reason: &'static str,
    /// Jobs whose script ran on it.
    pub jobs: u32,
    /// Slot-time running jobs ([`JobRecord::machine_busy_ms`] summed), ms.
    pub busy_ms: u64,
}

impl JobRecord {
    /// How long the job kept its machine busy: from its first step (the image pull) to its
    /// end. The one rule for billing a machine's busy share, simulated or live.
    pub fn machine_busy_ms(&self) -> u64 {
        self.finished - self.script_started + self.pull_ms + self.sources_ms + self.restore_ms
    }
}

impl JobRecord {
    /// Pending time: from queued to started (GitLab's `queued_duration`).
    pub fn pending_ms(&self) -> u64 {
        self.started - self.queued
    }
}
