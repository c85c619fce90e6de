//! `sim run`: scenario → fleet → engine → reports.
//!
//! ```text
//!   Scenario::load ─► build(seed tree) ─► Fleet (+ periods)      SimCloud (machines.csv)
//!   TraceReader (streamed) ─► TraceSource ─┐
//!                                          ├─► Engine::run ─► ReportObserver ─► jobs.csv
//!                                          │                                 ├► timeline.csv
//!                                          │                                 └► PendingStats
//!                                          └──────────────────────────────────► summary.json
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use fleetsim_core::cache::key::{KeyHandling, Unsanitizable, runner_key};
use fleetsim_core::cache::{CacheStats, CacheUseId, MissReason, Policy, When};
use fleetsim_core::{Command, Fleet, JobId, JobRecord, JobSpec, JobWork, ProjectId, SimTime};
use sha2::{Digest, Sha256};

use crate::cloud::ec2::{CloudTotals, SimCloud};
use crate::cloud::prices;
use crate::engine::{Engine, JobSource, Observer, RunEnd, RunError};
use crate::input_error::InputError;
use crate::report::jobs_csv::JobsCsv;
use crate::report::pending::PendingStats;
use crate::report::summary::{
    CacheSummary, CostSummary, FleetSummary, ImagesSummary, JobsSummary, MachinesSummary,
    PendingSummary, Summary, ToScriptSummary, Utilization, WindowSummary, round6,
};
use crate::report::timeline::{Levels, Timeline};
use crate::scenario::{Scenario, Workload};
use crate::seeds::SeedTree;
use crate::trace::pipelines::{Pipelines, check_needs_have_a_pipeline};
use crate::trace::{CachePolicy, CacheWhen, TraceReader, TraceRecord};
use crate::workload::generate::Generator;

/// Hours in the month used for monthly prices (AWS's convention).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Options of `sim run` beyond the scenario file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `--seed`: overrides the scenario's seed.
    pub seed: Option<u64>,
    /// `--out`: the report folder.
    pub out: Option<PathBuf>,
    /// `--set KEY=VALUE` overrides, in order.
    pub sets: Vec<String>,
    /// Write the report files (a sweep only wants the summary).
    pub write_reports: bool,
    /// Also summarize the pending time of the jobs queued inside this window (e.g. weekday
    /// office hours), for SLOs.
    pub window: Option<JobWindow>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { seed: None, out: None, sets: Vec::new(), write_reports: true, window: None }
    }
}

/// A calendar window of job queue times: a 5-field cron set (minute resolution) in a time
/// zone, such as `* 9-17 * * mon-fri` in `Asia/Seoul`.
#[derive(Debug, Clone)]
pub struct JobWindow {
    /// The expression as given, for reports.
    pub text: String,
    /// The parsed set.
    pub set: crate::periods::PeriodSet,
}

impl JobWindow {
    /// Parses a window such as `* 9-17 * * mon-fri` in `timezone` (empty = UTC).
    pub fn parse(expr: &str, timezone: &str) -> Result<JobWindow, String> {
        let set = crate::periods::PeriodSet::parse(
            &[expr.to_owned()],
            timezone,
            crate::periods::CronDialect::Minutes5,
        )?;
        let zone = if timezone.is_empty() { "UTC" } else { timezone };
        Ok(JobWindow { text: format!("{expr} ({zone})"), set })
    }
}

/// Why `sim run` failed, and so its exit code.
#[derive(Debug)]
pub enum RunFailure {
    /// Bad input (exit code 2).
    Input(InputError),
    /// The run itself failed (exit code 1): I/O while writing reports, a stalled run.
    Failed(String),
}

impl From<InputError> for RunFailure {
    fn from(e: InputError) -> Self {
        RunFailure::Input(e)
    }
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// The summary (also in `summary.json`).
    pub summary: Summary,
    /// Where the reports are.
    pub out_dir: PathBuf,
    /// Warnings met while reading the inputs.
    pub warnings: Vec<String>,
}

/// The command line that replays a run. The value of a `--set` of a credential is written
/// as `[redacted]` ([`crate::redact::assignment`]): the line lands in `summary.json` and
/// `report.html`, which are shared; whoever replays it types the secret again.
pub fn replay_command(scenario: &Path, seed: u64, sets: &[String]) -> String {
    let mut cmd = format!("sim run {} --seed {seed}", shell_quote(&scenario.display().to_string()));
    for s in sets {
        cmd.push_str(" --set ");
        cmd.push_str(&shell_quote(&crate::redact::assignment(s)));
    }
    cmd
}

fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs a scenario file and writes its reports.
pub fn run_file(path: &Path, opts: &RunOptions) -> Result<RunOutput, RunFailure> {
    let scenario = Scenario::load(path, &opts.sets)?;
    run_scenario(&scenario, opts)
}

/// Runs a loaded scenario and writes its reports.
pub fn run_scenario(scenario: &Scenario, opts: &RunOptions) -> Result<RunOutput, RunFailure> {
    let seed = opts.seed.unwrap_or(scenario.seed);
    let replay = replay_command(&scenario.path, seed, &opts.sets);
    run_seeded(scenario, opts, seed, &replay).map_err(|e| match e {
        RunFailure::Failed(msg) => RunFailure::Failed(format!("{msg}\nreplay with: {replay}")),
        other => other,
    })
}

/// What the legacy flat S3 keys cost in this run, when a runner has only them and the
/// scenario does not override the cache: GitLab Runner 19.4 gives such a runner no
/// distributed cache (`cache/s3v2/adapter.go` `New`, "missing S3 configuration"), so this run
/// had the local cache only, and its `cold_machine` misses are what S3 would have saved.
fn legacy_cache_cost(
    scenario: &Scenario,
    summary: &crate::report::summary::Summary,
) -> Option<String> {
    if scenario.cache.distributed.is_some() {
        return None;
    }
    let names: Vec<&str> = scenario
        .config
        .runners
        .iter()
        .filter(|r| {
            r.cache.cache_type == crate::config::validated::CacheType::S3
                && !r.cache.s3_section
                && r.cache.s3.is_some()
        })
        .map(|r| r.name.as_str())
        .collect();
    if names.is_empty() {
        return None;
    }
    let c = &summary.cache;
    if c.restores == 0 {
        return None;
    }
    let cold = c.miss_reasons.get("cold_machine").copied().unwrap_or(0);
    Some(format!(
        "{}: runner(s) {names:?} ran with the local cache only (S3 keys directly in \
         [runners.cache], which GitLab Runner 19.4 ignores): {cold} of {} cache restores \
         missed on a machine that had not run the project (cold_machine), each job running its \
         cache_miss_penalty longer; hit rate {:.1} %. Move the keys into [runners.cache.s3] \
         for the S3 cache, or set [cache] distributed = true to simulate it",
        scenario.config_file.display(),
        c.restores,
        c.hit_rate * 100.0
    ))
}

fn run_seeded(
    scenario: &Scenario,
    opts: &RunOptions,
    seed: u64,
    replay: &str,
) -> Result<RunOutput, RunFailure> {
    let seeds = SeedTree::new(seed);
    let build = scenario.build(seeds)?;
    let mut fleet = Fleet::new(build.spec);
    for (runner, periods) in build.periods {
        fleet.set_periods(runner, Box::new(periods));
    }
    let (reader, workload_hash) = open_workload(scenario, seeds)?;
    let mut warnings = scenario.warnings.clone();
    warnings.extend(reader.warnings().iter().cloned());

    let out_dir = opts
        .out
        .clone()
        .or_else(|| scenario.out_dir.clone())
        .unwrap_or_else(|| Path::new("reports").join(&scenario.name));
    if opts.write_reports {
        std::fs::create_dir_all(&out_dir)
            .map_err(|e| RunFailure::Failed(format!("cannot create {}: {e}", out_dir.display())))?;
    }
    let create = |name: &str| -> Result<Box<dyn Write>, RunFailure> {
        if !opts.write_reports {
            return Ok(Box::new(std::io::sink()));
        }
        let p = out_dir.join(name);
        File::create(&p)
            .map(|f| Box::new(BufWriter::new(f)) as Box<dyn Write>)
            .map_err(|e| RunFailure::Failed(format!("cannot write {}: {e}", p.display())))
    };
    let io_err = |e: std::io::Error| RunFailure::Failed(format!("writing reports: {e}"));
    let jobs_csv =
        JobsCsv::new(create("jobs.csv")?, scenario.runner_names(), scenario.host_names())
            .map_err(io_err)?;
    let timeline = Timeline::new(create("timeline.csv")?).map_err(io_err)?;
    let runner_names = scenario.runner_names();
    let mut cloud = SimCloud::new(
        scenario.cloud.clone(),
        build.machine_types,
        &runner_names,
        seeds,
        create("machines.csv")?,
    )
    .map_err(io_err)?;
    let window = opts.window.as_ref().map(|w| (w.clone(), PendingStats::default()));
    let mut observer = ReportObserver {
        jobs_csv,
        timeline,
        pending: PendingStats::default(),
        window,
        start: scenario.start,
        error: None,
    };
    let (keys, keys_warning) = CacheKeys::for_scenario(scenario);
    warnings.extend(keys_warning);
    let mut source = TraceSource::new(reader, keys);

    let end = match Engine::new().run_with(&mut fleet, &mut source, &mut observer, &mut cloud) {
        Ok(end) => end,
        Err(RunError::Source(e)) => return Err(e.into()),
        Err(RunError::Stalled { at, pending, running, next }) => {
            let mut msg = format!(
                "the run stalled at {at} with {pending} pending and {running} running jobs"
            );
            if let Some(next) = next {
                let days = next.as_secs_f64() / 86_400.0;
                let _ = write!(
                    msg,
                    "; the next event would come at {days:.0} days, more than {} days after \
                     the last job arrived: look for a delay of that size in the inputs \
                     (check_interval, IdleTime, boot or pull times, latency, a job duration)",
                    crate::engine::STALL_HORIZON_MS / 86_400_000
                );
            }
            // The warnings often name the cause; they must not wait for a successful run.
            for w in &warnings {
                let _ = write!(msg, "\nwarning: {w}");
            }
            return Err(RunFailure::Failed(msg));
        }
    };
    assert_eq!(source.live_pipelines(), 0, "a run ended with pipelines still live");
    let skipped = source.skipped();
    warnings.extend(source.cache_keys().warning());
    drop(source);
    let trace_sha256 = workload_hash.finish();
    if let Some(e) = observer.error.take() {
        return Err(RunFailure::Failed(format!("writing reports: {e}")));
    }
    let ReportObserver { jobs_csv, timeline, pending, window, .. } = observer;
    let pending_area = timeline.pending_area_ms();
    let running_area = timeline.running_area_ms();
    jobs_csv.finish().map_err(io_err)?;
    timeline.finish(end.end).map_err(io_err)?;
    let (_, machines) = cloud.finish(end.end).map_err(io_err)?;
    let cache_stats = fleet.finish_cache(end.end);

    let areas = Areas { pending: pending_area, running: running_area };
    let mut summary = summarize(
        scenario,
        seed,
        replay,
        trace_sha256,
        end,
        &pending,
        areas,
        &machines,
        &cache_stats,
    );
    summary.jobs.total += skipped;
    summary.jobs.skipped = skipped;
    summary.window = window.map(|(w, stats)| WindowSummary {
        window: w.text,
        jobs: stats.count(),
        pending_mean_s: stats.mean_s(),
        pending_p50_s: stats.quantile_s(0.50),
        pending_p95_s: stats.quantile_s(0.95),
        pending_p99_s: stats.quantile_s(0.99),
        to_script_p95_s: stats.to_script_quantile_s(0.95),
    });
    if let Some(w) = legacy_cache_cost(scenario, &summary) {
        warnings.push(w);
    }
    if opts.write_reports {
        let mut json = serde_json::to_string_pretty(&summary)
            .map_err(|e| RunFailure::Failed(format!("encoding summary.json: {e}")))?;
        json.push('\n');
        std::fs::write(out_dir.join("summary.json"), json)
            .map_err(|e| RunFailure::Failed(format!("writing summary.json: {e}")))?;
        crate::report::html::write_run_report(&out_dir, &summary)
            .map_err(|e| RunFailure::Failed(format!("writing report.html: {e}")))?;
    }
    Ok(RunOutput { summary, out_dir, warnings })
}

/// Areas under the pending and running curves (job·ms).
pub(crate) struct Areas {
    pub(crate) pending: u128,
    pub(crate) running: u128,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn summarize(
    scenario: &Scenario,
    seed: u64,
    replay: &str,
    trace_sha256: String,
    end: RunEnd,
    pending: &PendingStats,
    areas: Areas,
    machines: &CloudTotals,
    cache: &CacheStats,
) -> Summary {
    let span_ms = end.end.as_ms();
    let per_ms = |area: u128| if span_ms == 0 { 0.0 } else { round6(area as f64 / span_ms as f64) };
    let slots = scenario.config.concurrent * scenario.hosts;
    let mean_running = per_ms(areas.running);
    let price = scenario.host_price_per_hour.unwrap_or(0.0);
    let hosts_usd = if scenario.host_price_per_hour.is_some() {
        f64::from(scenario.hosts) * prices::billed_usd(price, span_ms)
    } else {
        0.0
    };
    let (cache_summary, cache_usd) = cache_summary(scenario, cache, span_ms);
    let total_usd = hosts_usd + machines.cost_usd + cache_usd;
    let days = span_ms as f64 / 86_400_000.0;
    Summary {
        scenario: scenario.name.clone(),
        mode: "sim",
        version: env!("CARGO_PKG_VERSION"),
        seed,
        scenario_sha256: scenario.sha256.clone(),
        trace_sha256,
        replay: replay.to_owned(),
        simulated_s: end.end.as_secs_f64(),
        jobs: JobsSummary {
            total: end.jobs,
            finished: pending.count() - pending.failed(),
            failed: pending.failed(),
            retried: pending.retried(),
            skipped: 0,
        },
        pending: PendingSummary {
            mean_s: pending.mean_s(),
            p50_s: pending.quantile_s(0.50),
            p90_s: pending.quantile_s(0.90),
            p95_s: pending.quantile_s(0.95),
            p99_s: pending.quantile_s(0.99),
            max_s: pending.max_s(),
            share_waited: round6(pending.share_waited()),
            share_waited_for_capacity: round6(pending.share_waited_for_capacity()),
            wait_capacity_mean_s: pending.mean_capacity_s(),
            wait_machine_mean_s: pending.mean_machine_s(),
            wait_poll_mean_s: pending.mean_poll_s(),
        },
        to_script: ToScriptSummary {
            p50_s: pending.to_script_quantile_s(0.50),
            p95_s: pending.to_script_quantile_s(0.95),
            p99_s: pending.to_script_quantile_s(0.99),
        },
        machines: MachinesSummary {
            max: machines.max_alive,
            created: machines.created,
            creation_failed: machines.creation_failed,
            interrupted: machines.interrupted,
            billed_hours: round6(machines.billed_s as f64 / 3600.0),
        },
        utilization: Utilization {
            mean_running,
            mean_pending: per_ms(areas.pending),
            slots,
            busy_share: round6(mean_running / f64::from(slots)),
            mean_run_s: pending.mean_run_s(),
        },
        fleet: FleetSummary {
            hosts: scenario.hosts,
            concurrent: scenario.config.concurrent,
            runners: scenario.config.runners.len(),
            check_interval_s: scenario.config.check_interval_ms as f64 / 1000.0,
            pickup: match scenario.pickup {
                fleetsim_core::Pickup::Polling => "polling",
                fleetsim_core::Pickup::Immediate => "immediate",
            },
            long_polling_s: scenario.long_poll_ms as f64 / 1000.0,
        },
        window: None,
        live: None,
        cache: cache_summary,
        images: ImagesSummary { pulls: cache.image_pulls, bytes: cache.image_bytes },
        cost: CostSummary {
            total_usd: round6(total_usd),
            per_month_usd: if days > 0.0 { round6(total_usd / days * 30.0) } else { 0.0 },
            per_job_usd: if end.jobs > 0 { round6(total_usd / end.jobs as f64) } else { 0.0 },
            machines_usd: round6(machines.cost_usd),
            idle_share: if machines.cost_usd > 0.0 {
                round6(machines.idle_cost_usd / machines.cost_usd)
            } else {
                0.0
            },
            hosts_usd: round6(hosts_usd),
            cache_usd: round6(cache_usd),
            host_price_per_hour: price,
            host_price_source: scenario.host_price_source.clone(),
        },
    }
}

/// The cache figures of a run and what the cache cost: S3 requests and storage at AWS
/// prices, or the MinIO server's machine for the run.
fn cache_summary(scenario: &Scenario, c: &CacheStats, span_ms: u64) -> (CacheSummary, f64) {
    use crate::scenario::{CacheBackend, s3_prices};
    let restores = c.hits + c.misses.iter().sum::<u64>();
    let gb_month = c.storage_byte_ms as f64 / 1e9 / (730.0 * 3_600_000.0);
    let distributed_used = c.gets > 0 || c.puts > 0;
    let cost = match &scenario.cache.backend {
        CacheBackend::S3 => {
            c.gets as f64 / 1000.0 * s3_prices::GET_PER_1000
                + c.puts as f64 / 1000.0 * s3_prices::PUT_PER_1000
                + gb_month * s3_prices::STORAGE_GB_MONTH
        }
        CacheBackend::Server { price_per_hour, .. } if distributed_used => {
            prices::billed_usd(*price_per_hour, span_ms)
        }
        CacheBackend::Server { .. } => 0.0,
    };
    let reasons = MissReason::ALL
        .iter()
        .zip(c.misses)
        .map(|(r, n)| (r.as_str().to_owned(), n))
        .collect::<std::collections::BTreeMap<_, _>>();
    let summary = CacheSummary {
        restores,
        hits: c.hits,
        hit_rate: if restores == 0 { 0.0 } else { round6(c.hits as f64 / restores as f64) },
        miss_reasons: reasons,
        bytes_down: c.bytes_down,
        bytes_up: c.bytes_up,
        get_requests: c.gets,
        put_requests: c.puts,
        uploads_skipped: c.uploads_skipped,
        storage_gb_month: round6(gb_month),
        backend: match &scenario.cache.backend {
            CacheBackend::S3 => "s3".into(),
            CacheBackend::Server { source, .. } => format!("server ({source})"),
        },
        cost_usd: round6(cost),
    };
    (summary, cost)
}

/// The SHA-256 of a scenario's jobs: the trace file's, or the generated bytes', known once
/// they have all streamed by.
pub(crate) struct WorkloadHash {
    file: Option<String>,
    generated: std::rc::Rc<std::cell::RefCell<Sha256>>,
}

impl WorkloadHash {
    /// The hash in hex (for a generated workload: of the bytes read so far, all of them once
    /// the run has ended).
    pub(crate) fn finish(self) -> String {
        self.file.unwrap_or_else(|| {
            let hash = std::mem::take(&mut *self.generated.borrow_mut());
            hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
        })
    }
}

/// The scenario's jobs as a trace reader: the trace file, or the generator streaming the
/// very bytes `sim trace gen` writes for the same model and seed (hashed as they go by).
pub(crate) fn open_workload(
    scenario: &Scenario,
    seeds: SeedTree,
) -> Result<(TraceReader<Box<dyn Read>>, WorkloadHash), InputError> {
    let generated = std::rc::Rc::new(std::cell::RefCell::new(Sha256::new()));
    match &scenario.workload {
        Workload::Trace(path) => {
            let file = crate::input_file::open_regular(path, "the trace")?;
            let input: Box<dyn Read> = Box::new(file);
            let hash = WorkloadHash { file: Some(file_sha256(path)?), generated };
            Ok((TraceReader::from_reader(input, path)?, hash))
        }
        Workload::Generate(model) => {
            let generator = Generator::new((**model).clone(), seeds, scenario.start);
            let input: Box<dyn Read> =
                Box::new(HashingRead { inner: generator, hash: generated.clone() });
            let name = format!("{}#workload.generate", scenario.path.display());
            Ok((TraceReader::from_reader(input, name)?, WorkloadHash { file: None, generated }))
        }
    }
}

/// Passes bytes through and hashes them.
struct HashingRead<R> {
    inner: R,
    hash: std::rc::Rc<std::cell::RefCell<Sha256>>,
}

impl<R: Read> Read for HashingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.borrow_mut().update(&buf[..n]);
        Ok(n)
    }
}

fn file_sha256(path: &Path) -> Result<String, InputError> {
    let mut f = crate::input_file::open_regular(path, "the trace")?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| InputError::file(path, format!("cannot read the trace: {e}")))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Feeds trace records to the engine: interns tags, refuses jobs no runner can take and, in
/// a trace with `stage` or `needs` columns, holds each job until its predecessors finish
/// ([`crate::trace::pipelines`]). A trace without those columns gives every job at its
/// `created_at`, row by row.
pub struct TraceSource<R: Read> {
    reader: TraceReader<R>,
    record: TraceRecord,
    /// Whether `record` holds a row read ahead (the first row after a pipeline).
    lookahead: bool,
    /// `Some` for a DAG trace.
    pipelines: Option<Pipelines>,
    /// Jobs of the last pipeline read that are pending at its creation, in reverse order.
    roots: Vec<(SimTime, JobSpec)>,
    /// The cache keys as the runners use them.
    keys: CacheKeys,
}

impl<R: Read> TraceSource<R> {
    /// A source over a trace reader; `keys` turns cache keys into the runners' keys.
    pub fn new(reader: TraceReader<R>, keys: CacheKeys) -> Self {
        let dag = reader.has_column("stage") || reader.has_column("needs");
        let pipelines = dag.then(|| Pipelines::new(reader.path()));
        TraceSource {
            reader,
            record: TraceRecord::new(),
            lookahead: false,
            pipelines,
            roots: Vec::new(),
            keys,
        }
    }

    /// The cache keys' handling and what it changed so far.
    pub fn cache_keys(&self) -> &CacheKeys {
        &self.keys
    }

    /// Jobs never run because a predecessor failed.
    pub fn skipped(&self) -> u64 {
        self.pipelines.as_ref().map_or(0, Pipelines::skipped)
    }

    /// Pipelines read and not over (0 once a run has ended).
    pub fn live_pipelines(&self) -> usize {
        self.pipelines.as_ref().map_or(0, Pipelines::live)
    }

    fn read(&mut self) -> Result<bool, InputError> {
        if self.lookahead {
            self.lookahead = false;
            return Ok(true);
        }
        self.reader.read_next(&mut self.record)
    }
}

/// The core's job for a trace row: interns its tags, cache and image; refuses a job no
/// runner could ever take. The cache keys go through [`CacheKeys::declare`] (GitLab's suffix,
/// then the runner's sanitising).
pub fn job_spec(
    r: &TraceRecord,
    fleet: &mut Fleet,
    path: &Path,
    keys: &mut CacheKeys,
) -> Result<JobSpec, InputError> {
    let cache = if r.cache_key.is_empty() {
        None
    } else {
        let policy = match r.cache_policy {
            CachePolicy::PullPush => Policy::PullPush,
            CachePolicy::Pull => Policy::Pull,
            CachePolicy::Push => Policy::Push,
        };
        // GitLab's separated caches (§4.2): protected and unprotected refs never share a
        // key, fallback keys included.
        let suffix = match r.protected {
            None => "",
            Some(true) => "-protected",
            Some(false) => "-non_protected",
        };
        keys.declare(fleet, &r.cache_key, &r.cache_fallback_keys, suffix, policy)
    };
    let spec = JobSpec {
        id: JobId(r.job_id),
        project: ProjectId(r.project_id),
        tags: fleet.intern_tags(&r.tags),
        duration_ms: r.duration_ms,
        retry: r.retry,
        work: JobWork {
            cache,
            cache_size: r.cache_size_bytes,
            cache_changed: r.cache_changed,
            cache_miss_penalty_ms: r.cache_miss_penalty_ms,
            image: (!r.image.is_empty()).then(|| fleet.intern_image(&r.image)),
            image_size: r.image_size_bytes,
            cache_when: match r.cache_when {
                CacheWhen::OnSuccess => When::OnSuccess,
                CacheWhen::OnFailure => When::OnFailure,
                CacheWhen::Always => When::Always,
            },
            script_fails: r.script_fails,
        },
    };
    fleet.check_servable(&spec).map_err(|u| {
        InputError::file(path, format!("{}; no runner could ever take it", u.reason))
            .at_line(r.line)
            .key("tags")
    })?;
    Ok(spec)
}

/// The cache keys of a run as the runners use them, and what that changed. GitLab (Rails)
/// appends `-protected`/`-non_protected` before the runner sees a key; the runner then
/// sanitises it (`shells/abstract.go` `newCacheConfig` → `cache/cachekey/cachekey.go`
/// `Sanitize`) unless `FF_HASH_CACHE_KEYS` is on.
#[derive(Debug, Default)]
pub struct CacheKeys {
    handling: KeyHandling,
    /// Jobs with a key that sanitising changed, and the first such key (raw, sanitised).
    changed: u64,
    changed_example: Option<(String, String)>,
    /// Jobs with a key that cannot be sanitised, and the first such key.
    refused: u64,
    refused_example: Option<String>,
}

impl CacheKeys {
    /// Keys handled as `handling` says.
    pub fn new(handling: KeyHandling) -> Self {
        CacheKeys { handling, ..CacheKeys::default() }
    }

    /// How the fleet's runners handle cache keys, and a warning when they disagree:
    /// `FF_HASH_CACHE_KEYS = true` on every runner keeps keys as written; otherwise fleetsim
    /// sanitises every key (it interns a job's cache when the job arrives, before a runner
    /// takes it, so one rule must hold for the whole fleet).
    pub fn for_scenario(scenario: &Scenario) -> (Self, Option<String>) {
        let runners = &scenario.config.runners;
        let (hashing, sanitising): (Vec<_>, Vec<_>) =
            runners.iter().partition(|r| r.hash_cache_keys);
        let names = |rs: &[&crate::config::validated::RunnerEntry]| -> Vec<String> {
            rs.iter().map(|r| r.name.clone()).collect()
        };
        if !hashing.is_empty() && sanitising.is_empty() {
            return (CacheKeys::new(KeyHandling::Hash), None);
        }
        let warning = (!hashing.is_empty()).then(|| {
            format!(
                "{}: runner(s) {:?} set FF_HASH_CACHE_KEYS = true and runner(s) {:?} do not; \
                 fleetsim decides a job's cache before a runner takes it, so it sanitises every \
                 cache key as GitLab Runner does by default (cache/cachekey Sanitize): keys \
                 that sanitising changes (\"foo/\" and \"foo\") share one cache even on the \
                 hashing runners, where they would be two",
                scenario.config_file.display(),
                names(&hashing),
                names(&sanitising)
            )
        });
        (CacheKeys::new(KeyHandling::Sanitize), warning)
    }

    /// Interns the cache of a job with `key` and `fallbacks` (both before GitLab's `suffix`).
    /// `None` when the runner skips the key (`Skipping cache extraction due to empty cache
    /// key`, and the same for archiving: the job has no cache); a fallback key the runner
    /// cannot sanitise is skipped alone (`extractCacheOrFallbackCachesWrapper`).
    pub fn declare(
        &mut self,
        fleet: &mut Fleet,
        key: &str,
        fallbacks: &[String],
        suffix: &str,
        policy: Policy,
    ) -> Option<CacheUseId> {
        fn with_suffix<'a>(k: &'a str, suffix: &str) -> Cow<'a, str> {
            if suffix.is_empty() { Cow::Borrowed(k) } else { Cow::Owned(format!("{k}{suffix}")) }
        }
        // No allocation for a clean key without fallbacks (the common case).
        let handling = self.handling;
        let mut changed: Option<(String, String)> = None;
        let mut refused: Option<String> = None;
        let mut note = |raw: &str, got: &Result<Cow<'_, str>, Unsanitizable>| match got {
            Ok(k) if k.as_ref() != raw && changed.is_none() => {
                changed = Some((raw.to_owned(), k.to_string()));
            }
            Ok(_) => {}
            Err(_) => {
                refused.get_or_insert_with(|| raw.to_owned());
            }
        };
        let raw = with_suffix(key, suffix);
        let main = runner_key(&raw, handling);
        note(&raw, &main);
        let cache = match main {
            Err(_) => None,
            Ok(main) => {
                let raws: Vec<Cow<'_, str>> =
                    fallbacks.iter().map(|f| with_suffix(f, suffix)).collect();
                let mut keys: Vec<Cow<'_, str>> = Vec::with_capacity(raws.len());
                for raw in &raws {
                    let got = runner_key(raw, handling);
                    note(raw, &got);
                    if let Ok(k) = got {
                        keys.push(k);
                    }
                }
                Some(fleet.declare_cache(&main, &keys, policy))
            }
        };
        if let Some(example) = changed {
            self.changed += 1;
            self.changed_example.get_or_insert(example);
        }
        if let Some(example) = refused {
            self.refused += 1;
            self.refused_example.get_or_insert(example);
        }
        cache
    }

    /// One warning for the run when sanitising changed or refused keys.
    pub fn warning(&self) -> Option<String> {
        if self.changed == 0 && self.refused == 0 {
            return None;
        }
        let mut parts = Vec::new();
        if let Some((raw, key)) = &self.changed_example {
            parts.push(format!(
                "{} jobs' cache keys were sanitised as GitLab Runner 19.4 does (cache/cachekey \
                 Sanitize; e.g. {raw:?} → {key:?}), so keys that differ only in that way share \
                 a cache",
                self.changed
            ));
        }
        if let Some(raw) = &self.refused_example {
            parts.push(format!(
                "{} jobs had a cache key that cannot be sanitised (e.g. {raw:?}): GitLab Runner \
                 skips it (\"Skipping cache extraction due to empty cache key\", the same for \
                 archiving), so those jobs ran without that cache (a fallback key: without that \
                 fallback)",
                self.refused
            ));
        }
        Some(format!(
            "{}; FF_HASH_CACHE_KEYS = true under [runners.feature_flags] keeps keys as written",
            parts.join("; ")
        ))
    }
}

impl<R: Read> JobSource for TraceSource<R> {
    type Error = InputError;

    fn next_job(&mut self, fleet: &mut Fleet) -> Result<Option<(SimTime, JobSpec)>, InputError> {
        loop {
            if let Some(root) = self.roots.pop() {
                return Ok(Some(root));
            }
            if !self.read()? {
                return Ok(None);
            }
            let spec = job_spec(&self.record, fleet, self.reader.path(), &mut self.keys)?;
            let created = SimTime(self.record.created_at_ms);
            let Some(pipelines) = &mut self.pipelines else {
                return Ok(Some((created, spec)));
            };
            if self.record.pipeline_id.is_none() {
                check_needs_have_a_pipeline(&self.record, self.reader.path())?;
                return Ok(Some((created, spec)));
            }
            pipelines.begin(&self.record, spec)?;
            while self.reader.read_next(&mut self.record)? {
                if !pipelines.continues(&self.record) {
                    self.lookahead = true;
                    break;
                }
                let spec = job_spec(&self.record, fleet, self.reader.path(), &mut self.keys)?;
                pipelines.add(&self.record, spec)?;
            }
            let reader = &self.reader;
            pipelines.seal(|id| reader.has_seen(id), &mut self.roots)?;
            self.roots.reverse();
        }
    }

    fn job_ended(&mut self, _: SimTime, record: &mut JobRecord, released: &mut Vec<JobSpec>) {
        if let Some(p) = &mut self.pipelines {
            p.ended(record, released);
        }
    }
}

/// Streams finished jobs and the timeline to their files while the run goes.
pub(crate) struct ReportObserver<W: std::io::Write> {
    pub(crate) jobs_csv: JobsCsv<W>,
    pub(crate) timeline: Timeline<W>,
    pub(crate) pending: PendingStats,
    /// The job window and the pending statistics of the jobs queued inside it.
    pub(crate) window: Option<(JobWindow, PendingStats)>,
    /// The wall-clock instant of time 0, to place jobs in the window.
    pub(crate) start: jiff::Timestamp,
    pub(crate) error: Option<String>,
}

impl<W: std::io::Write> Observer for ReportObserver<W> {
    fn after_input(&mut self, now: SimTime, fleet: &Fleet, arrival: bool, commands: &[Command]) {
        for c in commands {
            if let Command::JobFinished(r) = c {
                self.pending.record(r);
                if let Some((w, stats)) = &mut self.window {
                    let queued =
                        self.start + jiff::SignedDuration::from_millis(r.queued.as_ms() as i64);
                    if w.set.in_period(queued) {
                        stats.record(r);
                    }
                }
                if let Err(e) = self.jobs_csv.write(r) {
                    self.error.get_or_insert(e.to_string());
                }
            }
        }
        let m = fleet.machine_totals();
        let levels = Levels {
            pending: fleet.pending(),
            running: fleet.running(),
            creating: m.creating,
            idle: m.idle + m.acquired,
            busy: m.used,
            removing: m.removing,
        };
        if let Err(e) = self.timeline.observe(now, levels, arrival, commands) {
            self.error.get_or_insert(e.to_string());
        }
    }
}
