//! Jobs as the core receives them, the inputs and commands of [`crate::Fleet::handle`], and
//! the record of a finished job.

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
    /// How often GitLab retries the job after a runner or machine failure (`retry`).
    pub retry: u32,
}

/// Where a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On a runner process's own host (docker executor).
    Host(HostId),
    /// On an autoscaled machine.
    Machine(MachineId),
}

/// A part of a job's execution that a driver carries out and reports back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The job's script (and, for now, everything around it: see the README's model notes).
    Script,
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
    /// Run `step` of `job` on `host`; report [`Input::StepDone`] when it ends. The sim
    /// driver ends it after `duration_ms`; the live driver runs a container for that long.
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
    /// Whether it failed (its machine was lost, or no machine could be created).
    pub failed: bool,
    /// When the job was created in GitLab.
    pub created: SimTime,
    /// When it became pending (equal to `created` until pipelines are modelled).
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
    /// The rest of the pending time: capacity was free, the runner had not polled yet.
    pub wait_poll_ms: u64,
}

impl JobRecord {
    /// Pending time: from queued to started (GitLab's `queued_duration`).
    pub fn pending_ms(&self) -> u64 {
        self.started - self.queued
    }
}
