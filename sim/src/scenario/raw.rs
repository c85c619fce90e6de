//! The scenario file as serde reads it (phase one). Unknown keys are errors here — this is
//! fleetsim's own format, so a typo must not pass silently — unlike `config.toml`, where
//! GitLab Runner's own tolerance (a warning) is kept.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// `scenario.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    /// `[scenario]`.
    pub scenario: RawMeta,
    /// `[runner]`.
    pub runner: RawRunner,
    /// `[workload]`.
    pub workload: RawWorkload,
    /// `[gitlab]`.
    #[serde(default)]
    pub gitlab: RawGitlab,
    /// `[output]`.
    #[serde(default)]
    pub output: RawOutput,
    /// `[cloud]`: the simulated EC2.
    #[serde(default)]
    pub cloud: RawCloud,
    /// `[cache]`: the cache and image transfer model and the cache server's price.
    #[serde(default)]
    pub cache: RawCache,
    /// `[autoscaler]`: what docker-autoscaler runners need beyond `config.toml`.
    #[serde(default)]
    pub autoscaler: RawAutoscaler,
    /// `[calibration]`: the engine's and the S3 server's measured costs.
    #[serde(default)]
    pub calibration: super::calibration::RawCalibration,
}

/// `[autoscaler]`: the docker-autoscaler facts that live outside `config.toml` (the cloud
/// group's instance type) and the model's switches.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAutoscaler {
    /// EC2 instance type of the instance group (its launch template).
    pub instance_type: Option<Spanned<String>>,
    /// Region for the price (default: `plugin_config.region`, else us-east-1).
    pub region: Option<Spanned<String>>,
    /// `"max"` (default) or `"on-top"`: how `scale_factor` combines with `idle_count`.
    pub scale_factor_rule: Option<Spanned<String>>,
    /// Script slowdown per other job on the same instance (default 0).
    pub contention: Option<Spanned<f64>>,
}

/// `[cache]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// Override whether the distributed cache of `[runners.cache]` is used. By default it is
    /// what GitLab Runner 19.4 does: a `Type` with its section (the legacy flat S3 keys give
    /// none); `true` models the cache the operator meant.
    pub distributed: Option<bool>,
    /// `"s3"` (AWS prices) or `"minio"` (priced as its server); default from ServerAddress.
    pub backend: Option<Spanned<String>>,
    /// The MinIO server's EC2 instance type.
    pub server: Option<Spanned<String>>,
    /// The MinIO server's region (default: the runners' region, else us-east-1).
    pub server_region: Option<Spanned<String>>,
    /// Cache server bandwidth, e.g. `"100MB/s"`.
    pub bandwidth: Option<Spanned<String>>,
    /// Per-request latency, e.g. `"30ms"`.
    pub latency: Option<Spanned<String>>,
    /// Local archive/extract speed.
    pub local_bandwidth: Option<Spanned<String>>,
    /// Image registry bandwidth.
    pub registry_bandwidth: Option<Spanned<String>>,
    /// Per-pull latency.
    pub registry_latency: Option<Spanned<String>>,
    /// Objects expire this many days after upload (lifecycle rule; default: never).
    pub expiry_days: Option<Spanned<f64>>,
}

/// `[scenario]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMeta {
    /// Name: the report folder under `reports/`.
    pub name: Spanned<String>,
    /// Root seed of the run.
    pub seed: Option<Spanned<i64>>,
    /// Free text.
    pub description: Option<String>,
}

/// `config = "file"` or an inline `[runner.config]` table.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawConfigRef {
    /// A path relative to the scenario file.
    Path(String),
    /// The config inline.
    Inline(toml::Table),
}

/// `[runner]`: the runner process(es).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRunner {
    /// The GitLab Runner `config.toml`.
    pub config: Spanned<RawConfigRef>,
    /// Identical runner hosts, each a process with this config.
    pub hosts: Option<Spanned<i64>>,
    /// Whether the hosts share the config's tokens (one registration, several runner
    /// managers; default) or were registered separately (a token each).
    pub hosts_share_token: Option<bool>,
    /// EC2 instance type of each host, priced from the built-in table.
    pub host_type: Option<Spanned<String>>,
    /// Region for the price lookup.
    pub host_region: Option<Spanned<String>>,
    /// Hourly price of one host, overriding the table.
    pub host_price_per_hour: Option<Spanned<f64>>,
    /// `"random"` (default) or a duration: when each feeder makes its first offer.
    pub poll_phase: Option<Spanned<String>>,
}

/// `[workload]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    /// Trace CSV, relative to the scenario file (or `generate`).
    pub trace: Option<Spanned<String>>,
    /// `[workload.generate]`: a generated workload instead of a trace.
    pub generate: Option<Spanned<crate::workload::generate::RawGenerate>>,
    /// The wall-clock instant of the trace's time 0 (RFC 3339), for autoscaling periods.
    pub start: Option<Spanned<String>>,
}

/// `[gitlab]`: the GitLab side.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGitlab {
    /// `"polling"` (default) or `"immediate"`.
    pub pickup: Option<Spanned<String>>,
    /// Workhorse long polling: `"0s"` (off, default) or a duration such as `"50s"`.
    pub long_polling: Option<Spanned<String>>,
    /// How long a job request to Rails takes (default
    /// [`fleetsim_core::spec::DEFAULT_REQUEST_LATENCY_MS`]); `"0s"` for theory checks.
    pub request_latency: Option<Spanned<String>>,
    /// `FF_USE_ADAPTIVE_REQUEST_CONCURRENCY` for every runner, overriding each runner's
    /// `[runners.feature_flags]` (absent: the runner's own value, default true as in GitLab
    /// Runner 19.4).
    pub adaptive_request_concurrency: Option<bool>,
    /// GitLab-side registration of each `[[runners]]` entry, in order.
    #[serde(default)]
    pub runners: Vec<RawGitlabRunner>,
}

/// `[[gitlab.runners]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGitlabRunner {
    /// `instance` (default), `group` or `project`.
    pub scope: Option<Spanned<String>>,
    /// Runner tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Whether it takes untagged jobs (default: true).
    pub run_untagged: Option<bool>,
    /// Projects a group or project runner serves (default: all).
    pub projects: Option<Vec<u64>>,
}

/// `[output]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// Report folder, relative to the current directory (default `reports/<name>`).
    pub dir: Option<String>,
}

/// `boot_time = "60s"` or `boot_time = { median = "60s", p99 = "4m" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawBootTime {
    /// A constant.
    Fixed(String),
    /// A log-normal distribution.
    LogNormal {
        /// Median.
        median: String,
        /// 99th percentile.
        p99: String,
    },
}

/// `[cloud]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCloud {
    /// `"on-demand"` (default) or `"spot"`.
    pub market: Option<Spanned<String>>,
    /// docker+machine creation time (VM boot plus Docker provisioning).
    pub boot_time: Option<Spanned<RawBootTime>>,
    /// docker-autoscaler instance creation time (VM boot from a prepared image).
    pub instance_boot_time: Option<Spanned<RawBootTime>>,
    /// Probability that a creation fails (default 0).
    pub creation_failure_probability: Option<Spanned<f64>>,
    /// Shortest failed creation (default 1 s).
    pub creation_failure_min: Option<Spanned<String>>,
    /// Longest failed creation (default 120 s).
    pub creation_failure_max: Option<Spanned<String>>,
    /// Time to remove a machine (default 10 s).
    pub removal_time: Option<Spanned<String>>,
    /// Spot: probability that a machine running a month is interrupted (default: the Spot
    /// Advisor band of its type and region).
    pub spot_interruptions_per_month: Option<Spanned<f64>>,
    /// Spot: reclaim events per month per instance type (default 0).
    pub reclaims_per_month: Option<Spanned<f64>>,
    /// USD per hour by instance type, overriding the built-in table.
    #[serde(default)]
    pub prices: BTreeMap<String, Spanned<f64>>,
}
