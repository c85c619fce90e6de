//! # fleetsim-core — the model of a GitLab CI runner fleet, without I/O
//!
//! The core does no I/O and reads no clock: time is an argument ([`SimTime`], integer
//! milliseconds), and every effect is a [`Command`] returned to a driver, whose results come
//! back later as an [`Input`]. The simulator (`fleetsim`) and the live driver run the very
//! same [`Fleet`].
//!
//! ```text
//!   driver ──Input (JobCreated, StepDone, Wakeup)──► Fleet::handle(now, input, &mut out)
//!     ▲                                                   │
//!     └──────── Command (StartStep, JobFinished) ◄────────┘
//!   driver asks Fleet::next_wakeup() for the next instant the core must act by itself
//! ```
//!
//! Modules:
//! - [`time`], [`ids`] — `SimTime` and newtype ids.
//! - [`spec`] — the validated fleet description (processes, `[[runners]]`, GitLab side).
//! - [`job`] — job specs, inputs, commands and finished-job records.
//! - [`tags`] — interned tag sets.
//! - [`queue`] — GitLab's pending queue: tag matching, fair-usage and FIFO order.
//! - [`runner_process`] — one runner process: feeder and `concurrent` workers.
//! - [`adaptive`] — adaptive request concurrency (AIMD).
//! - [`cache`] — machine-local and distributed caches, and image pulls.
//! - [`containers`] — the docker executor's containers and stages, and what they cost.
//! - [`docker_machine`] — the docker+machine autoscaler: machine states, `Acquire`, idle formula.
//! - [`taskscaler`] — the docker-autoscaler executor's instances, slots and scaling rule.
//! - [`periods`] — which autoscaling period is active (implemented by the driver).
//! - [`fleet`] — [`Fleet`]: all of the above behind `handle` and `next_wakeup`.
//! - [`pipelines`] — GitLab's pipelines: stages, `needs`, release and skip on failure.
//! - [`drive`] — the driver contract: job source, port, observer, and the one input handler
//!   both drivers call.
//!
//! References to §n are to `reference/gitlab-runner-semantics.md`, which the model follows.

pub mod adaptive;
pub mod cache;
pub mod containers;
pub mod docker_machine;
pub mod drive;
pub mod fleet;
pub mod ids;
pub mod job;
pub mod periods;
pub mod pipelines;
pub mod queue;
pub mod runner_process;
mod slot_trees;
pub mod spec;
pub mod tags;
pub mod taskscaler;
pub mod time;

pub use fleet::{Fleet, Unservable};
pub use ids::{HostId, JobId, JobKey, MachineId, ProjectId, RunnerId, TagSetId};
pub use job::{
    Command, Input, JobRecord, JobSpec, JobWork, MachineLife, Placement, Step, StepWork,
};
pub use spec::{ExecutorKind, FleetSpec, Pickup, ProcessSpec, RunnerScope, RunnerSpec};
pub use time::SimTime;
