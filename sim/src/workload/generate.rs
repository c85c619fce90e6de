//! The seeded pipeline generator behind `sim trace gen` and `[workload.generate]`.
//!
//! # The model
//!
//! - **Clock.** Time 0 is the scenario's `[workload] start` (or `--start`), by default Monday
//!   2026-03-02 00:00 in Asia/Seoul. The calendar (weekday, hour) is read in `timezone`
//!   (IANA name, default `Asia/Seoul`), daylight saving time included.
//! - **Pushes** (one pipeline each) form a non-homogeneous Poisson process whose rate is
//!   constant over each quarter hour from time 0 and set by the local time at the quarter's
//!   start: `pushes_per_hour` (default 15, all projects together) on weekdays (Monday to
//!   Friday) inside `office_hours` (default `[9, 18]`: 09:00 to 18:00 local), times
//!   `off_hours_factor` (default 0.08) on weekdays outside them and `weekend_factor`
//!   (default 0.02) on Saturday and Sunday. Inside a `release_windows` cron set (5 fields,
//!   minute resolution, in `timezone`; default `["* 14-16 * * thu"]`, Thursday 14:00 to
//!   17:00) the rate is multiplied by `release_factor` (default 2). Quarter-hour steps are
//!   exact for every current UTC offset and for windows on quarter hours. Arrivals are drawn
//!   exactly: each gap consumes an Exp(1) amount of the integrated rate, crossing quarters
//!   as needed (the time-change method), one draw per push.
//! - **Projects.** A push goes to a project with probability proportional to its `weight`.
//!   It runs on `main` with probability `main_share`, else on one of `feature_branches`
//!   feature branches drawn uniformly.
//! - **Pipelines.** A project's template is a list of jobs, each with a `stage` (stage order
//!   is the order of first appearance in the list, and rows are written stage by stage),
//!   a script time drawn log-normal with the given `median` (seconds) and `sigma` (of the
//!   logarithm; p90 = median × e^(1.2816 σ)), a `parallel` fan-out drawn uniformly from
//!   `parallel ..= parallel_max` (shards named `name i/N`), optional `needs` (names of jobs
//!   listed earlier in the template, every shard of them; `[]` for GitLab's `needs: []`),
//!   and `only_main` (the job exists only in `main` pipelines; needs on a job that is absent
//!   are dropped, like `needs:optional`). All jobs of a pipeline are created at its push.
//! - **Cache and image.** A job with `cache = true` (default) uses the key
//!   `<project>-<branch>`, falling back to `<project>-main`, policy `pull-push`, the
//!   project's `cache_size` and `cache_miss_penalty`; it changes the cache if
//!   `changes_cache` (default: the job is in the first stage — dependencies are installed
//!   there). Every job uses the project's `image` and `image_size`, `tags` and `retry`.
//! - **End.** Pushes stop at `days` (default 7) after time 0, or before the pipeline that
//!   would take the trace beyond `max_jobs` jobs.
//! - **Ids.** Pipelines are numbered 1, 2, … in push order and jobs 1, 2, … in row order.
//!
//! The default projects follow the seed week (`scenarios/traces/gen_team_week.py`):
//! backend, frontend, library and infra with weights 8, 6, 3, 3 (their developers), build →
//! test (fan-out 1–3) → deploy (main only), with `needs` letting tests start after the
//! compile step alone.
//!
//! # Determinism
//!
//! Three streams of the run's [`SeedTree`]: `workload.arrivals` (push times),
//! `workload.pipelines` (project, branch, fan-out) and `workload.durations` (script times),
//! so a change to the templates does not move the pushes. Times are whole milliseconds and
//! every number is printed from integers: the same model and seed give the same bytes.

use std::io::{self, Read, Write as _};

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, LogNormal};
use serde::Deserialize;

use crate::periods::{CronDialect, PeriodSet, load_zone};
use crate::seeds::SeedTree;

/// The columns of a generated trace, in order.
pub const GENERATED_COLUMNS: &str = "job_id,pipeline_id,project_id,name,stage,needs,created_at,\
duration,tags,cache_key,cache_fallback_keys,cache_policy,cache_size,cache_changed,\
cache_miss_penalty,image,image_size,retry";

/// Length of a constant-rate step of the push process, in ms (a quarter hour).
pub const STEP_MS: u64 = 15 * 60 * 1000;

/// `[workload.generate]` (and a `sim trace gen --model` file) as serde reads it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenerate {
    /// Length of the workload in days (default 7).
    pub days: Option<f64>,
    /// Stop before the pipeline that would exceed this many jobs.
    pub max_jobs: Option<u64>,
    /// IANA time zone of the calendar (default Asia/Seoul).
    pub timezone: Option<String>,
    /// `[start, end)` local hours of weekday office time (default `[9, 18]`).
    pub office_hours: Option<[u32; 2]>,
    /// Pushes per hour on weekdays in office hours (default 15).
    pub pushes_per_hour: Option<f64>,
    /// Rate factor on weekdays outside office hours (default 0.08).
    pub off_hours_factor: Option<f64>,
    /// Rate factor on weekends (default 0.02).
    pub weekend_factor: Option<f64>,
    /// Release windows: 5-field cron expressions in `timezone`.
    pub release_windows: Option<Vec<String>>,
    /// Rate factor inside release windows (default 2).
    pub release_factor: Option<f64>,
    /// Feature branches per project (default 10).
    pub feature_branches: Option<u32>,
    /// The projects (default: the four of the seed week).
    pub projects: Option<Vec<RawProject>>,
}

/// `[[workload.generate.projects]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProject {
    /// Name (cache keys start with it).
    pub name: String,
    /// GitLab project id (default: its position, from 1).
    pub id: Option<u64>,
    /// Relative share of pushes (default 1).
    pub weight: Option<f64>,
    /// Share of its pushes on `main` (default 0.25).
    pub main_share: Option<f64>,
    /// Job image (default none: the runner's).
    pub image: Option<String>,
    /// Image size, e.g. `"480MB"` (default 0).
    pub image_size: Option<String>,
    /// Cache archive size, e.g. `"350MB"` (default 0).
    pub cache_size: Option<String>,
    /// Seconds added to a job's script on a cache miss (default 0).
    pub cache_miss_penalty: Option<f64>,
    /// Runner tags every job requires (default none).
    pub tags: Option<Vec<String>>,
    /// `retry` of every job (default 0).
    pub retry: Option<u32>,
    /// The pipeline template.
    pub jobs: Vec<RawJob>,
}

/// `[[workload.generate.projects.jobs]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    /// Job name.
    pub name: String,
    /// Stage name.
    pub stage: String,
    /// Median script time, seconds.
    pub median: f64,
    /// σ of the script time's logarithm (default 0.3).
    pub sigma: Option<f64>,
    /// Fewest parallel shards (default 1).
    pub parallel: Option<u32>,
    /// Most parallel shards (default `parallel`).
    pub parallel_max: Option<u32>,
    /// Names of earlier jobs of the template it needs (`[]`: GitLab's `needs: []`).
    pub needs: Option<Vec<String>>,
    /// Whether it uses the project's cache (default true).
    pub cache: Option<bool>,
    /// Whether it changes the cache (default: in the first stage).
    pub changes_cache: Option<bool>,
    /// Only in `main` pipelines (default false).
    pub only_main: Option<bool>,
}

/// A validated generator model.
#[derive(Debug, Clone)]
pub struct GenModel {
    /// Length in ms.
    pub length_ms: u64,
    /// Job cap.
    pub max_jobs: Option<u64>,
    /// The calendar's zone name.
    pub timezone: String,
    zone: TimeZone,
    /// Office hours `[start, end)`.
    pub office_hours: [u32; 2],
    /// Pushes per hour in weekday office hours.
    pub pushes_per_hour: f64,
    /// Factor outside office hours on weekdays.
    pub off_hours_factor: f64,
    /// Factor on weekends.
    pub weekend_factor: f64,
    /// Release window expressions.
    pub release_windows: Vec<String>,
    release: PeriodSet,
    /// Factor in release windows.
    pub release_factor: f64,
    /// Feature branches per project.
    pub feature_branches: u32,
    projects: Vec<Project>,
    /// Cumulative project weights, for the draw.
    cumulative: Vec<f64>,
}

#[derive(Debug, Clone)]
struct Project {
    name: String,
    id: u64,
    main_share: f64,
    image: String,
    image_size: u64,
    cache_size: u64,
    miss_penalty_ms: u64,
    tags: String,
    retry: u32,
    jobs: Vec<JobTemplate>,
}

#[derive(Debug, Clone)]
struct JobTemplate {
    name: String,
    stage: String,
    log_normal: LogNormal<f64>,
    parallel: (u32, u32),
    /// `None`: no needs (stage rule); `Some`: indexes of earlier templates (maybe empty).
    needs: Option<Vec<usize>>,
    cache: bool,
    changes_cache: bool,
    only_main: bool,
}

/// The default model's projects: the seed week's four, with a DAG.
fn default_projects() -> Vec<RawProject> {
    let job = |name: &str, stage: &str, median_min: f64, sigma: f64| RawJob {
        name: name.into(),
        stage: stage.into(),
        median: median_min * 60.0,
        sigma: Some(sigma),
        parallel: None,
        parallel_max: None,
        needs: None,
        cache: None,
        changes_cache: None,
        only_main: None,
    };
    let fan = |mut j: RawJob, lo: u32, hi: u32, needs: &[&str]| {
        j.parallel = Some(lo);
        j.parallel_max = Some(hi);
        j.needs = Some(needs.iter().map(|s| (*s).to_owned()).collect());
        j
    };
    let deploy = |mut j: RawJob| {
        j.cache = Some(false);
        j.only_main = Some(true);
        j
    };
    let project = |name: &str,
                   weight: f64,
                   image: &str,
                   image_mb: u32,
                   cache_mb: u32,
                   miss_s: f64,
                   main_share: f64,
                   jobs: Vec<RawJob>| RawProject {
        name: name.into(),
        id: None,
        weight: Some(weight),
        main_share: Some(main_share),
        image: Some(image.into()),
        image_size: Some(format!("{image_mb}MB")),
        cache_size: Some(format!("{cache_mb}MB")),
        cache_miss_penalty: Some(miss_s),
        tags: None,
        retry: None,
        jobs,
    };
    vec![
        project(
            "backend",
            8.0,
            "maven:3-eclipse-temurin-17",
            480,
            350,
            240.0,
            0.25,
            vec![
                job("compile", "build", 3.5, 0.30),
                job("checkstyle", "build", 1.5, 0.25),
                fan(job("test", "test", 6.0, 0.35), 1, 3, &["compile"]),
                deploy(job("deploy-staging", "deploy", 2.0, 0.20)),
            ],
        ),
        project(
            "frontend",
            6.0,
            "node:20",
            1100,
            450,
            150.0,
            0.25,
            vec![
                job("build", "build", 3.0, 0.30),
                job("lint", "build", 1.2, 0.25),
                fan(job("test", "test", 5.0, 0.40), 1, 3, &["build"]),
                deploy(job("deploy-preview", "deploy", 1.5, 0.20)),
            ],
        ),
        project(
            "library",
            3.0,
            "python:3.12",
            1020,
            120,
            60.0,
            0.20,
            vec![
                job("package", "build", 1.5, 0.25),
                fan(job("test", "test", 4.0, 0.35), 1, 3, &["package"]),
                deploy(job("publish", "deploy", 1.0, 0.20)),
            ],
        ),
        project(
            "infra",
            3.0,
            "alpine:3.20",
            8,
            80,
            20.0,
            0.40,
            vec![
                job("validate", "build", 1.0, 0.25),
                job("tflint", "build", 1.2, 0.25),
                job("plan", "test", 3.0, 0.40),
                deploy(job("apply", "deploy", 4.0, 0.30)),
            ],
        ),
    ]
}

/// Refuses text that would need CSV quoting or split a list.
fn plain(text: &str, key: &str) -> Result<(), String> {
    if text.is_empty() || text.chars().any(|c| matches!(c, ',' | '"' | ';' | '\n' | '\r')) {
        return Err(format!(
            "{key} = {text:?}: expected a non-empty name without , \" ; or newlines"
        ));
    }
    Ok(())
}

/// The highest push rate the generator accepts (pushes per hour at the peak of the profile:
/// `pushes_per_hour` × the largest factor × `release_factor`): ten pushes a second, well
/// above the busiest self-managed GitLab instances.
pub const MAX_PUSHES_PER_HOUR: f64 = 36_000.0;

/// The most pipelines a model may ask for without `max_jobs` (at the peak rate over all
/// `days`).
pub const MAX_PUSHES: u64 = 10_000_000;

/// The highest `max_jobs` a model with more than [`MAX_PUSHES`] potential pipelines may set.
pub const MAX_GENERATED_JOBS: u64 = 50_000_000;

fn factor(value: Option<f64>, default: f64, key: &str) -> Result<f64, String> {
    let v = value.unwrap_or(default);
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{key} = {v}: expected a number ≥ 0"))
    }
}

fn size(value: &Option<String>, key: &str) -> Result<u64, String> {
    value.as_deref().map_or(Ok(0), |s| {
        crate::trace::parse_size_bytes(s).map_err(|e| format!("{key} = {s:?}: {e}"))
    })
}

impl GenModel {
    /// The key a message of [`GenModel::from_raw`] is about: its messages begin with it
    /// (`days = 0: …`, `projects[1].jobs[0].needs: …`). `None` for a message about several
    /// keys at once.
    pub fn error_key(message: &str) -> Option<String> {
        let end = message.find([' ', ':', ','])?;
        let key = &message[..end];
        let named = key.starts_with(|c: char| c.is_ascii_alphabetic());
        (named && crate::config::parse_key_path(key).is_ok()).then(|| key.to_owned())
    }

    /// Validates a raw model. Errors begin with the key (`projects[1].jobs[0].needs`, …;
    /// see [`GenModel::error_key`]) and say what was expected.
    pub fn from_raw(raw: &RawGenerate) -> Result<GenModel, String> {
        let days = raw.days.unwrap_or(7.0);
        let max_days = (crate::trace::record::MAX_TRACE_YEARS * 365) as f64;
        if !(days.is_finite() && days > 0.0 && days <= max_days) {
            return Err(format!(
                "days = {days}: expected a number of days in (0, {max_days}] (the longest \
                 trace fleetsim simulates)"
            ));
        }
        let timezone = raw.timezone.clone().unwrap_or_else(|| "Asia/Seoul".into());
        let zone = load_zone(&timezone).map_err(|e| format!("timezone: {e}"))?;
        let office_hours = raw.office_hours.unwrap_or([9, 18]);
        if !(office_hours[0] < office_hours[1] && office_hours[1] <= 24) {
            return Err(format!(
                "office_hours = {office_hours:?}: expected [start, end) local hours with start < end ≤ 24"
            ));
        }
        let release_windows =
            raw.release_windows.clone().unwrap_or_else(|| vec!["* 14-16 * * thu".into()]);
        let release = PeriodSet::parse(&release_windows, &timezone, CronDialect::Minutes5)
            .map_err(|e| format!("release_windows: {e}"))?;
        let feature_branches = raw.feature_branches.unwrap_or(10);
        if feature_branches == 0 {
            return Err("feature_branches = 0: expected at least 1".into());
        }
        let raw_projects = raw.projects.clone().unwrap_or_else(default_projects);
        if raw_projects.is_empty() {
            return Err("projects: expected at least one project".into());
        }
        let mut projects = Vec::with_capacity(raw_projects.len());
        let mut cumulative = Vec::with_capacity(raw_projects.len());
        let mut total = 0.0;
        for (p, rp) in raw_projects.iter().enumerate() {
            let key = format!("projects[{p}]");
            plain(&rp.name, &format!("{key}.name"))?;
            let weight = factor(rp.weight, 1.0, &format!("{key}.weight"))?;
            total += weight;
            cumulative.push(total);
            let main_share = factor(rp.main_share, 0.25, &format!("{key}.main_share"))?;
            if main_share > 1.0 {
                return Err(format!("{key}.main_share = {main_share}: expected a share in [0, 1]"));
            }
            let image = rp.image.clone().unwrap_or_default();
            if !image.is_empty() {
                plain(&image, &format!("{key}.image"))?;
            }
            let tags = rp.tags.clone().unwrap_or_default();
            for t in &tags {
                plain(t, &format!("{key}.tags"))?;
            }
            let miss = factor(rp.cache_miss_penalty, 0.0, &format!("{key}.cache_miss_penalty"))?;
            if rp.jobs.is_empty() {
                return Err(format!("{key}.jobs: expected at least one job"));
            }
            // Stage order: first appearance. Templates are re-ordered stage by stage (stable),
            // so that rows come out grouped; `needs` must name a job listed earlier.
            let mut stages: Vec<&str> = Vec::new();
            for j in &rp.jobs {
                if !stages.contains(&j.stage.as_str()) {
                    stages.push(&j.stage);
                }
            }
            let mut order: Vec<usize> = (0..rp.jobs.len()).collect();
            order.sort_by_key(|&i| stages.iter().position(|s| *s == rp.jobs[i].stage));
            let mut jobs: Vec<JobTemplate> = Vec::with_capacity(rp.jobs.len());
            let mut names_in_order: Vec<&str> = Vec::new();
            for &i in &order {
                let j = &rp.jobs[i];
                let jkey = format!("{key}.jobs[{i}]");
                plain(&j.name, &format!("{jkey}.name"))?;
                plain(&j.stage, &format!("{jkey}.stage"))?;
                if rp.jobs[..i].iter().any(|o| o.name == j.name) {
                    return Err(format!(
                        "{jkey}.name = {:?}: a job of that name comes earlier",
                        j.name
                    ));
                }
                if !(j.median.is_finite() && j.median > 0.0) {
                    return Err(format!("{jkey}.median = {}: expected seconds > 0", j.median));
                }
                let sigma = factor(j.sigma, 0.3, &format!("{jkey}.sigma"))?;
                let log_normal =
                    LogNormal::new(j.median.ln(), sigma).map_err(|e| format!("{jkey}: {e}"))?;
                let lo = j.parallel.unwrap_or(1);
                let hi = j.parallel_max.unwrap_or(lo);
                if !(1..=200).contains(&lo) || hi < lo || hi > 200 {
                    return Err(format!(
                        "{jkey}.parallel = {lo}, parallel_max = {hi}: expected 1 ≤ parallel ≤ parallel_max ≤ 200 (GitLab's limit)"
                    ));
                }
                let needs = match &j.needs {
                    None => None,
                    Some(list) => {
                        let mut idx = Vec::with_capacity(list.len());
                        for n in list {
                            let Some(at) = names_in_order.iter().position(|m| m == n) else {
                                return Err(format!(
                                    "{jkey}.needs: {n:?} is not a job listed before {:?} in the same or an earlier stage",
                                    j.name
                                ));
                            };
                            if !idx.contains(&at) {
                                idx.push(at);
                            }
                        }
                        Some(idx)
                    }
                };
                let first_stage = j.stage == stages[0];
                jobs.push(JobTemplate {
                    name: j.name.clone(),
                    stage: j.stage.clone(),
                    log_normal,
                    parallel: (lo, hi),
                    needs,
                    cache: j.cache.unwrap_or(true),
                    changes_cache: j.changes_cache.unwrap_or(first_stage),
                    only_main: j.only_main.unwrap_or(false),
                });
                names_in_order.push(&j.name);
            }
            if rp.retry.is_some_and(|r| r > 2) {
                return Err(format!(
                    "{key}.retry = {}: expected 0, 1 or 2 (GitLab's `retry: max` is at most 2)",
                    rp.retry.unwrap_or_default()
                ));
            }
            projects.push(Project {
                name: rp.name.clone(),
                id: rp.id.unwrap_or(p as u64 + 1),
                main_share,
                image,
                image_size: size(&rp.image_size, &format!("{key}.image_size"))?,
                cache_size: size(&rp.cache_size, &format!("{key}.cache_size"))?,
                miss_penalty_ms: (miss * 1000.0).round() as u64,
                tags: tags.join(";"),
                retry: rp.retry.unwrap_or(0),
                jobs,
            });
        }
        if total <= 0.0 {
            return Err("projects: the weights add up to 0".into());
        }
        let pushes_per_hour = factor(raw.pushes_per_hour, 15.0, "pushes_per_hour")?;
        let off_hours_factor = factor(raw.off_hours_factor, 0.08, "off_hours_factor")?;
        let weekend_factor = factor(raw.weekend_factor, 0.02, "weekend_factor")?;
        let release_factor = factor(raw.release_factor, 2.0, "release_factor")?;
        // Bounds on what the numbers ask for, so that a typo cannot fill the disk: the peak
        // rate, and the most pipelines the whole span could hold at that rate.
        let peak = pushes_per_hour
            * off_hours_factor.max(weekend_factor).max(1.0)
            * release_factor.max(1.0);
        if peak > MAX_PUSHES_PER_HOUR {
            return Err(format!(
                "pushes_per_hour = {pushes_per_hour} with release_factor = {release_factor} \
                 (and the other factors) gives a peak of {peak} pushes per hour; at most \
                 {MAX_PUSHES_PER_HOUR}"
            ));
        }
        let most = peak * days * 24.0;
        if most > MAX_PUSHES as f64 && raw.max_jobs.is_none_or(|m| m > MAX_GENERATED_JOBS) {
            return Err(format!(
                "{days} days at up to {peak} pushes per hour could make {most:.0} pipelines; \
                 set max_jobs (at most {MAX_GENERATED_JOBS}) or fewer days"
            ));
        }
        Ok(GenModel {
            length_ms: (days * 86_400_000.0).round() as u64,
            max_jobs: raw.max_jobs,
            timezone,
            zone,
            office_hours,
            pushes_per_hour,
            off_hours_factor,
            weekend_factor,
            release_windows,
            release,
            release_factor,
            feature_branches,
            projects,
            cumulative,
        })
    }

    /// The push rate (pushes per hour) at wall-clock instant `at`: the model's profile.
    pub fn rate_per_hour(&self, at: Timestamp) -> f64 {
        let local = at.to_zoned(self.zone.clone());
        let weekend = matches!(local.weekday(), Weekday::Saturday | Weekday::Sunday);
        let hour = local.hour() as u32;
        let mut f = if weekend {
            self.weekend_factor
        } else if (self.office_hours[0]..self.office_hours[1]).contains(&hour) {
            1.0
        } else {
            self.off_hours_factor
        };
        if self.release.in_period(at) {
            f *= self.release_factor;
        }
        self.pushes_per_hour * f
    }
}

/// The generated trace as a byte stream ([`Read`]): rows are made a pipeline at a time when
/// the reader asks for more, so memory does not grow with the length of the workload.
#[derive(Debug)]
pub struct Generator {
    model: GenModel,
    start: Timestamp,
    arrivals: ChaCha8Rng,
    pipelines: ChaCha8Rng,
    durations: ChaCha8Rng,
    /// Current time (ms from time 0) of the push process, and the end of its quarter.
    t_ms: f64,
    step_end_ms: u64,
    /// Pushes per ms in the current quarter.
    rate_per_ms: f64,
    next_job: u64,
    next_pipeline: u64,
    done: bool,
    buf: Vec<u8>,
    pos: usize,
    /// Per template of the current pipeline: first job id and shard count (0: absent).
    emitted: Vec<(u64, u32)>,
    needs_text: String,
}

impl Generator {
    /// A generator of `model` from the seed tree `seeds`, time 0 at `start`.
    pub fn new(model: GenModel, seeds: SeedTree, start: Timestamp) -> Generator {
        let mut g = Generator {
            arrivals: seeds.stream("workload.arrivals"),
            pipelines: seeds.stream("workload.pipelines"),
            durations: seeds.stream("workload.durations"),
            model,
            start,
            t_ms: 0.0,
            step_end_ms: 0,
            rate_per_ms: 0.0,
            next_job: 1,
            next_pipeline: 1,
            done: false,
            buf: Vec::with_capacity(1 << 14),
            pos: 0,
            emitted: Vec::new(),
            needs_text: String::new(),
        };
        g.buf.extend_from_slice(GENERATED_COLUMNS.as_bytes());
        g.buf.push(b'\n');
        g
    }

    /// Enters the quarter starting at `self.step_end_ms`.
    fn next_step(&mut self) {
        let at = self.start + jiff::SignedDuration::from_millis(self.step_end_ms as i64);
        self.rate_per_ms = self.model.rate_per_hour(at) / 3_600_000.0;
        self.step_end_ms += STEP_MS;
    }

    /// The next push instant (ms from time 0), or `None` past the end.
    fn next_push(&mut self) -> Option<u64> {
        let mut hazard: f64 = Exp1.sample(&mut self.arrivals);
        loop {
            if self.t_ms >= self.step_end_ms as f64 {
                if self.step_end_ms >= self.model.length_ms {
                    return None;
                }
                self.next_step();
            }
            let room = (self.step_end_ms as f64 - self.t_ms) * self.rate_per_ms;
            if hazard < room {
                self.t_ms += hazard / self.rate_per_ms;
                break;
            }
            hazard -= room;
            self.t_ms = self.step_end_ms as f64;
        }
        let at = self.t_ms.floor() as u64;
        (at < self.model.length_ms).then_some(at)
    }

    /// Writes the next pipeline's rows into `buf`; false at the end.
    fn pipeline(&mut self) -> bool {
        let Some(at) = self.next_push() else { return false };
        let m = &self.model;
        let total = *m.cumulative.last().expect("projects");
        let pick = self.pipelines.random::<f64>() * total;
        let p = m.cumulative.iter().position(|&c| pick < c).unwrap_or(m.cumulative.len() - 1);
        let project = &m.projects[p];
        let main = self.pipelines.random::<f64>() < project.main_share;
        let branch = if main { 0 } else { self.pipelines.random_range(1..=m.feature_branches) };
        // Shard counts first, so that the job cap can refuse the whole pipeline.
        self.emitted.clear();
        let mut jobs = 0u64;
        for t in &project.jobs {
            let n = if t.only_main && !main {
                0
            } else if t.parallel.0 == t.parallel.1 {
                t.parallel.0
            } else {
                self.pipelines.random_range(t.parallel.0..=t.parallel.1)
            };
            self.emitted.push((0, n));
            jobs += u64::from(n);
        }
        if let Some(cap) = m.max_jobs
            && self.next_job - 1 + jobs > cap
        {
            return false;
        }
        let pipeline = self.next_pipeline;
        self.next_pipeline += 1;
        for (k, t) in project.jobs.iter().enumerate() {
            let n = self.emitted[k].1;
            self.emitted[k].0 = self.next_job;
            self.needs_text.clear();
            if let Some(needs) = &t.needs {
                for &need in needs {
                    let (first, count) = self.emitted[need];
                    for id in first..first + u64::from(count) {
                        if !self.needs_text.is_empty() {
                            self.needs_text.push(';');
                        }
                        self.needs_text.push_str(itoa::Buffer::new().format(id));
                    }
                }
                if self.needs_text.is_empty() {
                    self.needs_text.push_str("[]");
                }
            }
            for shard in 1..=n {
                let id = self.next_job;
                self.next_job += 1;
                let seconds = t.log_normal.sample(&mut self.durations);
                let duration_ms = (seconds * 1000.0).round().max(0.0) as u64;
                let b = &mut self.buf;
                let _ = write!(b, "{id},{pipeline},{},{}", project.id, t.name);
                if n > 1 {
                    let _ = write!(b, " {shard}/{n}");
                }
                let _ = write!(
                    b,
                    ",{},{},{}.{:03},{}.{:03},{},",
                    t.stage,
                    self.needs_text,
                    at / 1000,
                    at % 1000,
                    duration_ms / 1000,
                    duration_ms % 1000,
                    project.tags
                );
                if t.cache {
                    let _ = write!(b, "{}-", project.name);
                    if branch == 0 {
                        let _ = write!(b, "main,");
                    } else {
                        let _ = write!(b, "feature-{branch},{}-main", project.name);
                    }
                    let _ = write!(
                        b,
                        ",pull-push,{},{},{}.{:03},",
                        project.cache_size,
                        t.changes_cache,
                        project.miss_penalty_ms / 1000,
                        project.miss_penalty_ms % 1000
                    );
                } else {
                    let _ = write!(b, ",,,,,,");
                }
                let _ = writeln!(b, "{},{},{}", project.image, project.image_size, project.retry);
            }
        }
        true
    }
}

impl Read for Generator {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.buf.clear();
            self.pos = 0;
            if !self.pipeline() {
                self.done = true;
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads a model file for `sim trace gen --model`: a TOML file with the keys of
/// `[workload.generate]` at its top level. Errors name the file, line and key.
pub fn read_model_file(
    path: &std::path::Path,
) -> Result<RawGenerate, crate::input_error::InputError> {
    let text = crate::input_file::read_text(path, "the model")?;
    toml::from_str(&text).map_err(|e| crate::scenario::toml_error(path, &text, &e))
}

/// A [`GenModel::from_raw`] message as an [`InputError`] naming where the value came from:
/// the flag that set it (`flags` maps keys to flags, for the keys a flag set), else the key's
/// line in the model file `path` (its text `text`), else `fallback`.
pub fn model_error(
    message: String,
    flags: &[(&str, &str)],
    model: Option<(&std::path::Path, &str)>,
    fallback: &str,
) -> crate::input_error::InputError {
    use crate::input_error::InputError;
    let key = GenModel::error_key(&message);
    if let Some(k) = &key
        && let Some((_, flag)) = flags.iter().find(|(f, _)| f == k)
    {
        return InputError::file(flag, message);
    }
    match (model, key) {
        (Some((path, text)), Some(key)) => {
            let error = InputError::file(path, message);
            crate::config::locate_key_or_parent(error, text, &key)
        }
        (Some((path, _)), None) => InputError::file(path, message),
        (None, _) => InputError::file(fallback, message),
    }
}

/// Writes the trace of `model` with seed `seed` and time 0 at `start` to `out`; returns the
/// number of bytes written.
pub fn write_trace(
    model: GenModel,
    seed: u64,
    start: Timestamp,
    out: &mut impl io::Write,
) -> io::Result<u64> {
    io::copy(&mut Generator::new(model, SeedTree::new(seed), start), out)
}

impl Generator {
    /// Jobs written so far.
    pub fn jobs(&self) -> u64 {
        self.next_job - 1
    }

    /// Pipelines written so far.
    pub fn pipelines(&self) -> u64 {
        self.next_pipeline - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(raw: &RawGenerate, seed: u64) -> String {
        let model = GenModel::from_raw(raw).unwrap();
        let start = crate::scenario::DEFAULT_START.parse().unwrap();
        let mut text = String::new();
        Generator::new(model, SeedTree::new(seed), start).read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let raw = RawGenerate { days: Some(2.0), ..RawGenerate::default() };
        let a = generate(&raw, 5);
        assert_eq!(a, generate(&raw, 5));
        assert_ne!(a, generate(&raw, 6));
        assert!(a.lines().count() > 100, "{} lines", a.lines().count());
    }

    #[test]
    fn needs_name_every_shard_of_the_needed_job() {
        let text = generate(&RawGenerate { days: Some(1.0), ..RawGenerate::default() }, 1);
        let mut reader = crate::trace::TraceReader::from_reader(text.as_bytes(), "gen").unwrap();
        let mut r = crate::trace::TraceRecord::new();
        let mut checked = 0;
        let mut compile_ids = Vec::new();
        while reader.read_next(&mut r).unwrap() {
            if r.name == "compile" {
                compile_ids = vec![r.job_id];
            }
            if r.name.starts_with("test") && r.project_id == 1 {
                assert!(r.needs_given);
                assert_eq!(r.needs, compile_ids, "line {}", r.line);
                checked += 1;
            }
        }
        assert!(checked > 5);
    }

    #[test]
    fn bad_models_name_the_key() {
        let bad = |raw: RawGenerate, needle: &str| {
            let e = GenModel::from_raw(&raw).unwrap_err();
            assert!(e.contains(needle), "{needle:?} not in {e}");
        };
        bad(RawGenerate { days: Some(-1.0), ..Default::default() }, "days");
        bad(
            RawGenerate { timezone: Some("Mars/Olympus".into()), ..Default::default() },
            "timezone",
        );
        bad(RawGenerate { office_hours: Some([18, 9]), ..Default::default() }, "office_hours");
        let mut projects = default_projects();
        projects[1].jobs[2].needs = Some(vec!["deploy-preview".into()]);
        bad(
            RawGenerate { projects: Some(projects), ..Default::default() },
            "projects[1].jobs[2].needs",
        );
        let mut projects = default_projects();
        projects[0].jobs[0].median = 0.0;
        bad(
            RawGenerate { projects: Some(projects), ..Default::default() },
            "projects[0].jobs[0].median",
        );
    }
}
