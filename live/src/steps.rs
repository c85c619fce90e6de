//! One step of a job done for real, as GitLab Runner's docker executor does it: the image
//! checked, the cache restored (the object, else the local archive, else the next key), the
//! script run in a container that writes the cache files, the cache archived, kept in the
//! volume and uploaded. What really happened goes into the shared job state.

use std::sync::Arc;

use bytes::Bytes;
use fleetsim_core::cache::{CacheDecl, Outcome, Policy};
use fleetsim_core::{Input, JobKey, JobSpec, Placement, RunnerId, Step};

use crate::archive::{self, ArchiveError};
use crate::clock::Stopwatch;
use crate::docker::{Exit, VOLUME_MOUNT};
use crate::s3::{S3Port, object_name};
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
    pub(crate) on: Placement,
    pub(crate) cache: Option<Arc<CacheDecl>>,
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

    /// Does the step for real; returns its completion.
    pub(crate) async fn run(self, shared: &Shared) -> Input {
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
