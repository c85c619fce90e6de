//! Scenarios: raw TOML ([`raw`]) → a validated [`Scenario`] → the core's [`FleetSpec`].
//!
//! ```text
//!   scenario.toml ──toml_edit + --set──► raw::RawScenario ──validate──► Scenario
//!   config.toml   ──toml_edit + --set──► config::LoadedConfig ────────┘    │
//!                                                                          ▼
//!                          Scenario::build(seeds) → FleetSpec, machine types, periods
//! ```
//!
//! `--set KEY=VALUE` goes to the scenario when KEY starts with one of its tables
//! (`scenario`, `runner`, `workload`, `gitlab`, `output`) and to `config.toml` otherwise
//! (`concurrent=8`, `runners[0].limit=4`).

pub mod raw;

use std::path::{Path, PathBuf};

use fleetsim_core::cache::{CacheModel, PullPolicy, RunnerCache, Transfer};
use fleetsim_core::docker_machine::{DockerMachineSpec, IdleSettings};
use fleetsim_core::spec::{ExecutorKind, FleetSpec, Pickup, ProcessSpec, RunnerScope, RunnerSpec};
use fleetsim_core::taskscaler::{AutoscalerSpec, Policy, ScaleFactorRule, Throttle};
use fleetsim_core::{ProjectId, RunnerId};
use rand::RngExt;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::cloud::ec2::{BootTime, CloudSpec, MachineType};
use crate::cloud::prices::{self, Market};
use crate::config::overrides::{Override, PathSegment, apply_override, parse_override};
use crate::config::{
    AutoscalerSettings, Executor, KeySource, MachineSettings, PullPolicy as ConfigPullPolicy,
    RunnerConfig, load_config_str_with_overrides, parse_go_duration_ms,
};
use crate::input_error::InputError;
use crate::periods::{CalendarPeriods, CronDialect, PeriodSet};
use crate::seeds::SeedTree;
use raw::{RawAutoscaler, RawBootTime, RawCache, RawCloud, RawConfigRef, RawScenario};

/// The seed used when a scenario gives none.
pub const DEFAULT_SEED: u64 = 1;

/// The scenario's own top-level tables; `--set` keys starting with them go to the scenario.
const SCENARIO_TABLES: [&str; 8] =
    ["scenario", "runner", "workload", "gitlab", "output", "cloud", "cache", "autoscaler"];

/// The trace's time 0 when `[workload] start` is not given: Monday 2026-03-02 00:00 in
/// Asia/Seoul, the start of the seed week.
pub const DEFAULT_START: &str = "2026-03-02T00:00:00+09:00";

/// docker-machine's amazonec2 defaults, used when `MachineOptions` do not say.
pub const DEFAULT_INSTANCE_TYPE: &str = "t2.micro";

/// When each runner process's feeder makes its first offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollPhase {
    /// Drawn uniformly in `[0, check_interval)` from the seed stream `feeder.phase`.
    Random,
    /// At this many ms after the start of the run.
    Fixed(u64),
}

/// GitLab-side facts about one `[[runners]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabRunner {
    /// Instance, group or project runner.
    pub scope: RunnerScope,
    /// Its tags.
    pub tags: Vec<String>,
    /// Whether it takes untagged jobs.
    pub run_untagged: bool,
    /// Projects served (`None` = all).
    pub projects: Option<Vec<u64>>,
}

impl Default for GitlabRunner {
    fn default() -> Self {
        GitlabRunner {
            scope: RunnerScope::Instance,
            tags: Vec::new(),
            run_untagged: true,
            projects: None,
        }
    }
}

/// Where a scenario's jobs come from.
#[derive(Debug, Clone)]
pub enum Workload {
    /// `[workload] trace`: a trace CSV.
    Trace(PathBuf),
    /// `[workload.generate]`: the seeded generator, fed from the run's seed.
    Generate(Box<crate::workload::generate::GenModel>),
}

/// A validated scenario: everything `sim run` needs, with defaults applied.
#[derive(Debug)]
pub struct Scenario {
    /// The scenario file.
    pub path: PathBuf,
    /// `[scenario] name`.
    pub name: String,
    /// Root seed (`--seed` overrides it).
    pub seed: u64,
    /// The runner's `config.toml`, as GitLab Runner reads it.
    pub config: RunnerConfig,
    /// Where the config came from (its file, or the scenario for an inline one), for errors.
    pub config_file: PathBuf,
    /// Where the config's keys are written, for errors found when the scenario is built.
    pub config_source: KeySource,
    /// Where the scenario's own keys are written, likewise.
    pub source: KeySource,
    /// Warnings from reading the config (unknown keys).
    pub warnings: Vec<String>,
    /// Number of identical runner hosts.
    pub hosts: u32,
    /// `[runner] hosts_share_token`: the hosts use the config's tokens as they are (one
    /// registration, a runner manager per host; default) rather than a token each.
    pub hosts_share_token: bool,
    /// Hourly price of one host, if known.
    pub host_price_per_hour: Option<f64>,
    /// Where the price came from, for the report.
    pub host_price_source: String,
    /// Feeder phase.
    pub poll_phase: PollPhase,
    /// Where the jobs come from.
    pub workload: Workload,
    /// Pick-up mode.
    pub pickup: Pickup,
    /// Long polling duration in ms (0 = off).
    pub long_poll_ms: u64,
    /// `[gitlab] request_latency` in ms: how long a job request to Rails takes.
    pub request_latency_ms: u64,
    /// `[gitlab] adaptive_request_concurrency`: when set, `FF_USE_ADAPTIVE_REQUEST_CONCURRENCY`
    /// for every runner (a what-if); when absent each runner's `[runners.feature_flags]`
    /// value applies, else GitLab Runner's default (on).
    pub adaptive_request_concurrency: Option<bool>,
    /// GitLab side of each `[[runners]]` entry (same length as `config.runners`).
    pub gitlab_runners: Vec<GitlabRunner>,
    /// Report folder from the scenario, if set.
    pub out_dir: Option<PathBuf>,
    /// The simulated cloud.
    pub cloud: CloudSpec,
    /// `[cloud.prices]`: USD per hour by instance type.
    pub price_overrides: std::collections::BTreeMap<String, f64>,
    /// The wall-clock instant of the run's time 0.
    pub start: jiff::Timestamp,
    /// The cache setup.
    pub cache: CacheSetup,
    /// `[autoscaler]`: docker-autoscaler facts and switches.
    pub autoscaler: AutoscalerSetup,
    /// SHA-256 of the scenario text, the config text and the overrides (hex).
    pub sha256: String,
}

/// The scenario's `[autoscaler]` table, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscalerSetup {
    /// The instances' EC2 type (the cloud group's launch template), if given.
    pub instance_type: Option<String>,
    /// Region for its price, if given.
    pub region: Option<String>,
    /// How `scale_factor` combines with `idle_count`.
    pub scale_factor_rule: ScaleFactorRule,
    /// Script slowdown per other job on the same instance.
    pub contention: f64,
}

/// How many Prepare attempts GitLab Runner makes before a job fails ("unable to acquire
/// instance" is retried like any Prepare error, §3.2), and the pause between them.
pub const PREPARE_ATTEMPTS: u64 = 3;
/// The most workers a simulated runner process gets (`concurrent` above it is simulated as
/// this, with a warning). The core keeps a slot per worker, so `concurrent = 1000000000`
/// would otherwise allocate tens of GB before the first job.
pub const MAX_SIMULATED_WORKERS: u32 = 100_000;

/// The highest `[cloud] reclaims_per_month`: one reclaim a minute. Far above any spot
/// market, and low enough that the reclaim events cannot crowd out everything else.
pub const MAX_RECLAIMS_PER_MONTH: f64 = 43_200.0;

/// The pause between Prepare attempts, in ms.
pub const PREPARE_RETRY_PAUSE_MS: u64 = 3_000;

impl Scenario {
    /// Reads and validates a scenario file, applying `--set` overrides.
    pub fn load(path: &Path, sets: &[String]) -> Result<Scenario, InputError> {
        let original = crate::input_file::read_text(path, "the scenario")?;
        let overrides = sets.iter().map(|s| parse_override(s)).collect::<Result<Vec<_>, _>>()?;
        let (for_scenario, for_config): (Vec<Override>, Vec<Override>) =
            overrides.into_iter().partition(|o| {
                matches!(o.path.first(), Some(PathSegment::Key(k)) if SCENARIO_TABLES.contains(&k.as_str()))
            });
        let text = apply_overrides(&original, path, &for_scenario)?;
        // Errors found in the edited text point at the text as written, or name the `--set`
        // that set the value.
        let remap =
            |e: InputError| crate::config::remap_to_original(e, path, &original, &for_scenario);
        let raw: RawScenario =
            toml::from_str(&text).map_err(|e| remap(toml_error(path, &text, &e)))?;
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut hash = Sha256::new();
        hash.update(text.as_bytes());
        for s in sets {
            hash.update(s.as_bytes());
            hash.update([0]);
        }
        let source = KeySource {
            file: path.to_path_buf(),
            text: original.clone(),
            prefix: String::new(),
            overrides: for_scenario.clone(),
        };
        Self::validate(path, &dir, &text, source, raw, &for_config, hash).map_err(remap)
    }

    fn validate(
        path: &Path,
        dir: &Path,
        text: &str,
        source: KeySource,
        raw: RawScenario,
        config_sets: &[Override],
        mut hash: Sha256,
    ) -> Result<Scenario, InputError> {
        let err = |span: std::ops::Range<usize>, key: &str, msg: String| {
            InputError::file(path, msg).at_offset(text, span.start).key(key)
        };
        let name = raw.scenario.name.get_ref().trim().to_owned();
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(err(
                raw.scenario.name.span(),
                "scenario.name",
                "expected a non-empty name without slashes (it names the report folder)".into(),
            ));
        }
        let seed = match &raw.scenario.seed {
            None => DEFAULT_SEED,
            Some(s) => u64::try_from(*s.get_ref()).map_err(|_| {
                err(s.span(), "scenario.seed", "expected a non-negative integer".into())
            })?,
        };

        let config_span = raw.runner.config.span();
        let mut config_file = path.to_path_buf();
        let mut config_source = KeySource {
            file: path.to_path_buf(),
            text: source.text.clone(),
            prefix: "runner.config.".to_owned(),
            overrides: config_sets.to_vec(),
        };
        let loaded = match raw.runner.config.into_inner() {
            RawConfigRef::Path(p) => {
                let config_path = dir.join(&p);
                let config_text =
                    crate::input_file::read_text(&config_path, "the file").map_err(|e| {
                        err(
                            config_span.clone(),
                            "runner.config",
                            format!("{}: {}", config_path.display(), e.message),
                        )
                    })?;
                hash.update(config_text.as_bytes());
                config_file = config_path.clone();
                let loaded =
                    load_config_str_with_overrides(&config_text, &config_path, config_sets)?;
                config_source.file = config_path;
                config_source.text = config_text;
                config_source.prefix = String::new();
                loaded
            }
            RawConfigRef::Inline(table) => {
                let config_text = toml::to_string(&table).map_err(|e| {
                    err(
                        config_span.clone(),
                        "runner.config",
                        format!("cannot re-read the inline config: {e}"),
                    )
                })?;
                crate::config::load_inline_config(
                    &config_text,
                    path,
                    text,
                    "runner.config",
                    config_sets,
                )?
            }
        };

        let hosts = match &raw.runner.hosts {
            None => 1,
            Some(h) => {
                u32::try_from(*h.get_ref()).ok().filter(|&h| (1..=64).contains(&h)).ok_or_else(
                    || err(h.span(), "runner.hosts", "expected an integer from 1 to 64".into()),
                )?
            }
        };
        let total_runners = hosts as usize * loaded.config.runners.len();
        if total_runners > fleetsim_core::spec::MAX_RUNNERS {
            return Err(err(
                config_span,
                "runner.hosts",
                format!(
                    "{hosts} hosts × {} [[runners]] entries = {total_runners}; at most {} are supported",
                    loaded.config.runners.len(),
                    fleetsim_core::spec::MAX_RUNNERS
                ),
            ));
        }

        let region = raw.runner.host_region.as_ref().map(|r| r.get_ref().clone());
        let (host_price_per_hour, host_price_source) = match (
            &raw.runner.host_price_per_hour,
            &raw.runner.host_type,
        ) {
            (Some(p), _) => {
                if !(p.get_ref().is_finite() && *p.get_ref() >= 0.0) {
                    return Err(err(
                        p.span(),
                        "runner.host_price_per_hour",
                        "expected a price ≥ 0 in USD per hour".into(),
                    ));
                }
                (Some(*p.get_ref()), "runner.host_price_per_hour".to_owned())
            }
            (None, Some(t)) => {
                let region = region.as_deref().unwrap_or(prices::DEFAULT_REGION);
                let price = prices::hourly_usd(t.get_ref(), region, Market::OnDemand).ok_or_else(|| {
                    err(
                        t.span(),
                        "runner.host_type",
                        format!(
                            "no built-in price for {} in {region}; the table has {}; give runner.host_price_per_hour",
                            t.get_ref(),
                            prices::known()
                        ),
                    )
                })?;
                (Some(price), format!("built-in on-demand price of {} in {region}", t.get_ref()))
            }
            (None, None) => {
                (None, "none given (runner.host_type or runner.host_price_per_hour)".to_owned())
            }
        };

        let poll_phase = match &raw.runner.poll_phase {
            None => PollPhase::Random,
            Some(s) if s.get_ref() == "random" => PollPhase::Random,
            Some(s) => PollPhase::Fixed(duration(s, "runner.poll_phase", path, text)?),
        };

        let pickup = match raw.gitlab.pickup.as_ref().map(|p| (p.get_ref().as_str(), p.span())) {
            None | Some(("polling", _)) => Pickup::Polling,
            Some(("immediate", _)) => Pickup::Immediate,
            Some((other, span)) => {
                return Err(err(
                    span,
                    "gitlab.pickup",
                    format!("expected \"polling\" or \"immediate\", found {other:?}"),
                ));
            }
        };
        let long_poll_ms = match &raw.gitlab.long_polling {
            None => 0,
            Some(s) => duration(s, "gitlab.long_polling", path, text)?,
        };
        let request_latency_ms = match &raw.gitlab.request_latency {
            None => fleetsim_core::spec::DEFAULT_REQUEST_LATENCY_MS,
            Some(s) => duration(s, "gitlab.request_latency", path, text)?,
        };

        let n_entries = loaded.config.runners.len();
        if raw.gitlab.runners.len() > n_entries {
            return Err(source.error(&format!("gitlab.runners[{n_entries}]"), format!(
                "{} [[gitlab.runners]] sections but the config has only {n_entries} [[runners]] entries",
                raw.gitlab.runners.len()
            )));
        }
        let mut gitlab_runners = Vec::with_capacity(n_entries);
        for (i, g) in raw.gitlab.runners.iter().enumerate() {
            let scope = match g.scope.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
                None | Some(("instance", _)) => RunnerScope::Instance,
                Some(("group", _)) => RunnerScope::Group,
                Some(("project", _)) => RunnerScope::Project,
                Some((other, span)) => {
                    return Err(err(
                        span,
                        &format!("gitlab.runners[{i}].scope"),
                        format!("expected \"instance\", \"group\" or \"project\", found {other:?}"),
                    ));
                }
            };
            gitlab_runners.push(GitlabRunner {
                scope,
                tags: g
                    .tags
                    .iter()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect(),
                run_untagged: g.run_untagged.unwrap_or(g.tags.is_empty()),
                projects: g.projects.clone(),
            });
        }
        gitlab_runners.resize(n_entries, GitlabRunner::default());

        let cloud = cloud_spec(&raw.cloud, path, text)?;
        let mut price_overrides = std::collections::BTreeMap::new();
        for (ty, price) in &raw.cloud.prices {
            if !(price.get_ref().is_finite() && *price.get_ref() >= 0.0) {
                return Err(err(
                    price.span(),
                    &format!("cloud.prices.{ty}"),
                    "expected a price ≥ 0 in USD per hour".into(),
                ));
            }
            price_overrides.insert(ty.clone(), *price.get_ref());
        }
        let start = match &raw.workload.start {
            None => DEFAULT_START.parse().expect("valid default start"),
            Some(s) => crate::trace::record::parse_instant(s.get_ref())
                .map_err(|e| err(s.span(), "workload.start", e))?,
        };

        let cache = cache_setup(&raw.cache, &loaded.config, path, text)?;
        let autoscaler = autoscaler_setup(&raw.autoscaler, path, text)?;
        let workload = match (&raw.workload.trace, &raw.workload.generate) {
            (Some(trace), None) => Workload::Trace(dir.join(trace.get_ref())),
            (None, Some(generate)) => Workload::Generate(Box::new(
                crate::workload::generate::GenModel::from_raw(generate.get_ref()).map_err(|e| {
                    match crate::workload::generate::GenModel::error_key(&e) {
                        Some(k) => source.error(
                            &format!("workload.generate.{k}"),
                            format!("bad generator model: {e}"),
                        ),
                        None => err(
                            generate.span(),
                            "workload.generate",
                            format!("bad generator model: {e}"),
                        ),
                    }
                })?,
            )),
            (Some(trace), Some(_)) => {
                return Err(err(
                    trace.span(),
                    "workload",
                    "give either `trace` or a [workload.generate] table, not both".into(),
                ));
            }
            (None, None) => {
                return Err(InputError::file(
                    path,
                    "[workload] needs `trace = \"file.csv\"` or a [workload.generate] table",
                )
                .key("workload"));
            }
        };

        let mut warnings = loaded.warnings;
        if loaded.config.concurrent > MAX_SIMULATED_WORKERS {
            warnings.push(format!(
                "{}: `concurrent` = {} is simulated as {MAX_SIMULATED_WORKERS} workers per \
                 host (fleetsim's bound: it keeps a slot per worker); GitLab Runner accepts \
                 the number, and the results differ only if one host would run more than \
                 {MAX_SIMULATED_WORKERS} jobs at once",
                config_file.display(),
                loaded.config.concurrent
            ));
        }

        Ok(Scenario {
            path: path.to_path_buf(),
            name,
            seed,
            warnings,
            config: loaded.config,
            config_file,
            config_source,
            source,
            hosts,
            hosts_share_token: raw.runner.hosts_share_token.unwrap_or(true),
            host_price_per_hour,
            host_price_source,
            poll_phase,
            workload,
            pickup,
            long_poll_ms,
            request_latency_ms,
            adaptive_request_concurrency: raw.gitlab.adaptive_request_concurrency,
            gitlab_runners,
            out_dir: raw.output.dir.map(PathBuf::from),
            cloud,
            price_overrides,
            start,
            cache,
            autoscaler,
            sha256: hex(&hash.finalize()),
        })
    }

    /// The runner names of the fleet, indexed like `RunnerId` (host by host).
    pub fn runner_names(&self) -> Vec<String> {
        (0..self.hosts)
            .flat_map(|h| {
                self.config.runners.iter().map(move |r| {
                    if self.hosts == 1 { r.name.clone() } else { format!("{}@host-{h}", r.name) }
                })
            })
            .collect()
    }

    /// The host names, indexed like `HostId`.
    pub fn host_names(&self) -> Vec<String> {
        (0..self.hosts).map(|h| format!("host-{h}")).collect()
    }

    /// The core's fleet description, the machine type of each runner and its autoscaling
    /// periods. Feeder phases come from the seed stream `feeder.phase`. Fails for executors
    /// that are not simulated and for machine settings the cloud cannot price.
    pub fn build(&self, seeds: SeedTree) -> Result<Build, InputError> {
        let mut phase_rng = seeds.stream("feeder.phase");
        let mut runners = Vec::with_capacity(self.config.runners.len());
        let mut types = Vec::with_capacity(self.config.runners.len());
        let mut periods = Vec::new();
        for (i, (entry, gitlab)) in self.config.runners.iter().zip(&self.gitlab_runners).enumerate()
        {
            let (executor, machine_type, schedule) = match (&entry.executor, &entry.machine) {
                (Executor::Docker, _) => (ExecutorKind::Docker, None, None),
                (Executor::DockerMachine, Some(m)) => {
                    let (spec, schedule) = self.machine_spec(i, m)?;
                    (ExecutorKind::DockerMachine(spec), Some(self.machine_type(i, m)?), schedule)
                }
                (Executor::DockerMachine, None) => {
                    return Err(self.config_source.error(
                        &format!("runners[{i}].machine"),
                        format!(
                            "runner {:?} uses docker+machine but has no [runners.machine] section",
                            entry.name
                        ),
                    ));
                }
                (Executor::DockerAutoscaler, _) => {
                    let Some(a) = &entry.autoscaler else {
                        return Err(self.config_source.error(
                            &format!("runners[{i}].autoscaler"),
                            format!(
                                "runner {:?} uses docker-autoscaler but has no [runners.autoscaler] section",
                                entry.name
                            ),
                        ));
                    };
                    let (spec, schedule) = self.autoscaler_spec(i, a)?;
                    let ty = MachineType {
                        slots: spec.capacity_per_instance,
                        boot: self.cloud.instance_boot,
                        ..self.autoscaler_type(i, a)?
                    };
                    (ExecutorKind::DockerAutoscaler(spec), Some(ty), schedule)
                }
                (other, _) => {
                    return Err(self.config_source.error(&format!("runners[{i}].executor"), format!(
                        "runner {:?} uses executor {other}; `sim run` simulates the docker, docker+machine \
                         and docker-autoscaler executors",
                        entry.name
                    )));
                }
            };
            types.push(machine_type);
            periods.push(schedule);
            runners.push(RunnerSpec {
                name: entry.name.clone(),
                executor,
                limit: entry.limit,
                request_concurrency: entry.request_concurrency.max(1),
                // GitLab Runner 19.4 `(*RunnerSettings).IsFeatureFlagOn`: the runner's
                // `[runners.feature_flags]`, else the flag's default, true
                // (`helpers/featureflags/flags.go`).
                adaptive_request_concurrency: self
                    .adaptive_request_concurrency
                    .or(entry.adaptive_request_concurrency)
                    .unwrap_or(true),
                strict_check_interval: entry.strict_check_interval,
                scope: gitlab.scope,
                projects: gitlab
                    .projects
                    .as_ref()
                    .map(|ps| ps.iter().map(|&p| ProjectId(p)).collect()),
                tags: gitlab.tags.clone(),
                run_untagged: gitlab.run_untagged,
                cache: RunnerCache {
                    // By default what GitLab Runner 19.4 does with the section (no adapter,
                    // so local only, for the legacy flat S3 keys); `[cache] distributed`
                    // models another cache.
                    distributed: self.cache.distributed.unwrap_or(entry.cache.runner_has_adapter()),
                    shared: entry.cache.shared,
                    // `runner/<short token>`: entries with the same token share it.
                    token: Some(
                        self.config
                            .runners
                            .iter()
                            .position(|e| e.token == entry.token)
                            .expect("the entry itself") as u32,
                    ),
                    pull_policy: match entry.docker.pull_policy.first() {
                        Some(ConfigPullPolicy::IfNotPresent) => PullPolicy::IfNotPresent,
                        Some(ConfigPullPolicy::Never) => PullPolicy::Never,
                        _ => PullPolicy::Always,
                    },
                },
                has_token: crate::config::validated::has_token(&entry.token),
            });
        }
        let check_interval_ms = self.config.check_interval_ms;
        let n_entries = self.config.runners.len() as u32;
        let processes = (0..self.hosts)
            .map(|h| ProcessSpec {
                name: format!("host-{h}"),
                concurrent: self.config.concurrent.min(MAX_SIMULATED_WORKERS),
                check_interval_ms,
                first_offer_ms: match self.poll_phase {
                    PollPhase::Random => phase_rng.random_range(0..check_interval_ms),
                    PollPhase::Fixed(ms) => ms,
                },
                runners: runners
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        if !self.hosts_share_token {
                            // Registered separately: each host has its own tokens.
                            r.cache.token = r.cache.token.map(|t| t + h * n_entries);
                        }
                        r
                    })
                    .collect(),
            })
            .collect();
        let spec = FleetSpec {
            processes,
            pickup: self.pickup,
            long_poll_ms: self.long_poll_ms,
            request_latency_ms: self.request_latency_ms,
            cache: self.cache.model,
            skip_idle_offers: true,
        };
        spec.validate().map_err(|e| InputError::file(&self.path, e).key("gitlab.pickup"))?;
        let n = runners.len();
        let mut all_periods = Vec::new();
        let mut all_types = Vec::new();
        for h in 0..self.hosts as usize {
            for (i, p) in periods.iter().enumerate() {
                if let Some(p) = p {
                    all_periods.push((RunnerId((h * n + i) as u16), p.clone()));
                }
            }
            all_types.extend(types.iter().cloned());
        }
        Ok(Build { spec, machine_types: all_types, periods: all_periods })
    }

    fn machine_spec(
        &self,
        i: usize,
        m: &MachineSettings,
    ) -> Result<(DockerMachineSpec, Option<CalendarPeriods>), InputError> {
        let root = IdleSettings {
            idle_count: m.idle_count,
            idle_count_min: m.idle_count_min,
            idle_scale_factor: m.idle_scale_factor,
            idle_time_ms: m.idle_time_s * 1000,
        };
        let mut sections = Vec::new();
        let mut sets = Vec::new();
        for (k, a) in m.autoscaling.iter().enumerate() {
            sections.push(IdleSettings {
                idle_count: a.idle_count,
                idle_count_min: a.idle_count_min,
                idle_scale_factor: a.idle_scale_factor,
                idle_time_ms: a.idle_time_s * 1000,
            });
            sets.push(self.period_set(
                &a.periods,
                a.timezone.as_deref(),
                CronDialect::Seconds7,
                format!("runners[{i}].machine.autoscaling[{k}].Periods"),
            )?);
        }
        let schedule = (!sets.is_empty()).then(|| CalendarPeriods::new(self.start, sets));
        let spec = DockerMachineSpec {
            root,
            sections,
            max_growth_rate: m.max_growth_rate,
            max_builds: m.max_builds,
        };
        Ok((spec, schedule))
    }

    /// One section's or policy's periods; `key` names it in errors. A missing time zone is
    /// the runner host's local one, taken as UTC (see the README).
    fn period_set(
        &self,
        periods: &[String],
        timezone: Option<&str>,
        dialect: CronDialect,
        key: String,
    ) -> Result<PeriodSet, InputError> {
        PeriodSet::parse(periods, timezone.unwrap_or(""), dialect)
            .map_err(|e| self.config_source.error(&key, format!("bad period: {e}")))
    }

    /// The core's docker-autoscaler spec and the policies' periods.
    fn autoscaler_spec(
        &self,
        i: usize,
        a: &AutoscalerSettings,
    ) -> Result<(AutoscalerSpec, Option<CalendarPeriods>), InputError> {
        let mut policies = Vec::new();
        let mut sets = Vec::new();
        for (k, p) in a.policies.iter().enumerate() {
            policies.push(Policy {
                idle_count: p.idle_count,
                idle_time_ms: p.idle_time_ms,
                scale_factor: p.scale_factor,
                scale_factor_limit: p.scale_factor_limit,
                preemptive: p.preemptive_mode,
            });
            sets.push(self.period_set(
                &p.periods,
                p.timezone.as_deref(),
                CronDialect::Minutes5,
                format!("runners[{i}].autoscaler.policy[{k}].periods"),
            )?);
        }
        let capacity = a.capacity_per_instance.max(1);
        // taskscaler's burst default: max_instances, or the limit when max_instances is unset.
        let throttle = Throttle {
            per_s: a.scale_throttle.limit_per_s,
            burst: a
                .scale_throttle
                .burst
                .or((a.max_instances > 0).then_some(a.max_instances))
                .or(a.scale_throttle.limit_per_s)
                .unwrap_or(1)
                .max(1),
        };
        let spec = AutoscalerSpec {
            capacity_per_instance: capacity,
            max_use_count: a.max_use_count,
            max_instances: a.max_instances,
            acquire_wait_ms: PREPARE_ATTEMPTS * a.instance_acquire_timeout_ms
                + (PREPARE_ATTEMPTS - 1) * PREPARE_RETRY_PAUSE_MS,
            policies,
            default_policy: Policy::default(),
            throttle,
            scale_factor_rule: self.autoscaler.scale_factor_rule,
            contention: self.autoscaler.contention,
        };
        spec.validate()
            .map_err(|e| self.config_source.error(&format!("runners[{i}].autoscaler"), e))?;
        let schedule = (!sets.is_empty()).then(|| CalendarPeriods::new(self.start, sets));
        Ok((spec, schedule))
    }

    /// The docker-autoscaler instances' type: `[autoscaler] instance_type` in the scenario
    /// (the cloud group's launch template is not in `config.toml`), priced in
    /// `[autoscaler] region`, else the plugin's `region`, else the default region. Errors
    /// name the scenario's `instance_type` line.
    fn autoscaler_type(&self, i: usize, a: &AutoscalerSettings) -> Result<MachineType, InputError> {
        let Some(instance_type) = self.autoscaler.instance_type.clone() else {
            return Err(self.source.error(
                "autoscaler.instance_type",
                format!(
                    "runner {:?} uses docker-autoscaler: set [autoscaler] instance_type in the scenario \
                     (the instance group's type lives in its launch template, not in config.toml)",
                    self.config.runners[i].name
                ),
            ));
        };
        let plugin_region = a.plugin_config.0.get("region").and_then(|v| v.as_str());
        let region = self
            .autoscaler
            .region
            .as_deref()
            .or(plugin_region)
            .unwrap_or(prices::DEFAULT_REGION)
            .to_owned();
        let blame = |message: String| {
            self.source.error(
                "autoscaler.instance_type",
                format!("{message} (runner {:?})", self.config.runners[i].name),
            )
        };
        self.price_type(instance_type, region, &blame)
    }

    /// The docker+machine instances' type and region, from `MachineOptions` in `config.toml`
    /// (docker-machine's defaults when absent). Errors name the `amazonec2-instance-type`
    /// entry's line (or `MachineOptions`, for the default type).
    fn machine_type(&self, i: usize, m: &MachineSettings) -> Result<MachineType, InputError> {
        let options = &m.machine_options;
        let key = match options.iter().rposition(|o| o.key == "amazonec2-instance-type") {
            Some(k) => format!("runners[{i}].machine.MachineOptions[{k}]"),
            None => format!("runners[{i}].machine.MachineOptions"),
        };
        let instance_type = options.instance_type().unwrap_or(DEFAULT_INSTANCE_TYPE).to_owned();
        let region = options.region().unwrap_or(prices::DEFAULT_REGION).to_owned();
        let blame = |message: String| self.config_source.error(&key, message);
        self.price_type(instance_type, region, &blame)
    }

    /// Prices an instance type in a region (built-in table or `[cloud.prices]`) with its spot
    /// interruption hazard; `blame` makes the error, naming the file and line the type came
    /// from.
    fn price_type(
        &self,
        instance_type: String,
        region: String,
        blame: &dyn Fn(String) -> InputError,
    ) -> Result<MachineType, InputError> {
        let price_per_hour = match self.price_overrides.get(&instance_type) {
            Some(&p) => p,
            None => prices::hourly_usd(&instance_type, &region, self.cloud.market).ok_or_else(|| {
                blame(format!(
                    "no built-in price for {instance_type} in {region} (the table has {}); add it under [cloud.prices] in the scenario",
                    prices::known()
                ))
            })?,
        };
        let hazard_per_hour = match self.cloud.market {
            Market::OnDemand => 0.0,
            Market::Spot => {
                let p = match self.cloud.interruption_per_month {
                    Some(p) => p,
                    None => prices::interruption_band(&instance_type, &region).ok_or_else(|| {
                        blame(format!(
                            "no Spot Advisor band for {instance_type} in {region}; set cloud.spot_interruptions_per_month in the scenario"
                        ))
                    })?,
                };
                prices::hazard_per_hour(p)
            }
        };
        Ok(MachineType {
            instance_type,
            region,
            price_per_hour,
            hazard_per_hour,
            slots: 1,
            boot: self.cloud.boot,
        })
    }
}

/// What a scenario builds for a run.
#[derive(Debug)]
pub struct Build {
    /// The core's fleet description.
    pub spec: FleetSpec,
    /// Machine type of each runner, indexed by `RunnerId` (`None` without autoscaling).
    pub machine_types: Vec<Option<MachineType>>,
    /// Autoscaling periods of the docker+machine runners that have any.
    pub periods: Vec<(RunnerId, CalendarPeriods)>,
}

impl Build {
    /// Whether any runner autoscales machines.
    pub fn has_machines(&self) -> bool {
        self.machine_types.iter().any(Option::is_some)
    }
}

/// Where the distributed cache lives, for its price.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheBackend {
    /// AWS S3: requests and GB-months at the reference's prices.
    S3,
    /// A MinIO (or other self-hosted) server: priced as the machine it runs on.
    Server {
        /// USD per hour (0 when no type was given).
        price_per_hour: f64,
        /// Where the price came from.
        source: String,
    },
}

/// The cache setup of a scenario (`[cache]` plus what `[runners.cache]` implies).
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSetup {
    /// The transfer model and expiry.
    pub model: CacheModel,
    /// `[cache] distributed`, overriding for every runner what GitLab Runner 19.4 makes of
    /// `[runners.cache]` ([`crate::config::validated::CacheSettings::runner_has_adapter`]).
    pub distributed: Option<bool>,
    /// Where the distributed cache lives.
    pub backend: CacheBackend,
}

/// AWS S3 prices, us-east-1 (reference prices-and-timings.md): USD.
pub mod s3_prices {
    /// Standard storage, first 50 TB, per GB-month.
    pub const STORAGE_GB_MONTH: f64 = 0.023;
    /// PUT, COPY, POST, LIST per 1,000 requests.
    pub const PUT_PER_1000: f64 = 0.005;
    /// GET and others per 1,000 requests.
    pub const GET_PER_1000: f64 = 0.0004;
}

fn autoscaler_setup(
    raw: &RawAutoscaler,
    path: &Path,
    text: &str,
) -> Result<AutoscalerSetup, InputError> {
    let err = |span: std::ops::Range<usize>, key: &str, msg: String| {
        InputError::file(path, msg).at_offset(text, span.start).key(key)
    };
    let scale_factor_rule = match raw.scale_factor_rule.as_ref() {
        None => ScaleFactorRule::Max,
        Some(r) => match r.get_ref().as_str() {
            "max" => ScaleFactorRule::Max,
            "on-top" => ScaleFactorRule::OnTop,
            other => {
                return Err(err(
                    r.span(),
                    "autoscaler.scale_factor_rule",
                    format!("expected \"max\" or \"on-top\", found {other:?}"),
                ));
            }
        },
    };
    let contention = match &raw.contention {
        None => 0.0,
        Some(c) if c.get_ref().is_finite() && *c.get_ref() >= 0.0 => *c.get_ref(),
        Some(c) => {
            return Err(err(
                c.span(),
                "autoscaler.contention",
                format!(
                    "expected a number ≥ 0 (0.25 = 25 % slower per other job), found {}",
                    c.get_ref()
                ),
            ));
        }
    };
    let nonempty =
        |v: &Option<toml::Spanned<String>>, key: &str| -> Result<Option<String>, InputError> {
            match v {
                Some(t) if t.get_ref().trim().is_empty() => {
                    Err(err(t.span(), key, "expected an EC2 name such as \"t3.medium\"".into()))
                }
                Some(t) => Ok(Some(t.get_ref().trim().to_owned())),
                None => Ok(None),
            }
        };
    Ok(AutoscalerSetup {
        instance_type: nonempty(&raw.instance_type, "autoscaler.instance_type")?,
        region: nonempty(&raw.region, "autoscaler.region")?,
        scale_factor_rule,
        contention,
    })
}

fn cache_setup(
    raw: &RawCache,
    config: &RunnerConfig,
    path: &Path,
    text: &str,
) -> Result<CacheSetup, InputError> {
    let err = |span: std::ops::Range<usize>, key: &str, msg: String| {
        InputError::file(path, msg).at_offset(text, span.start).key(key)
    };
    let rate = |v: &Option<Spanned<String>>, key: &str, default: u64| -> Result<u64, InputError> {
        let Some(v) = v else { return Ok(default) };
        let t = v.get_ref().trim();
        let bytes = t.strip_suffix("/s").map(crate::trace::parse_size_bytes);
        match bytes {
            Some(Ok(b)) if b > 0 => Ok(b),
            _ => {
                Err(err(v.span(), key, format!("expected a rate such as \"100MB/s\", found {t:?}")))
            }
        }
    };
    let d = Transfer::default();
    let transfer = Transfer {
        remote_bytes_per_s: rate(&raw.bandwidth, "cache.bandwidth", d.remote_bytes_per_s)?,
        remote_latency_ms: match &raw.latency {
            Some(l) => duration(l, "cache.latency", path, text)?,
            None => d.remote_latency_ms,
        },
        local_bytes_per_s: rate(
            &raw.local_bandwidth,
            "cache.local_bandwidth",
            d.local_bytes_per_s,
        )?,
        registry_bytes_per_s: rate(
            &raw.registry_bandwidth,
            "cache.registry_bandwidth",
            d.registry_bytes_per_s,
        )?,
        registry_latency_ms: match &raw.registry_latency {
            Some(l) => duration(l, "cache.registry_latency", path, text)?,
            None => d.registry_latency_ms,
        },
    };
    let expiry_ms = match &raw.expiry_days {
        None => None,
        Some(e) if e.get_ref().is_finite() && *e.get_ref() > 0.0 => {
            Some((e.get_ref() * 86_400_000.0).round() as u64)
        }
        Some(e) => {
            return Err(err(e.span(), "cache.expiry_days", "expected a number of days > 0".into()));
        }
    };
    // Default backend: AWS when the S3 address is AWS's (or absent), a server otherwise.
    let address = config
        .runners
        .iter()
        .find_map(|r| r.cache.s3.as_ref().and_then(|s| s.server_address.clone()));
    let aws = address.as_deref().is_none_or(|a| a.is_empty() || a.contains("amazonaws.com"));
    let backend_name = match &raw.backend {
        Some(b) => match b.get_ref().as_str() {
            "s3" | "minio" => b.get_ref().clone(),
            other => {
                return Err(err(
                    b.span(),
                    "cache.backend",
                    format!("expected \"s3\" or \"minio\", found {other:?}"),
                ));
            }
        },
        None if aws => "s3".into(),
        None => "minio".into(),
    };
    let backend = if backend_name == "s3" {
        CacheBackend::S3
    } else {
        match &raw.server {
            None => CacheBackend::Server {
                price_per_hour: 0.0,
                source: "no cache.server type given".into(),
            },
            Some(t) => {
                let region = raw
                    .server_region
                    .as_ref()
                    .map_or(prices::DEFAULT_REGION.to_owned(), |r| r.get_ref().clone());
                let price = prices::hourly_usd(t.get_ref(), &region, Market::OnDemand).ok_or_else(
                    || {
                        err(
                            t.span(),
                            "cache.server",
                            format!(
                                "no built-in price for {} in {region}; the table has {}",
                                t.get_ref(),
                                prices::known()
                            ),
                        )
                    },
                )?;
                CacheBackend::Server {
                    price_per_hour: price,
                    source: format!("{} on demand in {region}", t.get_ref()),
                }
            }
        }
    };
    Ok(CacheSetup {
        model: CacheModel { transfer, expiry_ms },
        distributed: raw.distributed,
        backend,
    })
}

fn cloud_spec(raw: &RawCloud, path: &Path, text: &str) -> Result<CloudSpec, InputError> {
    let err = |span: std::ops::Range<usize>, key: &str, msg: String| {
        InputError::file(path, msg).at_offset(text, span.start).key(key)
    };
    let mut c = CloudSpec::default();
    if let Some(m) = &raw.market {
        c.market = match m.get_ref().as_str() {
            "on-demand" => Market::OnDemand,
            "spot" => Market::Spot,
            other => {
                return Err(err(
                    m.span(),
                    "cloud.market",
                    format!("expected \"on-demand\" or \"spot\", found {other:?}"),
                ));
            }
        };
    }
    let boot_time = |b: &Spanned<RawBootTime>, key: &str| -> Result<BootTime, InputError> {
        let dur = |s: &str| {
            let ms = parse_go_duration_ms(s).map_err(|e| {
                err(b.span(), key, format!("expected a duration such as \"60s\": {e}"))
            })?;
            bounded_delay(ms, s).map_err(|e| err(b.span(), key, e))
        };
        Ok(match b.get_ref() {
            RawBootTime::Fixed(s) => BootTime::Fixed(dur(s)?),
            RawBootTime::LogNormal { median, p99 } => {
                let (median_ms, p99_ms) = (dur(median)?, dur(p99)?);
                if median_ms == 0 || p99_ms <= median_ms {
                    return Err(err(b.span(), key, "expected 0 < median < p99".into()));
                }
                BootTime::LogNormal { median_ms, p99_ms }
            }
        })
    };
    if let Some(b) = &raw.boot_time {
        c.boot = boot_time(b, "cloud.boot_time")?;
    }
    if let Some(b) = &raw.instance_boot_time {
        c.instance_boot = boot_time(b, "cloud.instance_boot_time")?;
    }
    let probability = |v: &Option<Spanned<f64>>, key: &str| -> Result<Option<f64>, InputError> {
        match v {
            None => Ok(None),
            Some(p) if (0.0..=1.0).contains(p.get_ref()) => Ok(Some(*p.get_ref())),
            Some(p) => Err(err(p.span(), key, "expected a probability from 0 to 1".into())),
        }
    };
    if let Some(p) =
        probability(&raw.creation_failure_probability, "cloud.creation_failure_probability")?
    {
        c.failure_probability = p;
    }
    c.interruption_per_month =
        probability(&raw.spot_interruptions_per_month, "cloud.spot_interruptions_per_month")?;
    if let Some(r) = &raw.reclaims_per_month {
        if !(r.get_ref().is_finite() && (0.0..=MAX_RECLAIMS_PER_MONTH).contains(r.get_ref())) {
            return Err(err(
                r.span(),
                "cloud.reclaims_per_month",
                format!(
                    "expected a rate from 0 to {MAX_RECLAIMS_PER_MONTH} (one reclaim a minute), \
                     found {}",
                    r.get_ref()
                ),
            ));
        }
        c.reclaims_per_month = *r.get_ref();
    }
    if let Some(d) = &raw.creation_failure_min {
        c.failure_ms.0 = duration(d, "cloud.creation_failure_min", path, text)?;
    }
    if let Some(d) = &raw.creation_failure_max {
        c.failure_ms.1 = duration(d, "cloud.creation_failure_max", path, text)?;
    }
    if c.failure_ms.0 > c.failure_ms.1 {
        let message =
            format!("{} ms is above creation_failure_max ({} ms)", c.failure_ms.0, c.failure_ms.1);
        return Err(match (&raw.creation_failure_min, &raw.creation_failure_max) {
            (Some(min), _) => err(min.span(), "cloud.creation_failure_min", message),
            (None, Some(max)) => err(
                max.span(),
                "cloud.creation_failure_max",
                format!(
                    "{} ms is below creation_failure_min ({} ms)",
                    c.failure_ms.1, c.failure_ms.0
                ),
            ),
            (None, None) => InputError::file(path, message).key("cloud.creation_failure_min"),
        });
    }
    if let Some(d) = &raw.removal_time {
        c.removal_ms = duration(d, "cloud.removal_time", path, text)?;
    }
    Ok(c)
}

/// The longest delay fleetsim's own scenario keys take (`poll_phase`, `long_polling`,
/// `request_latency`, `[cache] latency` and `registry_latency`, `[cloud] boot_time`,
/// `instance_boot_time`, `creation_failure_min`/`max`, `removal_time`): one day. Real values
/// are seconds to minutes; a larger one is a typo (`"1000000h"`) that would only stall the run.
pub const MAX_MODEL_DELAY_MS: u64 = 24 * 3600 * 1000;

fn duration(s: &Spanned<String>, key: &str, path: &Path, text: &str) -> Result<u64, InputError> {
    let error =
        |message: String| InputError::file(path, message).at_offset(text, s.span().start).key(key);
    let ms = parse_go_duration_ms(s.get_ref()).map_err(|e| {
        error(format!("expected a duration such as \"0s\", \"50s\" or \"1m30s\": {e}"))
    })?;
    bounded_delay(ms, s.get_ref()).map_err(error)
}

/// Refuses a delay of fleetsim's own above [`MAX_MODEL_DELAY_MS`].
fn bounded_delay(ms: u64, text: &str) -> Result<u64, String> {
    if ms > MAX_MODEL_DELAY_MS {
        return Err(format!(
            "{text:?} is longer than 24h, the longest delay fleetsim's own keys take (real \
             values are seconds to minutes)"
        ));
    }
    Ok(ms)
}

fn apply_overrides(text: &str, path: &Path, overrides: &[Override]) -> Result<String, InputError> {
    if overrides.is_empty() {
        return Ok(text.to_owned());
    }
    let mut doc: toml_edit::DocumentMut =
        text.parse().map_err(|e: toml_edit::TomlError| match e.span() {
            Some(span) => InputError::toml_syntax(path, text, e.message(), span.start),
            None => InputError::file(path, e.message().trim()),
        })?;
    for o in overrides {
        apply_override(&mut doc, o)?;
    }
    Ok(doc.to_string())
}

/// Turns a toml parse or type error into an [`InputError`] with line, column and key (the
/// dotted path of the value the error points at, such as `runner.hosts`).
pub fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> InputError {
    let message = e
        .message()
        .trim()
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected u64", "expected a non-negative integer");
    let Some(span) = e.span() else {
        return InputError::file(path, message);
    };
    match crate::config::key_path_at(text, span.start) {
        Some(key) => InputError::file(path, message).at_offset(text, span.start).key(key),
        // Not inside a key's value: a syntax error.
        None => InputError::toml_syntax(path, text, &message, span.start),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
