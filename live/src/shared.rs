//! The state the live driver's loop shares with its step and machine tasks: the run's
//! settings and clock, what was measured, what each running job really did, each machine's life.

use std::collections::BTreeMap;
use std::sync::Mutex;

use fleetsim_core::cache::{Outcome, Place};
use fleetsim_core::{JobId, MachineId};

use crate::clock::LiveClock;
use crate::driver::{LiveSetup, MachineLife};
use crate::report::LiveStats;

/// What the driver knows of a running job beyond the core.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JobLive {
    pub(crate) outcome: Option<Outcome>,
    pub(crate) failed: bool,
    pub(crate) bytes_down: u64,
    pub(crate) bytes_up: u64,
    pub(crate) pull_ms: u64,
    pub(crate) sources_ms: u64,
    pub(crate) restore_ms: u64,
    pub(crate) save_ms: u64,
    /// The script rewrote the cache files (a miss, or the job changes them).
    pub(crate) wrote_cache: bool,
    /// The token of the attempt's `Sources` step, which names its containers.
    pub(crate) containers: Option<u64>,
}

/// State the tasks share with the loop.
pub(crate) struct Shared {
    pub(crate) setup: LiveSetup,
    pub(crate) clock: LiveClock,
    pub(crate) stats: Mutex<LiveStats>,
    pub(crate) jobs: Mutex<BTreeMap<JobId, JobLive>>,
    pub(crate) machines: Mutex<BTreeMap<MachineId, MachineLife>>,
    /// The modification time of each local cache archive (volume, path in it), as the
    /// runner's file system would keep it: when a save wrote it, or the object's
    /// `Last-Modified` when a restore downloaded it.
    pub(crate) local_archives: Mutex<BTreeMap<(String, String), std::time::SystemTime>>,
}

impl Shared {
    pub(crate) fn stats(&self) -> std::sync::MutexGuard<'_, LiveStats> {
        self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub(crate) fn job(&self, id: JobId, f: impl FnOnce(&mut JobLive)) {
        let mut jobs = self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(jobs.entry(id).or_default());
    }
    pub(crate) fn job_get(&self, id: JobId) -> JobLive {
        let jobs = self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        jobs.get(&id).copied().unwrap_or_default()
    }
    /// The recorded modification time of a local archive.
    pub(crate) fn local_archive_time(
        &self,
        volume: &str,
        path: &str,
    ) -> Option<std::time::SystemTime> {
        let a = self.local_archives.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        a.get(&(volume.to_owned(), path.to_owned())).copied()
    }
    /// Records a local archive's modification time.
    pub(crate) fn set_local_archive_time(
        &self,
        volume: &str,
        path: &str,
        t: std::time::SystemTime,
    ) {
        let mut a = self.local_archives.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        a.insert((volume.to_owned(), path.to_owned()), t);
    }
    pub(crate) fn machine(&self, m: MachineId, f: impl FnOnce(&mut MachineLife)) {
        let mut ms = self.machines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(life) = ms.get_mut(&m) {
            f(life);
        }
    }
    pub(crate) fn docker_error(&self, what: String) {
        self.stats().docker_errors.push(what);
    }
    /// The Docker volume of a machine.
    pub(crate) fn machine_volume(&self, m: MachineId) -> String {
        crate::driver::machine_volume(&self.setup.run_id, m)
    }
    /// The Docker volume holding a cache place: an autoscaled machine's volume, or the docker
    /// executor's cache volume of (host, runner, project, `ProjectRunnerID`) — GitLab Runner
    /// names it after `ProjectRealUniqueName()` (`executors/docker/volume.go`), so a project's
    /// jobs that run one at a time share one volume whichever worker runs them.
    pub(crate) fn cache_volume(&self, place: Place) -> String {
        let run = &self.setup.run_id;
        match place {
            Place::Volume { host, runner, project, index } => {
                format!("fleetsim-{run}-h{host}-r{runner}-p{}-c{index}", project.0)
            }
            Place::Machine(m) => self.machine_volume(m),
            Place::Host(h) => format!("fleetsim-{run}-host{h}"),
        }
    }
}
