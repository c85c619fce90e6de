//! One step of a job done for real, as GitLab Runner's docker executor does it: the image
//! checked, the cache restored (the object, else the local archive, else the next key), the
//! script run in a container that writes the cache files, the cache archived, kept in the
//! volume and uploaded. What really happened goes into the shared job state.

use std::sync::Arc;

use bytes::Bytes;
use fleetsim_core::cache::{CacheDecl, Outcome, Place, Policy};
use fleetsim_core::{Input, JobKey, JobSpec, RunnerId, Step};

use crate::archive::{self, ArchiveError};
use crate::clock::Stopwatch;
use crate::docker::{Exit, VOLUME_MOUNT};
use crate::s3::{Fetched, S3Port, object_name};
use crate::shared::Shared;

/// One step to carry out.
#[derive(Debug, Clone)]
pub(crate) struct StepTask {
    pub(crate) key: JobKey,
    pub(crate) step: Step,
    pub(crate) token: u64,
    pub(crate) duration_ms: u64,
    pub(crate) spec: JobSpec,
    pub(crate) runner: RunnerId,
    pub(crate) place: Place,
    pub(crate) cache: Option<Arc<CacheDecl>>,
}

/// The job's two containers (`executors/docker/docker_command.go`): the predefined (helper)
/// one for every stage but the script, the build one for the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Helper,
    Build,
}

impl StepTask {
    /// A container of this job attempt, named after the attempt's `Sources` step (its token).
    fn container(&self, shared: &Shared, which: Container) -> Option<String> {
        let attempt = shared.job_get(self.spec.id).containers?;
        let what = match which {
            Container::Helper => "predefined",
            Container::Build => "build",
        };
        Some(format!("fleetsim-{}-j{}-{attempt}-{what}", shared.setup.run_id, self.spec.id.0))
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

    /// Does the step for real; returns its completion.
    pub(crate) async fn run(self, shared: &Shared) -> Input {
        let t = Stopwatch::start();
        match self.step {
            Step::Pull => {
                self.prepare(shared).await;
                shared.stats().pull.record_us(t.micros());
                let ms = shared.clock.run_ms(t.elapsed());
                shared.job(self.spec.id, |j| j.pull_ms = ms);
            }
            Step::Sources => {
                self.sources(shared).await;
                shared.stats().sources.record_us(t.micros());
                let ms = shared.clock.run_ms(t.elapsed());
                shared.job(self.spec.id, |j| j.sources_ms = ms);
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
            Step::Cleanup => {
                self.cleanup(shared).await;
                shared.stats().cleanup.record_us(t.micros());
            }
        }
        Input::StepDone { job: self.key, step: self.step, token: self.token }
    }

    /// The executor's Prepare: the image checked (live mode never pulls), the job's cache
    /// volume created (`volumes.Manager`; creating a volume that exists returns it).
    async fn prepare(&self, shared: &Shared) {
        let fail = |msg: String| {
            shared.docker_error(msg);
            shared.job(self.spec.id, |j| j.failed = true);
        };
        match shared.setup.docker.image_present().await {
            Ok(true) => {}
            Ok(false) => fail(format!("job {}: the image is not present", self.spec.id.0)),
            Err(e) => fail(format!("job {}: inspecting the image: {e}", self.spec.id.0)),
        }
        if let Place::Volume { .. } = self.place {
            let volume = shared.cache_volume(self.place);
            if let Err(e) = shared.setup.docker.create_volume(&volume).await {
                fail(format!("job {}: creating volume {volume}: {e}", self.spec.id.0));
            }
        }
    }

    /// Creates one of the job's containers on its cache volume.
    async fn create(&self, shared: &Shared, which: Container) -> Option<String> {
        let name = self.container(shared, which)?;
        let volume = shared.cache_volume(self.place);
        match shared.setup.docker.create_stage_container(&name, &volume).await {
            Ok(us) => {
                let mut st = shared.stats();
                st.containers += 1;
                st.container_create.record_us(us);
                Some(name)
            }
            Err(e) => {
                shared.docker_error(format!("creating container {name}: {e}"));
                shared.job(self.spec.id, |j| j.failed = true);
                None
            }
        }
    }

    /// Runs one stage (`startAndWatchContainer`) on a container of the job; `None` when the
    /// container is missing or the engine failed (recorded).
    async fn stage(&self, shared: &Shared, which: Container, script: &str) -> Option<Exit> {
        let name = self.container(shared, which)?;
        let t = Stopwatch::start();
        match shared.setup.docker.run_stage(&name, script).await {
            Ok(exit) => {
                let mut st = shared.stats();
                st.container_start.record_us(exit.times.start_us);
                st.stage.record_us(t.micros());
                st.stages += 1;
                Some(exit)
            }
            Err(e) => {
                shared.docker_error(format!("job {}: stage on {name}: {e}", self.spec.id.0));
                shared.job(self.spec.id, |j| j.failed = true);
                None
            }
        }
    }

    /// `Sources`: the helper container created, then `prepare_script` and `get_sources` run
    /// on it (the sources here: the build directory made; live mode clones nothing).
    async fn sources(&self, shared: &Shared) {
        shared.job(self.spec.id, |j| j.containers = Some(self.token));
        if self.create(shared, Container::Helper).await.is_none() {
            return;
        }
        let build = self.build_dir();
        self.stage(shared, Container::Helper, "true").await;
        self.stage(shared, Container::Helper, &format!("mkdir -p {VOLUME_MOUNT}/{build}")).await;
    }

    /// `Cleanup`: `cleanup_file_variables` on the helper, then both containers removed, in
    /// parallel, as the executor's `Cleanup` does.
    async fn cleanup(&self, shared: &Shared) {
        let build = self.build_dir();
        self.stage(shared, Container::Helper, &format!("rm -rf {VOLUME_MOUNT}/{build}")).await;
        let docker = &shared.setup.docker;
        let t = Stopwatch::start();
        let (helper, build) =
            (self.container(shared, Container::Helper), self.container(shared, Container::Build));
        let remove = async |name: Option<String>| {
            if let Some(n) = name {
                docker.remove(&n).await;
            }
        };
        tokio::join!(remove(helper), remove(build));
        shared.stats().container_remove.record_us(t.micros());
    }

    /// `restore_cache` on the helper: the archive found is extracted into the build
    /// directory (through Docker's archive API, before the stage starts), then the stage
    /// runs. A `push`-only cache runs the stage and downloads nothing ("Not downloading cache
    /// due to policy", `AbstractShell.cacheExtractor`).
    async fn restore(&self, shared: &Shared) {
        let Some(cache) = &self.cache else { return };
        let build = self.build_dir();
        let script = format!("test -d {VOLUME_MOUNT}/{build} || true");
        let helper = self.container(shared, Container::Helper);
        if cache.policy == Policy::Push {
            self.stage(shared, Container::Helper, &script).await;
            return;
        }
        let docker = &shared.setup.docker;
        let volume = shared.cache_volume(self.place);
        let fetch = async |name: &str| {
            for (i, key) in cache.keys.iter().enumerate() {
                let fallback = i as u8;
                // GitLab's extractor: the object when it exists and is newer than the local
                // archive (whose modification time becomes the object's), else the local
                // archive of the same key, else the next key.
                let mut archive: Option<(Bytes, Outcome)> = None;
                let mut remote = None;
                if let Some((s3, object)) = self.object(shared, key) {
                    let local = shared.local_archive_time(&volume, &self.local_archive(key));
                    let t = Stopwatch::start();
                    let got = s3.get_unless_up_to_date(&object, local).await;
                    let us = t.micros();
                    let mut st = shared.stats();
                    st.cache.get_requests += 1;
                    st.s3_get.record_us(us);
                    match got {
                        Ok(Fetched::Downloaded { bytes, modified }) => {
                            st.s3_down_bytes_us.0 += bytes.len() as u64;
                            st.s3_down_bytes_us.1 += us;
                            st.cache.bytes_down += bytes.len() as u64;
                            archive = Some((bytes, Outcome::HitRemote { fallback }));
                            remote = Some(modified);
                        }
                        Ok(Fetched::Missing | Fetched::UpToDate) => {}
                        Err(e) => st.s3_errors.push(format!("GET {object}: {e}")),
                    }
                }
                if archive.is_none() {
                    let path = format!("{VOLUME_MOUNT}/{}", self.local_archive(key));
                    match docker.download(name, &path).await {
                        Ok(Some(tar)) => match archive::tar_single_file(&tar) {
                            Ok(Some(zip)) => {
                                archive = Some((zip.into(), Outcome::HitLocal { fallback }))
                            }
                            Ok(None) => {}
                            Err(e) => shared.stats().archive_errors.push(format!("{path}: {e}")),
                        },
                        Ok(None) => {}
                        Err(e) => shared.docker_error(format!("reading {path}: {e}")),
                    }
                }
                let Some((zip, outcome)) = archive else { continue };
                match archive::zip_to_tar(&zip, &format!("{build}/")) {
                    Ok((tar, _)) => {
                        if let Err(e) = docker.upload(name, VOLUME_MOUNT, tar).await {
                            shared.docker_error(format!("extracting the cache into {name}: {e}"));
                            continue;
                        }
                        if let Some(modified) = remote {
                            // The downloaded archive stays on the machine, as GitLab keeps it,
                            // with the object's modification time.
                            let path = self.local_archive(key);
                            match archive::single_file_tar(&path, &zip) {
                                Ok(t) => match docker.upload(name, VOLUME_MOUNT, t).await {
                                    Ok(()) => {
                                        shared.set_local_archive_time(&volume, &path, modified)
                                    }
                                    Err(e) => shared
                                        .docker_error(format!("keeping the local archive: {e}")),
                                },
                                Err(e) => shared.stats().archive_errors.push(e.to_string()),
                            }
                        }
                        return Some((outcome, zip.len() as u64));
                    }
                    Err(e) => {
                        let mut st = shared.stats();
                        if matches!(e, ArchiveError::Unsafe { .. }) {
                            st.cache.refused += 1;
                        }
                        st.archive_errors.push(format!("job {} key {key:?}: {e}", self.spec.id.0));
                    }
                }
            }
            None
        };
        let found = match &helper {
            Some(name) => fetch(name).await,
            None => None,
        };
        self.stage(shared, Container::Helper, &script).await;
        let (outcome, bytes) = match found {
            Some((o, n)) => (o, n),
            None => (Outcome::Miss(fleetsim_core::cache::MissReason::NeverUploaded), 0),
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
        // `requestBuildContainer`, then `step_script` on it.
        let exit = match self.create(shared, Container::Build).await {
            Some(_) => self.stage(shared, Container::Build, &script).await,
            None => None,
        };
        let wall_us = t.micros();
        match exit {
            Some(exit) => {
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
        // `archive_cache` on the helper; the archive is then read from the stopped container.
        self.stage(shared, Container::Helper, &format!("test -d {VOLUME_MOUNT}/{build}")).await;
        let Some(helper) = self.container(shared, Container::Helper) else { return };
        // GitLab Runner 19.4 `commands/helpers/cache_archiver.go` `Execute`: when no cached
        // file is newer than the key's local archive (`isFileChanged`), "Archive is up to
        // date!" and nothing is archived or uploaded. The files here are the restored ones
        // unless the script wrote them.
        let volume = shared.cache_volume(self.place);
        if !live.wrote_cache
            && shared.local_archive_time(&volume, &self.local_archive(&key)).is_some()
        {
            shared.stats().cache.uploads_skipped += 1;
            return;
        }
        let upload = async |name: &str| {
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
            let path = self.local_archive(&key);
            match archive::single_file_tar(&path, &zip) {
                Ok(t) => match docker.upload(name, VOLUME_MOUNT, t).await {
                    Ok(()) => shared.set_local_archive_time(
                        &shared.cache_volume(self.place),
                        &path,
                        crate::clock::file_time_now(),
                    ),
                    Err(e) => shared.docker_error(format!("writing the local archive: {e}")),
                },
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
        };
        if let Some(up) = upload(&helper).await {
            shared.stats().cache.saves += 1;
            shared.job(self.spec.id, |j| j.bytes_up = up);
        }
    }
}
