//! Newtype identifiers, so a job id is never mistaken for a runner index.

use std::fmt;

/// A job's id as GitLab (or the trace) numbers it. Queue order among equals is by this id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

/// A GitLab project id. Fair-usage ordering counts running jobs per project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProjectId(pub u64);

/// A `[[runners]]` entry of a runner process, numbered across all processes of the fleet in
/// the order the processes and their entries are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunnerId(pub u16);

/// One GitLab Runner process (one `config.toml` on one host). With the docker executor its
/// jobs run on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub u16);

/// A machine created by an autoscaling executor, numbered in creation order (GitLab Runner
/// names machines `runner-<token>-<unix time>-<random>`, so name order is creation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineId(pub u32);

/// The core's handle on a job it holds (pending or running). Commands and step completions
/// carry it; it is reused after the job ends, so it is only meaningful while the job lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobKey(pub u32);

/// An interned set of job or runner tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagSetId(pub u32);

impl TagSetId {
    /// The empty tag set: an untagged job.
    pub const UNTAGGED: TagSetId = TagSetId(0);
}

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    )*};
}
display_inner!(JobId, ProjectId, RunnerId, HostId, MachineId);
