//! Jobs as the core receives them, the inputs and commands of [`crate::Fleet::handle`], and
//! the record of a finished job.

use crate::ids::{HostId, JobId, JobKey, ProjectId, RunnerId, TagSetId};
use crate::time::SimTime;

/// A job as the trace describes it, handed to the core when it becomes pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// GitLab's job id (queue order among equals).
    pub id: JobId,
    /// The project (fair-usage order, project-runner scope).
    pub project: ProjectId,
    /// The job's tags, interned with [`crate::Fleet::intern_tags`].
    pub tags: TagSetId,
    /// Script time with warm caches, in ms.
    pub duration_ms: u64,
}

/// A part of a job's execution that a driver carries out and reports back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The job's script (and, for now, everything around it: see the README's model notes).
    Script,
}

/// Something that happened, handed to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A job became pending in GitLab.
    JobCreated(JobSpec),
    /// A step the core started with [`Command::StartStep`] finished.
    StepDone {
        /// The job.
        job: JobKey,
        /// The step that finished.
        step: Step,
    },
    /// The instant the core asked for with [`crate::Fleet::next_wakeup`] has come.
    Wakeup,
}

/// Something the core wants done (or reported).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run `step` of `job` on `host`; report [`Input::StepDone`] when it ends. The sim
    /// driver ends it after `duration_ms`; the live driver runs a container for that long.
    StartStep {
        /// The job.
        job: JobKey,
        /// Where it runs (the runner's host, for the docker executor).
        host: HostId,
        /// Which step.
        step: Step,
        /// How long the step takes without contention, in ms.
        duration_ms: u64,
    },
    /// A job ended; write it down.
    JobFinished(JobRecord),
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
    /// When the job was created in GitLab.
    pub created: SimTime,
    /// When it became pending (equal to `created` until pipelines are modelled).
    pub queued: SimTime,
    /// When a runner got it: GitLab's `started_at`, the job turns `running`.
    pub started: SimTime,
    /// When its script started (after preparation; what a developer feels).
    pub script_started: SimTime,
    /// When it finished.
    pub finished: SimTime,
    /// The part of the pending time spent with no free worker or `limit` slot for it.
    pub wait_capacity_ms: u64,
    /// The rest of the pending time: capacity was free, the runner had not polled yet.
    pub wait_poll_ms: u64,
}

impl JobRecord {
    /// Pending time: from queued to started (GitLab's `queued_duration`).
    pub fn pending_ms(&self) -> u64 {
        self.started - self.queued
    }
}
