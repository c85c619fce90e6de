//! `sim run`: the run path ([`crate::run_path`]) driven by the simulated engine, with the
//! simulated cloud billing machines into `machines.csv`.
//!
//! ```text
//!   RunPath::prepare ─► Fleet, TraceSource, ReportObserver ─┐
//!   SimCloud (ledger: machines.csv) ────────────────────────┼─► Engine::run_with ─► RunPath::finish
//!                                                           │                       summary.json, report.html
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fleetsim_core::SimTime;

use crate::cloud::ec2::SimCloud;
use crate::engine::{Engine, RunError};
use crate::input_error::InputError;
use crate::report::summary::Summary;
use crate::run_path::{RunPath, Writing, io_error};
use crate::scenario::Scenario;

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
fn legacy_cache_cost(scenario: &Scenario, summary: &Summary) -> Option<String> {
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
    let out_dir = opts
        .out
        .clone()
        .or_else(|| scenario.out_dir.clone())
        .unwrap_or_else(|| Path::new("reports").join(&scenario.name));
    let writing = if opts.write_reports { Writing::Buffered } else { Writing::Nothing };
    let mut path = RunPath::prepare(scenario, seed, out_dir, writing, opts.window.clone())?;
    let mut cloud = SimCloud::new(
        scenario.cloud.clone(),
        path.machine_types.clone(),
        &scenario.runner_names(),
        path.seeds,
        path.files.create("machines.csv")?,
    )
    .map_err(io_error)?;
    let mut engine = Engine::new();
    let run = engine.run_with(&mut path.fleet, &mut path.source, &mut path.observer, &mut cloud);
    let end = match run {
        Ok(end) => end,
        Err(RunError::Source(e)) => return Err(e.into()),
        Err(RunError::Stalled { at, pending, running, next }) => {
            return Err(stalled(at, pending, running, next, &path.warnings));
        }
    };
    assert_eq!(engine.pipelines().live(), 0, "a run ended with pipelines still live");
    let (_, machines) = cloud.finish(end.end).map_err(io_error)?;
    let out_dir = path.files.out_dir.clone();
    let (summary, mut warnings) = path.finish(scenario, replay, end, &machines, |_| {})?;
    if let Some(w) = legacy_cache_cost(scenario, &summary) {
        warnings.push(w);
    }
    Ok(RunOutput { summary, out_dir, warnings })
}

/// Why a run that can never finish stopped, with the warnings that often name the cause.
fn stalled(
    at: SimTime,
    pending: u32,
    running: u32,
    next: Option<SimTime>,
    warnings: &[String],
) -> RunFailure {
    let mut msg =
        format!("the run stalled at {at} with {pending} pending and {running} running jobs");
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
    for w in warnings {
        let _ = write!(msg, "\nwarning: {w}");
    }
    RunFailure::Failed(msg)
}
