//! What live mode measures beyond the job records: real latencies of the Docker engine and
//! the S3 server, in HDR histograms (µs, 3 significant digits), the real cache outcomes and
//! the errors seen. `summary.json` carries it as its `live` section.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// How many error messages of each kind are kept verbatim (the rest are only counted).
const KEPT_MESSAGES: usize = 20;

/// A latency distribution in ms.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Quantiles {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

/// A latency histogram in µs.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        // 1 µs to 10 h at 3 significant digits.
        Latency(Histogram::new_with_bounds(1, 36_000_000_000, 3).expect("valid bounds"))
    }
}

impl Latency {
    /// Records one sample in µs (clamped into the histogram's range).
    pub fn record_us(&mut self, us: u64) {
        self.0.saturating_record(us.max(1));
    }

    /// Adds another histogram's samples.
    pub fn add(&mut self, other: &Latency) {
        // Same bounds on both sides: the addition cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// The mean in µs (0 without samples).
    pub fn mean_us(&self) -> u64 {
        if self.0.is_empty() { 0 } else { self.0.mean().round() as u64 }
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The distribution in ms.
    pub fn quantiles(&self) -> Quantiles {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        if self.0.is_empty() {
            return Quantiles {
                count: 0,
                mean_ms: 0.0,
                p50_ms: 0.0,
                p95_ms: 0.0,
                p99_ms: 0.0,
                max_ms: 0.0,
            };
        }
        Quantiles {
            count: self.0.len(),
            mean_ms: (self.0.mean() / 1000.0 * 1000.0).round() / 1000.0,
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p95_ms: ms(self.0.value_at_quantile(0.95)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            max_ms: ms(self.0.max()),
        }
    }
}

/// Errors of one kind: a count and the first messages.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Errors {
    /// How many.
    pub count: u64,
    /// The first few messages, verbatim.
    pub first: Vec<String>,
}

impl Errors {
    /// Counts one error.
    pub fn push(&mut self, msg: String) {
        self.count += 1;
        if self.first.len() < KEPT_MESSAGES {
            self.first.push(msg);
        }
    }
}

/// Real cache outcomes, and how often the core's model agreed with them.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CacheOutcomes {
    /// Restores carried out.
    pub restores: u64,
    /// Found in the bucket (primary or fallback key).
    pub hits_remote: u64,
    /// Found in the machine's own volume (the remote one missing or unreachable).
    pub hits_local: u64,
    /// Found nowhere.
    pub misses: u64,
    /// Found, but refused: an entry would land outside the build directory.
    pub refused: u64,
    /// Restores whose hit/miss matched the core's decision.
    pub agreed_with_model: u64,
    /// Bytes of archives downloaded from the bucket.
    pub bytes_down: u64,
    /// Bytes of archives uploaded.
    pub bytes_up: u64,
    /// GET requests (404s included).
    pub get_requests: u64,
    /// PUT requests.
    pub put_requests: u64,
    /// Saves carried out (archive written to the volume, and to the bucket when distributed).
    pub saves: u64,
    /// Saves skipped by `cache:when` after the script's real outcome (by default,
    /// `on_success`: the script failed).
    pub saves_skipped_failed: u64,
    /// Saves that found the local archive up to date: the script wrote no cached file and
    /// the volume holds the key's archive (nothing archived, nothing uploaded).
    pub uploads_skipped: u64,
}

/// Everything live mode measures; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct LiveStats {
    /// Machine creation: the volume create call.
    pub volume_create: Latency,
    /// Machine creation: run time from `CreateMachine` to `MachineReady` (sampled creation
    /// time, scaled, plus the real volume creation).
    pub machine_ready: Latency,
    /// Container create.
    pub container_create: Latency,
    /// Container start (`POST /containers/{id}/start`, within a stage).
    pub container_start: Latency,
    /// One stage on a job container, whole: attach, start, the script, wait.
    pub stage: Latency,
    /// Stages run.
    pub stages: u64,
    /// The Sources step (helper created, `prepare_script` and `get_sources`).
    pub sources: Latency,
    /// The Cleanup step (`cleanup_file_variables`, containers removed).
    pub cleanup: Latency,
    /// Container stop and remove.
    pub container_remove: Latency,
    /// Container run time (start → exit) of script containers.
    pub script_run: Latency,
    /// Script step overhead: its wall time minus the scaled duration it slept.
    pub script_overhead: Latency,
    /// The Pull step (image inspect).
    pub pull: Latency,
    /// Cache restore step, whole (S3 GET, extraction, container).
    pub restore: Latency,
    /// Cache save step, whole (container read, archive, S3 PUT).
    pub save: Latency,
    /// S3 GET requests alone.
    pub s3_get: Latency,
    /// S3 PUT requests alone.
    pub s3_put: Latency,
    /// Bytes and µs of S3 transfers that moved data, for throughput.
    pub s3_down_bytes_us: (u64, u64),
    /// Bytes and µs of S3 uploads.
    pub s3_up_bytes_us: (u64, u64),
    /// Cache outcomes.
    pub cache: CacheOutcomes,
    /// Docker errors.
    pub docker_errors: Errors,
    /// S3 errors.
    pub s3_errors: Errors,
    /// Archives refused or unreadable.
    pub archive_errors: Errors,
    /// Job runs whose container failed (non-zero exit, killed, vanished).
    pub failed_jobs: u64,
    /// Containers run.
    pub containers: u64,
    /// Machines (volumes) created and removed.
    pub machines_created: u64,
    /// Machines removed.
    pub machines_removed: u64,
    /// Machine volumes alive now.
    pub machines_alive: u64,
    /// Most machine volumes alive at once.
    pub machines_max_alive: u64,
}

impl LiveStats {
    /// The engine's and the S3 server's real time per job, µs of wall time: every step but
    /// the script's own sleep (image check, helper and stages, restore, the script
    /// container's overhead, save, cleanup), summed over the run and divided by `jobs`.
    pub fn overhead_us_per_job(&self, jobs: u64) -> u64 {
        let total = |l: &Latency| l.mean_us() * l.count();
        let sum = total(&self.pull)
            + total(&self.sources)
            + total(&self.restore)
            + total(&self.script_overhead)
            + total(&self.save)
            + total(&self.cleanup);
        sum.checked_div(jobs).unwrap_or(0)
    }
}

/// The `live` section of `summary.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LiveSummary {
    /// The run id (the `fleetsim.run` label value).
    pub run_id: String,
    /// `--speed`.
    pub speed: f64,
    /// `--cache-scale`.
    pub cache_scale: f64,
    /// The Docker engine.
    pub docker: String,
    /// The job image.
    pub image: String,
    /// Wall-clock seconds the run took.
    pub wall_s: f64,
    /// Whether the run was interrupted (Ctrl-C) before the trace ended.
    pub interrupted: bool,
    /// Containers run.
    pub containers: u64,
    /// Stages run on them.
    pub stages: u64,
    /// Job runs whose container failed.
    pub failed_jobs: u64,
    /// Machines created / removed.
    pub machines_created: u64,
    /// Machines removed.
    pub machines_removed: u64,
    /// Latencies, in ms of real time, by name.
    pub latency_ms: BTreeMap<&'static str, Quantiles>,
    /// S3 download throughput over transfers that moved data, MB/s.
    pub s3_down_mb_per_s: f64,
    /// S3 upload throughput, MB/s.
    pub s3_up_mb_per_s: f64,
    /// Real cache outcomes.
    pub cache: CacheOutcomes,
    /// Docker errors.
    pub docker_errors: Errors,
    /// S3 errors.
    pub s3_errors: Errors,
    /// Archive errors (zip-slip refusals, unreadable archives).
    pub archive_errors: Errors,
}

fn mb_per_s((bytes, us): (u64, u64)) -> f64 {
    if us == 0 { 0.0 } else { (bytes as f64 / us as f64 * 1000.0).round() / 1000.0 }
}

impl LiveStats {
    /// The summary section.
    pub fn summary(&self, head: LiveHead) -> LiveSummary {
        let latency_ms = BTreeMap::from([
            ("volume_create", self.volume_create.quantiles()),
            ("machine_ready_run_time", self.machine_ready.quantiles()),
            ("container_create", self.container_create.quantiles()),
            ("container_start", self.container_start.quantiles()),
            ("container_remove", self.container_remove.quantiles()),
            ("stage", self.stage.quantiles()),
            ("sources", self.sources.quantiles()),
            ("cleanup", self.cleanup.quantiles()),
            ("script_run", self.script_run.quantiles()),
            ("script_overhead", self.script_overhead.quantiles()),
            ("pull", self.pull.quantiles()),
            ("cache_restore", self.restore.quantiles()),
            ("cache_save", self.save.quantiles()),
            ("s3_get", self.s3_get.quantiles()),
            ("s3_put", self.s3_put.quantiles()),
        ]);
        LiveSummary {
            run_id: head.run_id,
            speed: head.speed,
            cache_scale: head.cache_scale,
            docker: head.docker,
            image: head.image,
            wall_s: head.wall_s,
            interrupted: head.interrupted,
            containers: self.containers,
            stages: self.stages,
            failed_jobs: self.failed_jobs,
            machines_created: self.machines_created,
            machines_removed: self.machines_removed,
            latency_ms,
            s3_down_mb_per_s: mb_per_s(self.s3_down_bytes_us),
            s3_up_mb_per_s: mb_per_s(self.s3_up_bytes_us),
            cache: self.cache.clone(),
            docker_errors: self.docker_errors.clone(),
            s3_errors: self.s3_errors.clone(),
            archive_errors: self.archive_errors.clone(),
        }
    }
}

/// The run-level facts of a [`LiveSummary`].
#[derive(Debug, Clone)]
pub struct LiveHead {
    /// Run id.
    pub run_id: String,
    /// `--speed`.
    pub speed: f64,
    /// `--cache-scale`.
    pub cache_scale: f64,
    /// Docker engine URL.
    pub docker: String,
    /// Job image.
    pub image: String,
    /// Wall seconds.
    pub wall_s: f64,
    /// Interrupted.
    pub interrupted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_in_ms() {
        let mut l = Latency::default();
        for us in [1_000, 2_000, 3_000, 100_000] {
            l.record_us(us);
        }
        let q = l.quantiles();
        assert_eq!(q.count, 4);
        assert!((q.p50_ms - 2.0).abs() < 0.01, "{q:?}");
        assert!((q.max_ms - 100.0).abs() < 0.1, "{q:?}");
    }

    #[test]
    fn errors_keep_the_first_messages() {
        let mut e = Errors::default();
        for i in 0..30 {
            e.push(format!("e{i}"));
        }
        assert_eq!(e.count, 30);
        assert_eq!(e.first.len(), KEPT_MESSAGES);
        assert_eq!(e.first[0], "e0");
    }
}
