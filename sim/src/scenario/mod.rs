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
//!
//! The module is in three files: this one holds the scenario's types and [`Scenario::load`],
//! `validate.rs` the checks section by section ([`Scenario::load`] calls them), and
//! `build.rs` the translation into the core's spec ([`Scenario::build`]): runners, machine
//! and autoscaler specs, and the machine types priced.

mod build;
pub mod calibration;
pub mod raw;
mod validate;

use std::path::{Path, PathBuf};

use fleetsim_core::cache::CacheModel;
use fleetsim_core::spec::{Pickup, RunnerScope};
use fleetsim_core::taskscaler::ScaleFactorRule;
use sha2::{Digest, Sha256};

use crate::cloud::ec2::CloudSpec;
use crate::config::overrides::{Override, PathSegment, apply_override, parse_override};
use crate::config::{KeySource, RunnerConfig};
use crate::input_error::InputError;
use raw::RawScenario;

pub use crate::cloud::prices::s3 as s3_prices;
pub use build::Build;
pub use validate::MAX_MODEL_DELAY_MS;

/// The seed used when a scenario gives none.
pub const DEFAULT_SEED: u64 = 1;

/// The scenario's own top-level tables; `--set` keys starting with them go to the scenario.
const SCENARIO_TABLES: [&str; 9] = [
    "scenario",
    "runner",
    "workload",
    "gitlab",
    "output",
    "cloud",
    "cache",
    "autoscaler",
    "calibration",
];

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
    /// `[calibration]`: measured container costs and transfer rates (already applied to
    /// `cache.model`); `None`: the container steps take no time.
    pub calibration: Option<calibration::Calibration>,
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
        Self::load_with(path, sets, true)
    }

    /// [`Scenario::load`] without its `[calibration]` (for `sim live calibrate`, which
    /// writes the file the section may name).
    pub fn load_uncalibrated(path: &Path) -> Result<Scenario, InputError> {
        Self::load_with(path, &[], false)
    }

    fn load_with(path: &Path, sets: &[String], calibrated: bool) -> Result<Scenario, InputError> {
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
        let mut raw: RawScenario =
            toml::from_str(&text).map_err(|e| remap(toml_error(path, &text, &e)))?;
        if !calibrated {
            raw.calibration = Default::default();
        }
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
