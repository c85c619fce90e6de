//! [`Scenario::validate`]: the raw scenario file checked section by section (`[scenario]`,
//! `[runner]` and its `config.toml`, `[gitlab]`, `[cloud]`, `[cache]`, `[autoscaler]`,
//! `[workload]`), with the defaults applied. Errors name the file, the line and the key.

use std::ops::Range;
use std::path::{Path, PathBuf};

use fleetsim_core::cache::{CacheModel, Transfer};

use super::calibration::calibration_setup;
use fleetsim_core::spec::{Pickup, RunnerScope};
use fleetsim_core::taskscaler::ScaleFactorRule;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::raw::{
    RawAutoscaler, RawBootTime, RawCache, RawCloud, RawConfigRef, RawGitlab, RawMeta, RawRunner,
    RawScenario, RawWorkload,
};
use super::{
    AutoscalerSetup, CacheBackend, CacheSetup, DEFAULT_SEED, DEFAULT_START, GitlabRunner,
    MAX_RECLAIMS_PER_MONTH, MAX_SIMULATED_WORKERS, PollPhase, Scenario, Workload, hex,
};
use crate::cloud::ec2::{BootTime, CloudSpec};
use crate::cloud::prices::{self, Market};
use crate::config::overrides::Override;
use crate::config::{
    KeySource, LoadedConfig, RunnerConfig, load_config_str_with_overrides, parse_go_duration_ms,
};
use crate::input_error::InputError;

/// The scenario file being validated, for errors that point at a line of it.
#[derive(Clone, Copy)]
struct Src<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Src<'_> {
    /// An error at `span` of the scenario text, naming `key`.
    fn err(&self, span: Range<usize>, key: &str, msg: String) -> InputError {
        InputError::file(self.path, msg).at_offset(self.text, span.start).key(key)
    }
}

/// The runner's `config.toml` as the scenario loads it.
struct RunnerConfigSetup {
    loaded: LoadedConfig,
    /// Where the config came from (its file, or the scenario for an inline one).
    file: PathBuf,
    /// Where its keys are written.
    source: KeySource,
}

/// The rest of `[runner]`: the hosts, their price and the feeder phase.
struct RunnerSetup {
    hosts: u32,
    host_price_per_hour: Option<f64>,
    host_price_source: String,
    poll_phase: PollPhase,
}

/// `[gitlab]`, validated.
struct GitlabSetup {
    pickup: Pickup,
    long_poll_ms: u64,
    request_latency_ms: u64,
    runners: Vec<GitlabRunner>,
}

impl Scenario {
    /// Checks the raw file section by section and builds the scenario; `hash` has the
    /// scenario text and the overrides, and takes the config file's text here.
    pub(super) fn validate(
        path: &Path,
        dir: &Path,
        text: &str,
        source: KeySource,
        raw: RawScenario,
        config_sets: &[Override],
        mut hash: Sha256,
    ) -> Result<Scenario, InputError> {
        let src = Src { path, text };
        let (name, seed) = name_and_seed(src, &raw.scenario)?;
        let config_span = raw.runner.config.span();
        let config = runner_config(src, dir, &source, &raw.runner.config, config_sets, &mut hash)?;
        let n_entries = config.loaded.config.runners.len();
        let runner = runner_setup(src, &raw.runner, n_entries, config_span)?;
        let gitlab = gitlab_setup(src, &source, &raw.gitlab, n_entries)?;
        let cloud = cloud_spec(&raw.cloud, path, text)?;
        let price_overrides = price_overrides(src, &raw.cloud)?;
        let start = workload_start(src, &raw.workload)?;
        let mut cache = cache_setup(&raw.cache, &config.loaded.config, path, text)?;
        let calibration = calibration_setup(&raw.calibration, dir, path, text)?;
        if let Some(c) = &calibration {
            let measured = [
                ("cache.latency", raw.cache.latency.is_some()),
                ("cache.bandwidth", raw.cache.bandwidth.is_some()),
                ("cache.local_bandwidth", raw.cache.local_bandwidth.is_some()),
            ];
            if let Some((key, _)) = measured.iter().find(|(_, set)| *set) {
                return Err(InputError::file(
                    path,
                    format!("`{key}` and [calibration] both give it: a calibration measures it, remove one"),
                )
                .key(*key));
            }
            if let Some(f) = &c.file {
                hash.update(std::fs::read(f).unwrap_or_default());
            }
            cache.model.transfer = c.transfer(cache.model.transfer);
        }
        let autoscaler = autoscaler_setup(&raw.autoscaler, path, text)?;
        let workload = workload(src, &source, dir, &raw.workload)?;

        let loaded = config.loaded;
        let config_file = config.file;
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
            config_source: config.source,
            source,
            hosts: runner.hosts,
            hosts_share_token: raw.runner.hosts_share_token.unwrap_or(true),
            host_price_per_hour: runner.host_price_per_hour,
            host_price_source: runner.host_price_source,
            poll_phase: runner.poll_phase,
            workload,
            pickup: gitlab.pickup,
            long_poll_ms: gitlab.long_poll_ms,
            request_latency_ms: gitlab.request_latency_ms,
            adaptive_request_concurrency: raw.gitlab.adaptive_request_concurrency,
            gitlab_runners: gitlab.runners,
            out_dir: raw.output.dir.map(PathBuf::from),
            cloud,
            price_overrides,
            start,
            cache,
            autoscaler,
            calibration,
            sha256: hex(&hash.finalize()),
        })
    }
}

/// `[scenario] name` (it names the report folder) and `seed`.
fn name_and_seed(src: Src<'_>, meta: &RawMeta) -> Result<(String, u64), InputError> {
    let name = meta.name.get_ref().trim().to_owned();
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(src.err(
            meta.name.span(),
            "scenario.name",
            "expected a non-empty name without slashes (it names the report folder)".into(),
        ));
    }
    let seed = match &meta.seed {
        None => DEFAULT_SEED,
        Some(s) => u64::try_from(*s.get_ref()).map_err(|_| {
            src.err(s.span(), "scenario.seed", "expected a non-negative integer".into())
        })?,
    };
    Ok((name, seed))
}

/// `[runner] config`: the runner's `config.toml`, a file beside the scenario or an inline
/// table, loaded with the `--set` overrides meant for it. A file's text goes into `hash`.
fn runner_config(
    src: Src<'_>,
    dir: &Path,
    source: &KeySource,
    config: &Spanned<RawConfigRef>,
    config_sets: &[Override],
    hash: &mut Sha256,
) -> Result<RunnerConfigSetup, InputError> {
    let path = src.path;
    let config_span = config.span();
    let mut config_file = path.to_path_buf();
    let mut config_source = KeySource {
        file: path.to_path_buf(),
        text: source.text.clone(),
        prefix: "runner.config.".to_owned(),
        overrides: config_sets.to_vec(),
    };
    let loaded = match config.get_ref() {
        RawConfigRef::Path(p) => {
            let config_path = dir.join(p);
            let config_text =
                crate::input_file::read_text(&config_path, "the file").map_err(|e| {
                    src.err(
                        config_span.clone(),
                        "runner.config",
                        format!("{}: {}", config_path.display(), e.message),
                    )
                })?;
            hash.update(config_text.as_bytes());
            config_file = config_path.clone();
            let loaded = load_config_str_with_overrides(&config_text, &config_path, config_sets)?;
            config_source.file = config_path;
            config_source.text = config_text;
            config_source.prefix = String::new();
            loaded
        }
        RawConfigRef::Inline(table) => {
            let config_text = toml::to_string(table).map_err(|e| {
                src.err(
                    config_span.clone(),
                    "runner.config",
                    format!("cannot re-read the inline config: {e}"),
                )
            })?;
            crate::config::load_inline_config(
                &config_text,
                path,
                src.text,
                "runner.config",
                config_sets,
            )?
        }
    };
    Ok(RunnerConfigSetup { loaded, file: config_file, source: config_source })
}

/// The rest of `[runner]`: `hosts` (at most `MAX_RUNNERS` runners in all, with the config's
/// `n_entries` each; `config_span` is blamed when there are more), the host price (given, or
/// `host_type` priced from the table) and `poll_phase`.
fn runner_setup(
    src: Src<'_>,
    runner: &RawRunner,
    n_entries: usize,
    config_span: Range<usize>,
) -> Result<RunnerSetup, InputError> {
    let hosts = match &runner.hosts {
        None => 1,
        Some(h) => u32::try_from(*h.get_ref()).ok().filter(|&h| (1..=64).contains(&h)).ok_or_else(
            || src.err(h.span(), "runner.hosts", "expected an integer from 1 to 64".into()),
        )?,
    };
    let total_runners = hosts as usize * n_entries;
    if total_runners > fleetsim_core::spec::MAX_RUNNERS {
        return Err(src.err(
            config_span,
            "runner.hosts",
            format!(
                "{hosts} hosts × {} [[runners]] entries = {total_runners}; at most {} are supported",
                n_entries,
                fleetsim_core::spec::MAX_RUNNERS
            ),
        ));
    }

    let region = runner.host_region.as_ref().map(|r| r.get_ref().clone());
    let (host_price_per_hour, host_price_source) = match (
        &runner.host_price_per_hour,
        &runner.host_type,
    ) {
        (Some(p), _) => {
            if !(p.get_ref().is_finite() && *p.get_ref() >= 0.0) {
                return Err(src.err(
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
                src.err(
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

    let poll_phase = match &runner.poll_phase {
        None => PollPhase::Random,
        Some(s) if s.get_ref() == "random" => PollPhase::Random,
        Some(s) => PollPhase::Fixed(duration(s, "runner.poll_phase", src.path, src.text)?),
    };
    Ok(RunnerSetup { hosts, host_price_per_hour, host_price_source, poll_phase })
}

/// `[gitlab]`: pick-up, long polling, request latency and the GitLab side of each of the
/// config's `n_entries` `[[runners]]` entries (defaults for those not given).
fn gitlab_setup(
    src: Src<'_>,
    source: &KeySource,
    gitlab: &RawGitlab,
    n_entries: usize,
) -> Result<GitlabSetup, InputError> {
    let pickup = match gitlab.pickup.as_ref().map(|p| (p.get_ref().as_str(), p.span())) {
        None | Some(("polling", _)) => Pickup::Polling,
        Some(("immediate", _)) => Pickup::Immediate,
        Some((other, span)) => {
            return Err(src.err(
                span,
                "gitlab.pickup",
                format!("expected \"polling\" or \"immediate\", found {other:?}"),
            ));
        }
    };
    let long_poll_ms = match &gitlab.long_polling {
        None => 0,
        Some(s) => duration(s, "gitlab.long_polling", src.path, src.text)?,
    };
    let request_latency_ms = match &gitlab.request_latency {
        None => fleetsim_core::spec::DEFAULT_REQUEST_LATENCY_MS,
        Some(s) => duration(s, "gitlab.request_latency", src.path, src.text)?,
    };

    if gitlab.runners.len() > n_entries {
        return Err(source.error(&format!("gitlab.runners[{n_entries}]"), format!(
            "{} [[gitlab.runners]] sections but the config has only {n_entries} [[runners]] entries",
            gitlab.runners.len()
        )));
    }
    let mut runners = Vec::with_capacity(n_entries);
    for (i, g) in gitlab.runners.iter().enumerate() {
        let scope = match g.scope.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
            None | Some(("instance", _)) => RunnerScope::Instance,
            Some(("group", _)) => RunnerScope::Group,
            Some(("project", _)) => RunnerScope::Project,
            Some((other, span)) => {
                return Err(src.err(
                    span,
                    &format!("gitlab.runners[{i}].scope"),
                    format!("expected \"instance\", \"group\" or \"project\", found {other:?}"),
                ));
            }
        };
        runners.push(GitlabRunner {
            scope,
            tags: g.tags.iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect(),
            run_untagged: g.run_untagged.unwrap_or(g.tags.is_empty()),
            projects: g.projects.clone(),
        });
    }
    runners.resize(n_entries, GitlabRunner::default());
    Ok(GitlabSetup { pickup, long_poll_ms, request_latency_ms, runners })
}

/// `[cloud.prices]`: USD per hour by instance type, each ≥ 0.
fn price_overrides(
    src: Src<'_>,
    cloud: &RawCloud,
) -> Result<std::collections::BTreeMap<String, f64>, InputError> {
    let mut price_overrides = std::collections::BTreeMap::new();
    for (ty, price) in &cloud.prices {
        if !(price.get_ref().is_finite() && *price.get_ref() >= 0.0) {
            return Err(src.err(
                price.span(),
                &format!("cloud.prices.{ty}"),
                "expected a price ≥ 0 in USD per hour".into(),
            ));
        }
        price_overrides.insert(ty.clone(), *price.get_ref());
    }
    Ok(price_overrides)
}

/// `[workload] start`: the trace's time 0 ([`DEFAULT_START`] when absent).
fn workload_start(src: Src<'_>, w: &RawWorkload) -> Result<jiff::Timestamp, InputError> {
    Ok(match &w.start {
        None => DEFAULT_START.parse().expect("valid default start"),
        Some(s) => crate::trace::record::parse_instant(s.get_ref())
            .map_err(|e| src.err(s.span(), "workload.start", e))?,
    })
}

/// `[workload]`: a trace file beside the scenario, or a `[workload.generate]` model.
fn workload(
    src: Src<'_>,
    source: &KeySource,
    dir: &Path,
    w: &RawWorkload,
) -> Result<Workload, InputError> {
    Ok(match (&w.trace, &w.generate) {
        (Some(trace), None) => Workload::Trace(dir.join(trace.get_ref())),
        (None, Some(generate)) => Workload::Generate(Box::new(
            crate::workload::generate::GenModel::from_raw(generate.get_ref()).map_err(|e| {
                match crate::workload::generate::GenModel::error_key(&e) {
                    Some(k) => source.error(
                        &format!("workload.generate.{k}"),
                        format!("bad generator model: {e}"),
                    ),
                    None => src.err(
                        generate.span(),
                        "workload.generate",
                        format!("bad generator model: {e}"),
                    ),
                }
            })?,
        )),
        (Some(trace), Some(_)) => {
            return Err(src.err(
                trace.span(),
                "workload",
                "give either `trace` or a [workload.generate] table, not both".into(),
            ));
        }
        (None, None) => {
            return Err(InputError::file(
                src.path,
                "[workload] needs `trace = \"file.csv\"` or a [workload.generate] table",
            )
            .key("workload"));
        }
    })
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
        local_latency_ms: d.local_latency_ms,
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
    let backend = cache_backend(Src { path, text }, raw, config)?;
    Ok(CacheSetup {
        model: CacheModel { transfer, expiry_ms },
        distributed: raw.distributed,
        backend,
    })
}

/// `[cache] backend` (when absent: AWS S3 if the runners' S3 address is AWS's or absent, a
/// MinIO server otherwise) and, for a server, `[cache] server` priced in `server_region`.
fn cache_backend(
    src: Src<'_>,
    raw: &RawCache,
    config: &RunnerConfig,
) -> Result<CacheBackend, InputError> {
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
                return Err(src.err(
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
                        src.err(
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
    Ok(backend)
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
