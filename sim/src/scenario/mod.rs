//! Scenarios: raw TOML ([`raw`]) → a validated [`Scenario`] → the core's [`FleetSpec`].
//!
//! ```text
//!   scenario.toml ──toml_edit + --set──► raw::RawScenario ──validate──► Scenario
//!   config.toml   ──toml_edit + --set──► config::LoadedConfig ────────┘    │
//!                                                                          ▼
//!                                              Scenario::fleet_spec(seeds) → FleetSpec
//! ```
//!
//! `--set KEY=VALUE` goes to the scenario when KEY starts with one of its tables
//! (`scenario`, `runner`, `workload`, `gitlab`, `output`) and to `config.toml` otherwise
//! (`concurrent=8`, `runners[0].limit=4`).

pub mod raw;

use std::path::{Path, PathBuf};

use fleetsim_core::ProjectId;
use fleetsim_core::spec::{
    DEFAULT_LONG_POLL_MS, ExecutorKind, FleetSpec, Pickup, ProcessSpec, RunnerScope, RunnerSpec,
};
use rand::RngExt;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::cloud::prices::{self, Market};
use crate::config::overrides::{Override, PathSegment, apply_override, parse_override};
use crate::config::{Executor, RunnerConfig, load_config_str_with_overrides, parse_go_duration_ms};
use crate::input_error::InputError;
use crate::seeds::SeedTree;
use raw::{RawConfigRef, RawScenario};

/// The seed used when a scenario gives none.
pub const DEFAULT_SEED: u64 = 1;

/// The scenario's own top-level tables; `--set` keys starting with them go to the scenario.
const SCENARIO_TABLES: [&str; 5] = ["scenario", "runner", "workload", "gitlab", "output"];

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
    /// Warnings from reading the config (unknown keys).
    pub warnings: Vec<String>,
    /// Number of identical runner hosts.
    pub hosts: u32,
    /// Hourly price of one host, if known.
    pub host_price_per_hour: Option<f64>,
    /// Where the price came from, for the report.
    pub host_price_source: String,
    /// Feeder phase.
    pub poll_phase: PollPhase,
    /// The trace CSV.
    pub trace: PathBuf,
    /// Pick-up mode.
    pub pickup: Pickup,
    /// Long polling duration in ms (0 = off).
    pub long_poll_ms: u64,
    /// `FF_USE_ADAPTIVE_REQUEST_CONCURRENCY`.
    pub adaptive_request_concurrency: bool,
    /// GitLab side of each `[[runners]]` entry (same length as `config.runners`).
    pub gitlab_runners: Vec<GitlabRunner>,
    /// Report folder from the scenario, if set.
    pub out_dir: Option<PathBuf>,
    /// SHA-256 of the scenario text, the config text and the overrides (hex).
    pub sha256: String,
}

impl Scenario {
    /// Reads and validates a scenario file, applying `--set` overrides.
    pub fn load(path: &Path, sets: &[String]) -> Result<Scenario, InputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::file(path, format!("cannot read the scenario: {e}")))?;
        let overrides = sets.iter().map(|s| parse_override(s)).collect::<Result<Vec<_>, _>>()?;
        let (for_scenario, for_config): (Vec<Override>, Vec<Override>) =
            overrides.into_iter().partition(|o| {
                matches!(o.path.first(), Some(PathSegment::Key(k)) if SCENARIO_TABLES.contains(&k.as_str()))
            });
        let text = apply_overrides(&text, path, &for_scenario)?;
        let raw: RawScenario = toml::from_str(&text).map_err(|e| toml_error(path, &text, &e))?;
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut hash = Sha256::new();
        hash.update(text.as_bytes());
        for s in sets {
            hash.update(s.as_bytes());
            hash.update([0]);
        }
        Self::validate(path, &dir, &text, raw, &for_config, hash)
    }

    fn validate(
        path: &Path,
        dir: &Path,
        text: &str,
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
        let loaded = match raw.runner.config.into_inner() {
            RawConfigRef::Path(p) => {
                let config_path = dir.join(&p);
                let config_text = std::fs::read_to_string(&config_path).map_err(|e| {
                    err(
                        config_span.clone(),
                        "runner.config",
                        format!("cannot read {}: {e}", config_path.display()),
                    )
                })?;
                hash.update(config_text.as_bytes());
                load_config_str_with_overrides(&config_text, &config_path, config_sets)?
            }
            RawConfigRef::Inline(table) => {
                let config_text = toml::to_string(&table).map_err(|e| {
                    err(
                        config_span.clone(),
                        "runner.config",
                        format!("cannot re-read the inline config: {e}"),
                    )
                })?;
                let pseudo = PathBuf::from(format!("{}#runner.config", path.display()));
                load_config_str_with_overrides(&config_text, &pseudo, config_sets)?
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

        let n_entries = loaded.config.runners.len();
        if raw.gitlab.runners.len() > n_entries {
            return Err(InputError::file(path, format!(
                "{} [[gitlab.runners]] sections but the config has only {n_entries} [[runners]] entries",
                raw.gitlab.runners.len()
            ))
            .key("gitlab.runners"));
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

        Ok(Scenario {
            path: path.to_path_buf(),
            name,
            seed,
            warnings: loaded.warnings,
            config: loaded.config,
            hosts,
            host_price_per_hour,
            host_price_source,
            poll_phase,
            trace: dir.join(raw.workload.trace.get_ref()),
            pickup,
            long_poll_ms,
            adaptive_request_concurrency: raw.gitlab.adaptive_request_concurrency.unwrap_or(true),
            gitlab_runners,
            out_dir: raw.output.dir.map(PathBuf::from),
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

    /// The core's fleet description. Feeder phases come from the seed stream `feeder.phase`.
    /// Fails for executors that are not simulated yet.
    pub fn fleet_spec(&self, seeds: SeedTree) -> Result<FleetSpec, InputError> {
        let mut phase_rng = seeds.stream("feeder.phase");
        let mut runners = Vec::with_capacity(self.config.runners.len());
        for (i, (entry, gitlab)) in self.config.runners.iter().zip(&self.gitlab_runners).enumerate()
        {
            let executor = match &entry.executor {
                Executor::Docker => ExecutorKind::Docker,
                other => {
                    return Err(InputError::file(&self.path, format!(
                        "runner {:?} uses executor {other}; `sim run` simulates only the docker executor so far \
                         (docker+machine and docker-autoscaler are parsed but not simulated yet)",
                        entry.name
                    ))
                    .key(format!("runners[{i}].executor")));
                }
            };
            runners.push(RunnerSpec {
                name: entry.name.clone(),
                executor,
                limit: entry.limit,
                request_concurrency: entry.request_concurrency.max(1),
                adaptive_request_concurrency: self.adaptive_request_concurrency,
                strict_check_interval: entry.strict_check_interval,
                scope: gitlab.scope,
                projects: gitlab
                    .projects
                    .as_ref()
                    .map(|ps| ps.iter().map(|&p| ProjectId(p)).collect()),
                tags: gitlab.tags.clone(),
                run_untagged: gitlab.run_untagged,
            });
        }
        let check_interval_ms = self.config.check_interval_ms;
        let processes = (0..self.hosts)
            .map(|h| ProcessSpec {
                name: format!("host-{h}"),
                concurrent: self.config.concurrent,
                check_interval_ms,
                first_offer_ms: match self.poll_phase {
                    PollPhase::Random => phase_rng.random_range(0..check_interval_ms),
                    PollPhase::Fixed(ms) => ms,
                },
                runners: runners.clone(),
            })
            .collect();
        let spec = FleetSpec {
            processes,
            pickup: self.pickup,
            long_poll_ms: if self.long_poll_ms > 0 { self.long_poll_ms } else { 0 },
            skip_idle_offers: true,
        };
        spec.validate().map_err(|e| InputError::file(&self.path, e))?;
        Ok(spec)
    }
}

/// Workhorse's long-polling duration when turned on, for documentation and defaults.
pub const LONG_POLL_WHEN_ON_MS: u64 = DEFAULT_LONG_POLL_MS;

fn duration(s: &Spanned<String>, key: &str, path: &Path, text: &str) -> Result<u64, InputError> {
    parse_go_duration_ms(s.get_ref()).map_err(|e| {
        InputError::file(
            path,
            format!("expected a duration such as \"0s\", \"50s\" or \"1m30s\": {e}"),
        )
        .at_offset(text, s.span().start)
        .key(key)
    })
}

fn apply_overrides(text: &str, path: &Path, overrides: &[Override]) -> Result<String, InputError> {
    if overrides.is_empty() {
        return Ok(text.to_owned());
    }
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let mut err = InputError::file(path, e.message().to_owned());
        if let Some(span) = e.span() {
            err = err.at_offset(text, span.start);
        }
        err
    })?;
    for o in overrides {
        apply_override(&mut doc, o, path)?;
    }
    Ok(doc.to_string())
}

/// Turns a toml parse or type error into an [`InputError`] with line, column and key.
pub fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> InputError {
    let mut err = InputError::file(path, e.message().to_owned());
    if let Some(span) = e.span() {
        err = err.at_offset(text, span.start);
        if let Some(key) = key_at(text, span.start) {
            err = err.key(key);
        }
    }
    err
}

/// The bare key at the start of the line holding `offset`, if the line is `key = …`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
