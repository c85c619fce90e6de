//! The docker executor's containers: what each step of a job costs besides its script and its
//! transfers, as GitLab Runner 19.4 runs a job.
//!
//! `common/build.go` `(*Build).executeScript` runs the job as build stages, in order:
//! `prepare_script`, `get_sources`, `restore_cache`, `download_artifacts`, `step_script`,
//! `after_script`, `archive_cache` (or `archive_cache_on_failure`), `upload_artifacts_*`,
//! `cleanup_file_variables`. `getPredefinedEnv` sends every stage but the user's scripts to the
//! *predefined* (helper) container, the scripts to the *build* container.
//! `executors/docker/docker_command.go` `requestHelperContainer` / `requestBuildContainer`
//! create each container once per job (`createContainer`: `ContainerCreate` and an inspect)
//! and reuse it; every stage is one `startAndWatchContainer` (attach, start, the script on
//! stdin, wait for the exit). `executors/docker/docker.go` `(*executor).Cleanup` removes the
//! job's containers (in parallel) before the job's final status goes to GitLab (`Build.Run`
//! defers `executor.Cleanup()` after `setTraceStatus`, so it runs first).
//!
//! A stage whose script generator has nothing to do (`common.ErrSkipBuildStage`) does not
//! start a container: `restore_cache` is skipped when the job declares no cache
//! (`AbstractShell.cacheExtractor`), `archive_cache` when no cache's `when` matches the
//! outcome (`archiveCache`), `download_artifacts`, `after_script` and `upload_artifacts_*`
//! when the job has no artifacts or `after_script` (fleetsim models neither).
//!
//! So a job with a cache runs two containers and six stages:
//! ```text
//!  Pull     images checked or pulled, volumes created       (executor Prepare)
//!  Sources  create helper + prepare_script + get_sources    create + 2 × stage
//!  Restore  restore_cache on the helper                     stage + transfer
//!  Script   create build + step_script                      create + stage + script
//!  Save     archive_cache on the helper                     stage + transfer
//!  Cleanup  cleanup_file_variables + remove both            stage + remove
//! ```
//!
//! ## The engine is shared
//! Every container operation of a host goes through one Docker engine (dockerd, containerd and
//! runc on the host's cores), so an operation takes longer while others run beside it; a
//! container sleeping in its script costs nothing. Measured with `sim live calibrate` on the
//! project's 2-core machine: a stage took 138 ms alone, 204 ms with one other beside it and
//! 365 ms with three (and archive copies, creates and removals likewise). The model charges an
//! operation its cost alone times `1 + contention × others`, where `others` is the number of
//! other jobs' container work in progress on the same engine when the operation's step starts
//! (its setup, restore, save or cleanup step, or the container start of its script), fitted by
//! the calibration from probes at one, two and four lanes. This is the engine's physics, not
//! GitLab Runner's logic: an assumption listed in the README.

/// `ms` slowed down to `permille` ‰ (1000: unchanged), rounded to the nearest ms.
pub fn slowed(ms: u64, permille: u32) -> u64 {
    (ms * u64::from(permille) + 500) / 1000
}

/// What the Docker engine takes for one container operation, in ms of run time. Measured by
/// `sim live calibrate`; all zero (the default) leaves the container steps out of the model,
/// as fleetsim did before it modelled them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContainerCosts {
    /// `createContainer`: `ContainerCreate` plus the inspect that follows it.
    pub create_ms: u64,
    /// One stage on an existing container with an empty script: attach, start, the script on
    /// stdin, wait for the exit (`startAndWatchContainer`).
    pub stage_ms: u64,
    /// `Cleanup`: removing the job's containers (in parallel, so one removal's time).
    pub remove_ms: u64,
    /// How much longer an engine operation takes per other job's container work in progress
    /// on the same engine, in ‰ of its cost alone (0: the costs as given, whatever the
    /// overlap; see the module's "The engine is shared").
    pub contention_permille: u32,
    /// Whether every container of the run goes to one engine (live mode runs every
    /// autoscaled machine's containers on the one engine it was calibrated against), rather
    /// than one engine per host or machine (a real fleet).
    pub shared_engine: bool,
}

impl ContainerCosts {
    /// Whether the model has container costs at all.
    pub fn is_zero(&self) -> bool {
        *self == ContainerCosts::default()
    }

    /// `Sources`: the helper container created, then `prepare_script` and `get_sources` run
    /// on it (fleetsim does not model a clone's own time).
    pub fn sources_ms(&self) -> u64 {
        self.create_ms + 2 * self.stage_ms
    }

    /// `Script`'s overhead: the build container created, then `step_script` started on it.
    pub fn script_ms(&self) -> u64 {
        self.create_ms + self.stage_ms
    }

    /// `Restore` or `Save`'s overhead: one stage on the helper (the transfer is the cache
    /// model's).
    pub fn cache_stage_ms(&self) -> u64 {
        self.stage_ms
    }

    /// `Cleanup`: `cleanup_file_variables` on the helper, then the containers removed.
    pub fn cleanup_ms(&self) -> u64 {
        self.stage_ms + self.remove_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_with_a_cache_runs_six_stages_on_two_containers() {
        // executors/docker/docker_command.go: one helper and one build container per job;
        // common/build.go: prepare_script, get_sources, restore_cache, step_script,
        // archive_cache, cleanup_file_variables.
        let c = ContainerCosts { create_ms: 10, stage_ms: 100, remove_ms: 1, ..Default::default() };
        let total = c.sources_ms() + 2 * c.cache_stage_ms() + c.script_ms() + c.cleanup_ms();
        assert_eq!(total, 2 * 10 + 6 * 100 + 1);
        assert!(ContainerCosts::default().is_zero() && !c.is_zero());
    }

    #[test]
    fn a_slowdown_rounds_to_the_nearest_ms() {
        assert_eq!(slowed(138, 1000), 138);
        assert_eq!(slowed(138, 1480), 204);
        assert_eq!(slowed(3, 1500), 5, "4.5 rounds up");
        assert_eq!(slowed(0, 9000), 0);
    }
}
