//! `summary.json` and the table printed on stdout.

use std::fmt::Write as _;

use serde::Serialize;

/// The whole summary of a run. Field order is the file's order.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// `"sim"` for `sim run`, `"live"` for `sim live`.
    pub mode: &'static str,
    /// fleetsim's version.
    pub version: &'static str,
    /// Root seed of the run.
    pub seed: u64,
    /// SHA-256 of the scenario, its config and the `--set` overrides.
    pub scenario_sha256: String,
    /// SHA-256 of the trace file (or of the generated trace); `None` in a run that writes no
    /// files (a sweep point), where nothing would show it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_sha256: Option<String>,
    /// The command that reproduces this run.
    pub replay: String,
    /// Simulated time from the start of the run to its last event, in seconds.
    pub simulated_s: f64,
    /// Job counts.
    pub jobs: JobsSummary,
    /// Pending time (queued → picked up by a runner): GitLab's `queued_duration`.
    pub pending: PendingSummary,
    /// Queued → script start: what a developer feels (includes machine boot for on-demand
    /// machines), over job runs that did not fail.
    pub to_script: ToScriptSummary,
    /// Autoscaled machines.
    pub machines: MachinesSummary,
    /// Use of the fleet.
    pub utilization: Utilization,
    /// The fleet that was simulated.
    pub fleet: FleetSummary,
    /// Caches: restores, hits, misses and why, bytes, requests, storage, cost.
    pub cache: CacheSummary,
    /// Image pulls.
    pub images: ImagesSummary,
    /// Pending time of the jobs queued inside the `--window`, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowSummary>,
    /// Money.
    pub cost: CostSummary,
    /// What `sim live` measured against the real Docker engine and S3 server (absent for
    /// `sim run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<fleetsim_live::report::LiveSummary>,
}

/// Cache figures over the run.
#[derive(Debug, Clone, Serialize)]
pub struct CacheSummary {
    /// Restores attempted (jobs with a cache whose policy pulls).
    pub restores: u64,
    /// Restores that found the key or a fallback key.
    pub hits: u64,
    /// `hits / restores`.
    pub hit_rate: f64,
    /// Misses by reason: `never_uploaded`, `cold_machine`, `expired`, `key_changed`.
    pub miss_reasons: std::collections::BTreeMap<String, u64>,
    /// Bytes downloaded from the distributed cache.
    pub bytes_down: u64,
    /// Bytes uploaded to it.
    pub bytes_up: u64,
    /// GET requests (404s included).
    pub get_requests: u64,
    /// PUT requests.
    pub put_requests: u64,
    /// Uploads skipped because nothing changed.
    pub uploads_skipped: u64,
    /// Stored GB-months in the distributed cache.
    pub storage_gb_month: f64,
    /// `s3` or the server it runs on.
    pub backend: String,
    /// What the cache cost.
    pub cost_usd: f64,
}

/// Image pulls over the run.
#[derive(Debug, Clone, Serialize)]
pub struct ImagesSummary {
    /// Pulls.
    pub pulls: u64,
    /// Bytes pulled.
    pub bytes: u64,
}

/// Pending time of the jobs queued inside a calendar window (e.g. weekday office hours).
#[derive(Debug, Clone, Serialize)]
pub struct WindowSummary {
    /// The window, e.g. `* 9-17 * * mon-fri (Asia/Seoul)`.
    pub window: String,
    /// Job runs queued inside it.
    pub jobs: u64,
    /// Mean pending time.
    pub pending_mean_s: f64,
    /// Median.
    pub pending_p50_s: f64,
    /// 95th percentile.
    pub pending_p95_s: f64,
    /// 99th percentile.
    pub pending_p99_s: f64,
    /// 95th percentile of queued → script start.
    pub to_script_p95_s: f64,
}

/// Job counts.
#[derive(Debug, Clone, Serialize)]
pub struct JobsSummary {
    /// Jobs in the trace (or generated): those handed to the fleet plus those skipped.
    pub total: u64,
    /// Job runs that finished.
    pub finished: u64,
    /// Job runs that failed (machine lost, or no machine could be created).
    pub failed: u64,
    /// Job runs that were retries of failed ones.
    pub retried: u64,
    /// Jobs never run because a pipeline predecessor failed (always 0 without stages or
    /// needs).
    pub skipped: u64,
}

/// Queued → script start, in seconds (HDR histogram, 3 significant digits).
#[derive(Debug, Clone, Serialize)]
pub struct ToScriptSummary {
    /// Median.
    pub p50_s: f64,
    /// 95th percentile.
    pub p95_s: f64,
    /// 99th percentile.
    pub p99_s: f64,
}

/// Autoscaled machines (all zero without docker+machine).
#[derive(Debug, Clone, Serialize)]
pub struct MachinesSummary {
    /// Most machines alive at once, in any state.
    pub max: u64,
    /// Machines whose creation started.
    pub created: u64,
    /// Creations that failed.
    pub creation_failed: u64,
    /// Machines the cloud took (spot interruptions and reclaims).
    pub interrupted: u64,
    /// Billed machine-hours.
    pub billed_hours: f64,
}

/// Pending-time statistics in seconds. Percentiles come from an HDR histogram (3
/// significant digits); mean and max are exact.
#[derive(Debug, Clone, Serialize)]
pub struct PendingSummary {
    /// Mean.
    pub mean_s: f64,
    /// Median.
    pub p50_s: f64,
    /// 90th percentile.
    pub p90_s: f64,
    /// 95th percentile.
    pub p95_s: f64,
    /// 99th percentile.
    pub p99_s: f64,
    /// Maximum.
    pub max_s: f64,
    /// Share of jobs that waited at all (with polling, nearly every job waits a little).
    pub share_waited: f64,
    /// Share of jobs that waited for a free worker or `limit` slot.
    pub share_waited_for_capacity: f64,
    /// Mean time spent with no free worker or `limit` slot.
    pub wait_capacity_mean_s: f64,
    /// Mean time spent with a slot free but no idle machine (docker+machine).
    pub wait_machine_mean_s: f64,
    /// Mean time spent waiting for the runner to poll while capacity was free.
    pub wait_poll_mean_s: f64,
}

/// How busy the fleet was.
#[derive(Debug, Clone, Serialize)]
pub struct Utilization {
    /// Time-averaged number of running jobs.
    pub mean_running: f64,
    /// Time-averaged number of pending jobs (equals the pending-time sum over the simulated
    /// time: Little's law on the sample path).
    pub mean_pending: f64,
    /// Job slots in all (`concurrent` × hosts).
    pub slots: u32,
    /// `mean_running / slots`.
    pub busy_share: f64,
    /// Mean time from pick-up to finish, in seconds.
    pub mean_run_s: f64,
}

/// What was simulated.
#[derive(Debug, Clone, Serialize)]
pub struct FleetSummary {
    /// Runner hosts (processes).
    pub hosts: u32,
    /// `concurrent` of each.
    pub concurrent: u32,
    /// `[[runners]]` entries of each.
    pub runners: usize,
    /// `check_interval` in seconds.
    pub check_interval_s: f64,
    /// `"polling"` or `"immediate"`.
    pub pickup: &'static str,
    /// Long polling in seconds (0 = off).
    pub long_polling_s: f64,
}

/// Cost in USD.
#[derive(Debug, Clone, Serialize)]
pub struct CostSummary {
    /// Everything over the simulated time: hosts and machines.
    pub total_usd: f64,
    /// `total_usd` scaled to 30 days.
    pub per_month_usd: f64,
    /// `total_usd` per job in the trace.
    pub per_job_usd: f64,
    /// Autoscaled machines, billed per second with a 60 s minimum.
    pub machines_usd: f64,
    /// Share of the machines' money spent while they ran no job.
    pub idle_share: f64,
    /// Runner hosts over the simulated time.
    pub hosts_usd: f64,
    /// The distributed cache: S3 requests and storage, or the MinIO server.
    pub cache_usd: f64,
    /// Hourly price of one host (0 when none was given).
    pub host_price_per_hour: f64,
    /// Where that price came from.
    pub host_price_source: String,
}

/// Rounds to 6 decimals so floats print the same everywhere and stay readable.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl Summary {
    /// The summary as a small table for the terminal.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let p = &self.pending;
        let _ = writeln!(
            s,
            "scenario   {} (seed {}, {} simulated)",
            self.scenario,
            self.seed,
            human(self.simulated_s)
        );
        let _ = writeln!(
            s,
            "fleet      {} host(s) × concurrent {} , {} runner entr{} each, check_interval {} s, pickup {}{}",
            self.fleet.hosts,
            self.fleet.concurrent,
            self.fleet.runners,
            if self.fleet.runners == 1 { "y" } else { "ies" },
            self.fleet.check_interval_s,
            self.fleet.pickup,
            if self.fleet.long_polling_s > 0.0 {
                format!(", long polling {} s", self.fleet.long_polling_s)
            } else {
                String::new()
            }
        );
        let _ =
            writeln!(s, "jobs       {} total, {} finished", self.jobs.total, self.jobs.finished);
        if self.jobs.skipped > 0 {
            let _ = writeln!(
                s,
                "           {} skipped (a pipeline predecessor failed)",
                self.jobs.skipped
            );
        }
        if self.jobs.failed > 0 || self.jobs.retried > 0 {
            let _ = writeln!(
                s,
                "           {} runs failed (machine lost or not created), {} were retries",
                self.jobs.failed, self.jobs.retried
            );
        }
        let _ = writeln!(
            s,
            "pending    mean {:>8.1} s   p50 {:>8.1} s   p90 {:>8.1} s",
            p.mean_s, p.p50_s, p.p90_s
        );
        let _ = writeln!(
            s,
            "           p95  {:>8.1} s   p99 {:>8.1} s   max {:>8.1} s",
            p.p95_s, p.p99_s, p.max_s
        );
        let _ = writeln!(
            s,
            "           {:.1} % of jobs waited for capacity; mean wait for capacity {:.1} s, machine {:.1} s, polling {:.1} s",
            p.share_waited_for_capacity * 100.0,
            p.wait_capacity_mean_s,
            p.wait_machine_mean_s,
            p.wait_poll_mean_s
        );
        let t = &self.to_script;
        let _ = writeln!(
            s,
            "to script  p50 {:>8.1} s   p95 {:>8.1} s   p99 {:>8.1} s",
            t.p50_s, t.p95_s, t.p99_s
        );
        let m = &self.machines;
        if m.created > 0 {
            let _ = writeln!(
                s,
                "machines   {} created ({} failed, {} interrupted), at most {} at once, {:.1} machine-hours",
                m.created, m.creation_failed, m.interrupted, m.max, m.billed_hours
            );
        }
        let c = &self.cache;
        if c.restores > 0 || self.images.pulls > 0 {
            let misses: Vec<String> = c
                .miss_reasons
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(r, n)| format!("{n} {r}"))
                .collect();
            let _ = writeln!(
                s,
                "cache      {:.1} % of {} restores hit{}; {:.1} GB down, {:.1} GB up, {} uploads skipped; {} image pulls",
                c.hit_rate * 100.0,
                c.restores,
                if misses.is_empty() {
                    String::new()
                } else {
                    format!(" (misses: {})", misses.join(", "))
                },
                c.bytes_down as f64 / 1e9,
                c.bytes_up as f64 / 1e9,
                c.uploads_skipped,
                self.images.pulls
            );
        }
        let u = &self.utilization;
        let _ = writeln!(
            s,
            "use        {:.2} of {} slots busy on average ({:.1} %), mean job run {:.1} s",
            u.mean_running,
            u.slots,
            u.busy_share * 100.0,
            u.mean_run_s
        );
        let c = &self.cost;
        let _ = writeln!(
            s,
            "cost       ${:.2} over the run = ${:.2} per 30 days, ${:.4} per job; machines ${:.2} ({:.0} % idle), hosts ${:.2}, cache ${:.2}",
            c.total_usd,
            c.per_month_usd,
            c.per_job_usd,
            c.machines_usd,
            c.idle_share * 100.0,
            c.hosts_usd,
            c.cache_usd
        );
        s
    }
}

/// A duration in seconds as `2d 3h 4m`, `3h 4m` or `4m 5s`.
pub(crate) fn human(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {}s", s % 60)
    }
}
