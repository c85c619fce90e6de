//! Validated domain types: what the rest of fleetsim sees of a `config.toml`.
//!
//! Every default is applied once, in `validate.rs`, with the reference section it comes from
//! (`/work/shared/reference/gitlab-runner-semantics.md`, "reference §N" below); the default
//! values are the constants here. Values are in the units their names say (`_ms`, `_s`).
//! Secrets stay [`Secret`].

use super::raw::OpaqueTable;
use super::secret::Secret;

pub use super::go_duration::{parse_go_duration_ms, parse_go_duration_nanos};
pub use super::validate::{LONG_CHECK_INTERVAL_S, MAX_GO_SECONDS, concurrency_warning};

/// `check_interval` when it is absent or ≤ 0: 3 s (`CheckInterval` in `common/consts.go`,
/// reference §1.1 and §6.1).
pub const DEFAULT_CHECK_INTERVAL_MS: u64 = 3_000;
/// `shutdown_timeout` when it is absent or ≤ 0: 30 s (`DefaultShutdownTimeout`).
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 30_000;
/// `MaxRemovalAttempts` when 0: 30 (reference §6.1).
pub const DEFAULT_MAX_REMOVAL_ATTEMPTS: u32 = 30;
/// `instance_acquire_timeout` when absent or ≤ 0: 15 min (reference §3.1, §6.1).
pub const DEFAULT_INSTANCE_ACQUIRE_TIMEOUT_MS: u64 = 15 * 60 * 1_000;
/// `update_interval` when absent or 0: 1 min (reference §3.1, §6.1).
pub const DEFAULT_UPDATE_INTERVAL_MS: u64 = 60 * 1_000;
/// `update_interval_when_expecting` when absent or 0: 2 s (reference §3.1, §6.1).
pub const DEFAULT_UPDATE_INTERVAL_WHEN_EXPECTING_MS: u64 = 2_000;
/// `failure_threshold` when absent or 0: 3 (reference §3.1).
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
/// `scale_throttle.limit` when absent or 0: 100 instances per second (reference §3.1).
pub const DEFAULT_SCALE_THROTTLE_PER_S: u32 = 100;
/// The cron expression of a `[[runners.autoscaler.policy]]` without `periods`: always
/// (reference §3.1).
pub const DEFAULT_POLICY_PERIOD: &str = "* * * * *";

/// The global settings and the `[[runners]]` entries of one `config.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerConfig {
    /// `concurrent`: size of the worker pool, the maximum number of jobs and in-flight job
    /// requests across all runners (reference §1.1). Always ≥ 1.
    pub concurrent: u32,
    /// `check_interval` in milliseconds; [`DEFAULT_CHECK_INTERVAL_MS`] when absent or ≤ 0
    /// (reference §1.1).
    pub check_interval_ms: u64,
    /// `log_level`, as written.
    pub log_level: Option<String>,
    /// `log_format`, as written.
    pub log_format: Option<String>,
    /// `listen_address`, as written.
    pub listen_address: Option<String>,
    /// `shutdown_timeout` in milliseconds; [`DEFAULT_SHUTDOWN_TIMEOUT_MS`] when absent or ≤ 0.
    pub shutdown_timeout_ms: u64,
    /// `connection_max_age` in milliseconds, when set.
    pub connection_max_age_ms: Option<u64>,
    /// The `[[runners]]` entries in file order (the order GitLab Runner's feeder walks them,
    /// reference §1.2). Never empty.
    pub runners: Vec<RunnerEntry>,
}

/// One `[[runners]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerEntry {
    /// `name`; empty when absent.
    pub name: String,
    /// `url`; empty when absent.
    pub url: String,
    /// `token`; empty when absent (GitLab Runner then never polls for this entry, reference
    /// §1.2). Use [`Secret::short_token`] for cache object paths.
    pub token: Secret,
    /// `executor`.
    pub executor: Executor,
    /// `limit`: maximum concurrent jobs of this entry, 0 = unlimited (reference §1.1). For
    /// docker+machine it also caps the machines in every state (reference §2.9).
    pub limit: u32,
    /// `request_concurrency`; values < 1 and absence give 1 (reference §1.1).
    pub request_concurrency: u32,
    /// `strict_check_interval`; false when absent (reference §1.1).
    pub strict_check_interval: bool,
    /// `FF_USE_ADAPTIVE_REQUEST_CONCURRENCY` under `[runners.feature_flags]`, when set.
    /// GitLab Runner 19.4 `common/config.go` `(*RunnerSettings).IsFeatureFlagOn` reads the
    /// runner's own table and falls back to the flag's default (true,
    /// `helpers/featureflags/flags.go`).
    pub adaptive_request_concurrency: Option<bool>,
    /// `FF_HASH_CACHE_KEYS` under `[runners.feature_flags]`; false when absent (its default in
    /// GitLab Runner 19.4 `helpers/featureflags/flags.go`). On, the runner hashes cache keys
    /// as written instead of sanitising them (`shells/abstract.go` `newCacheConfig`).
    pub hash_cache_keys: bool,
    /// `builds_dir`, when set.
    pub builds_dir: Option<String>,
    /// `cache_dir` (the local cache directory), when set.
    pub cache_dir: Option<String>,
    /// `[runners.docker]`; defaults when the section is absent.
    pub docker: DockerSettings,
    /// `[runners.cache]`; [`CacheType::None`] when absent or empty.
    pub cache: CacheSettings,
    /// `[runners.machine]`, when present (docker+machine).
    pub machine: Option<MachineSettings>,
    /// `[runners.autoscaler]`, when present (docker-autoscaler, instance).
    pub autoscaler: Option<AutoscalerSettings>,
}

/// `executor`. Executors fleetsim does not simulate are kept, not refused, at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executor {
    /// `docker`: jobs in containers on one Docker engine.
    Docker,
    /// `docker+machine`: one job per autoscaled Docker Machine VM (reference §2).
    DockerMachine,
    /// `docker-autoscaler`: fleeting/taskscaler instances running Docker (reference §3).
    DockerAutoscaler,
    /// `shell`.
    Shell,
    /// `kubernetes`.
    Kubernetes,
    /// `instance`: fleeting/taskscaler instances, jobs run on the instance (reference §3).
    Instance,
    /// Anything else, as written (`ssh`, `custom`, `virtualbox`, `docker-windows`, or empty
    /// when the key is missing).
    Other(String),
}

impl Executor {
    /// Maps GitLab Runner's executor name.
    pub fn from_name(name: &str) -> Self {
        match name {
            "docker" => Executor::Docker,
            "docker+machine" => Executor::DockerMachine,
            "docker-autoscaler" => Executor::DockerAutoscaler,
            "shell" => Executor::Shell,
            "kubernetes" => Executor::Kubernetes,
            "instance" => Executor::Instance,
            other => Executor::Other(other.to_owned()),
        }
    }

    /// GitLab Runner's name for the executor.
    pub fn as_str(&self) -> &str {
        match self {
            Executor::Docker => "docker",
            Executor::DockerMachine => "docker+machine",
            Executor::DockerAutoscaler => "docker-autoscaler",
            Executor::Shell => "shell",
            Executor::Kubernetes => "kubernetes",
            Executor::Instance => "instance",
            Executor::Other(name) => name,
        }
    }
}

impl std::fmt::Display for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of `[runners.docker]` a simulation uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerSettings {
    /// `image`: the job image when the job names none.
    pub image: Option<String>,
    /// `privileged`; false when absent.
    pub privileged: bool,
    /// `disable_cache`; false when absent.
    pub disable_cache: bool,
    /// `volumes`, as written.
    pub volumes: Vec<String>,
    /// `pull_policy`; `[always]` when absent or empty (`GetPullPolicies` in
    /// `common/config.go`).
    pub pull_policy: Vec<PullPolicy>,
    /// `helper_image`, when set.
    pub helper_image: Option<String>,
}

impl Default for DockerSettings {
    fn default() -> Self {
        DockerSettings {
            image: None,
            privileged: false,
            disable_cache: false,
            volumes: Vec::new(),
            pull_policy: vec![PullPolicy::Always],
            helper_image: None,
        }
    }
}

/// One `pull_policy` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// `always`: pull every time (GitLab Runner's default).
    Always,
    /// `if-not-present`: pull only when the engine lacks the image.
    IfNotPresent,
    /// `never`: never pull.
    Never,
}

impl PullPolicy {
    /// Parses GitLab Runner's spelling; `None` for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "always" => Some(PullPolicy::Always),
            "if-not-present" => Some(PullPolicy::IfNotPresent),
            "never" => Some(PullPolicy::Never),
            _ => None,
        }
    }
}

/// `[runners.cache]` (reference §4.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheSettings {
    /// `Type`; [`CacheType::None`] when absent, empty or unknown.
    pub cache_type: CacheType,
    /// `Path`: prefix of object names; empty when absent.
    pub path: String,
    /// `Shared`: false when absent; true drops the `runner/<short-token>` segment.
    pub shared: bool,
    /// `MaxUploadedArchiveSize` in bytes; 0 = unlimited.
    pub max_uploaded_archive_size: u64,
    /// S3 settings: `[runners.cache.s3]` merged with the legacy flat keys (the section wins
    /// key by key). `None` when neither is present.
    pub s3: Option<S3Settings>,
    /// Whether a `[runners.cache.s3]` section is present. GitLab Runner 19.4 reads S3
    /// settings only from there; the flat keys merged into [`CacheSettings::s3`] are what
    /// `sim migrate` moves and what `[cache] distributed = true` models.
    pub s3_section: bool,
    /// `[runners.cache.gcs]`, when present.
    pub gcs: Option<GcsSettings>,
    /// `[runners.cache.azure]`, when present.
    pub azure: Option<AzureSettings>,
}

impl CacheSettings {
    /// Whether GitLab Runner 19.4 gets a distributed cache adapter from this section. Each
    /// adapter's `New` refuses a missing section (GitLab Runner 19.4 `cache/s3/adapter.go`
    /// and `cache/s3v2/adapter.go` `New`: "missing S3 configuration"; `cache/gcs`,
    /// `cache/gcsv2` "missing GCS configuration"; `cache/azure` likewise), and
    /// `cache/cache.go` `GetAdapter` then logs "Could not create cache adapter" and returns
    /// `nopAdapter{}`: no cache URLs, so the job keeps only its local cache. The legacy flat
    /// S3 keys are not read at all (`cache/cacheconfig/cacheconfig.go` has them only in
    /// `CacheS3Config`, `toml:"s3"`).
    pub fn runner_has_adapter(&self) -> bool {
        match self.cache_type {
            CacheType::None => false,
            CacheType::S3 => self.s3_section,
            CacheType::Gcs => self.gcs.is_some(),
            CacheType::Azure => self.azure.is_some(),
        }
    }
}

/// The distributed cache backend (`Type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheType {
    /// No distributed cache: only the local cache on the machine running the job.
    #[default]
    None,
    /// `s3` or `s3v2` (also MinIO and other S3-compatible servers).
    S3,
    /// `gcs` or `gcsv2`.
    Gcs,
    /// `azure`.
    Azure,
}

/// S3 settings of the distributed cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// `ServerAddress` (`host:port`); `None` means AWS's own endpoint.
    pub server_address: Option<String>,
    /// `AccessKey`.
    pub access_key: Option<Secret>,
    /// `SecretKey`.
    pub secret_key: Option<Secret>,
    /// `SessionToken`.
    pub session_token: Option<Secret>,
    /// `BucketName`; empty when absent.
    pub bucket_name: String,
    /// `BucketLocation` (region), when set.
    pub bucket_location: Option<String>,
    /// `Insecure`: plain HTTP; false when absent.
    pub insecure: bool,
    /// `AuthenticationType` (`iam`, `access-key`), when set.
    pub authentication_type: Option<String>,
    /// `RoleARN`, when set.
    pub role_arn: Option<String>,
    /// `UploadRoleARN`, when set.
    pub upload_role_arn: Option<String>,
    /// `PathStyle`, when set.
    pub path_style: Option<bool>,
    /// `DualStack`, when set (GitLab Runner's default is true).
    pub dual_stack: Option<bool>,
    /// `Accelerate`; false when absent.
    pub accelerate: bool,
    /// `ServerSideEncryption`, when set.
    pub server_side_encryption: Option<String>,
}

/// `[runners.cache.gcs]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcsSettings {
    /// `AccessID`, when set.
    pub access_id: Option<String>,
    /// `PrivateKey`, when set.
    pub private_key: Option<Secret>,
    /// `CredentialsFile`, when set.
    pub credentials_file: Option<String>,
    /// `BucketName`; empty when absent.
    pub bucket_name: String,
    /// `UniverseDomain`, when set.
    pub universe_domain: Option<String>,
}

/// `[runners.cache.azure]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureSettings {
    /// `AccountName`, when set.
    pub account_name: Option<String>,
    /// `AccountKey`, when set.
    pub account_key: Option<Secret>,
    /// `ContainerName`; empty when absent.
    pub container_name: String,
    /// `StorageDomain`, when set.
    pub storage_domain: Option<String>,
}

/// `[runners.machine]`: the docker+machine autoscaler (reference §2). Values are as
/// configured: GitLab Runner's zero defaults (reference §6.1) are the zeros here.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineSettings {
    /// `IdleCount`: idle machines to keep; 0 = create on demand (reference §2.4, §2.9).
    pub idle_count: u32,
    /// `IdleCountMin`: the floor when `IdleScaleFactor` is in use; GitLab Runner treats 0 as 1
    /// when the factor is > 0 (reference §6.1). Stored as configured.
    pub idle_count_min: u32,
    /// `IdleScaleFactor`: idle machines as a factor of machines in use; 0.0 = use `IdleCount`
    /// as a fixed number (reference §2.4).
    pub idle_scale_factor: f64,
    /// `IdleTime` in seconds: how long a machine may stay idle; 0 when absent (reference §6.1).
    pub idle_time_s: u64,
    /// `MaxGrowthRate`: machines being created at once; 0 = unlimited.
    pub max_growth_rate: u32,
    /// `MaxBuilds`: jobs per machine before it is removed; 0 = unlimited.
    pub max_builds: u32,
    /// `MachineDriver` (`amazonec2`, `google`, …); empty when absent.
    pub machine_driver: String,
    /// `MachineName` template (contains `%s`); empty when absent.
    pub machine_name: String,
    /// `MachineOptions`, parsed.
    pub machine_options: MachineOptions,
    /// `MaxRemovalAttempts`; [`DEFAULT_MAX_REMOVAL_ATTEMPTS`] when absent or 0.
    pub max_removal_attempts: u32,
    /// `[[runners.machine.autoscaling]]` in file order; the last matching one wins, and it
    /// supplies all four idle values, missing ones as 0 (reference §2.8).
    pub autoscaling: Vec<MachineAutoscaling>,
}

/// One `[[runners.machine.autoscaling]]` section (reference §2.8).
#[derive(Debug, Clone, PartialEq)]
pub struct MachineAutoscaling {
    /// `Periods`: 7-field `gorhill/cronexpr` expressions (`sec min hour dom month dow year`),
    /// as written.
    pub periods: Vec<String>,
    /// `Timezone`; `None` means the runner host's local zone.
    pub timezone: Option<String>,
    /// `IdleCount`; 0 when absent (not inherited from `[runners.machine]`).
    pub idle_count: u32,
    /// `IdleCountMin`; 0 when absent.
    pub idle_count_min: u32,
    /// `IdleScaleFactor`; 0.0 when absent.
    pub idle_scale_factor: f64,
    /// `IdleTime` in seconds; 0 when absent.
    pub idle_time_s: u64,
}

/// `MachineOptions`: Docker Machine driver flags in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineOptions(Vec<MachineOption>);

/// One `MachineOptions` entry: `key=value`, or a bare `key` (a boolean flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineOption {
    /// The flag name, such as `amazonec2-instance-type`.
    pub key: String,
    /// Its value.
    pub value: MachineOptionValue,
}

/// The value of a [`MachineOption`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachineOptionValue {
    /// A bare flag without `=`.
    Flag,
    /// A value that is not a credential.
    Plain(String),
    /// A credential (see [`is_secret_option`]).
    Secret(Secret),
}

/// True for option keys whose values are credentials; the rule is
/// [`crate::redact::is_secret_machine_option`].
pub fn is_secret_option(key: &str) -> bool {
    crate::redact::is_secret_machine_option(key)
}

impl MachineOptions {
    /// Parses the entries in every spelling docker-machine accepts (`key=value`,
    /// `--key=value`, `key value`; see [`crate::redact::split_machine_option`]). A bare
    /// credential flag followed by its value as the next entry (`["amazonec2-secret-key",
    /// "X"]`) keeps that value secret too.
    pub fn parse<'a>(options: impl IntoIterator<Item = &'a str>) -> Self {
        let mut parsed: Vec<MachineOption> = Vec::new();
        let mut previous_bare_secret = false;
        for option in options {
            let (key, value) = crate::redact::split_machine_option(option);
            let key = key.trim_start_matches('-').to_owned();
            let secret = previous_bare_secret || is_secret_option(&key);
            previous_bare_secret = value.is_none() && is_secret_option(&key);
            let value = match value {
                None if secret && !is_secret_option(&key) => {
                    // The value of the bare credential flag before it.
                    MachineOptionValue::Secret(Secret::new(option))
                }
                None => MachineOptionValue::Flag,
                Some(v) if secret => MachineOptionValue::Secret(Secret::new(v)),
                Some(v) => MachineOptionValue::Plain(v.to_owned()),
            };
            let key = if matches!(value, MachineOptionValue::Secret(_)) && !is_secret_option(&key) {
                "(value of the flag before)".to_owned()
            } else {
                key
            };
            parsed.push(MachineOption { key, value });
        }
        MachineOptions(parsed)
    }

    /// The options in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, MachineOption> {
        self.0.iter()
    }

    /// Number of options.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of `key`; the last occurrence wins, as with repeated command-line flags.
    pub fn get(&self, key: &str) -> Option<&MachineOptionValue> {
        self.0.iter().rev().find(|o| o.key == key).map(|o| &o.value)
    }

    /// The value of a non-secret `key=value` option.
    pub fn plain(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(MachineOptionValue::Plain(value)) => Some(value),
            _ => None,
        }
    }

    /// `amazonec2-instance-type`, when set (the EC2 type priced by the simulated cloud).
    pub fn instance_type(&self) -> Option<&str> {
        self.plain("amazonec2-instance-type")
    }

    /// `amazonec2-region`, when set.
    pub fn region(&self) -> Option<&str> {
        self.plain("amazonec2-region")
    }
}

impl<'a> IntoIterator for &'a MachineOptions {
    type Item = &'a MachineOption;
    type IntoIter = std::slice::Iter<'a, MachineOption>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// `[runners.autoscaler]`: fleeting/taskscaler settings (reference §3.1). Durations are in
/// milliseconds with the defaults of reference §3.1 applied.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscalerSettings {
    /// `plugin`; empty when absent.
    pub plugin: String,
    /// `capacity_per_instance`: concurrent jobs per instance. 0 or absent gives 1, the
    /// presumed taskscaler default (reference §3.1, marked `[recon]` there).
    pub capacity_per_instance: u32,
    /// `max_use_count`: jobs per instance before removal; 0 = unlimited.
    pub max_use_count: u32,
    /// `max_instances`: instances in any state; 0 = unlimited.
    pub max_instances: u32,
    /// `instance_acquire_timeout`; [`DEFAULT_INSTANCE_ACQUIRE_TIMEOUT_MS`] when absent or 0.
    pub instance_acquire_timeout_ms: u64,
    /// `update_interval`; [`DEFAULT_UPDATE_INTERVAL_MS`] when absent or 0.
    pub update_interval_ms: u64,
    /// `update_interval_when_expecting`; [`DEFAULT_UPDATE_INTERVAL_WHEN_EXPECTING_MS`] when
    /// absent or 0.
    pub update_interval_when_expecting_ms: u64,
    /// `failure_threshold`; [`DEFAULT_FAILURE_THRESHOLD`] when absent or 0.
    pub failure_threshold: u32,
    /// `delete_instances_on_shutdown`; false when absent.
    pub delete_instances_on_shutdown: bool,
    /// `reservation_throttling`; true unless set to false (reference §3.1).
    pub reservation_throttling: bool,
    /// `state_storage.enabled`; false when absent, and then instances that exist at startup
    /// are deleted (reference §3.1).
    pub state_storage_enabled: bool,
    /// `[runners.autoscaler.scale_throttle]`.
    pub scale_throttle: ScaleThrottle,
    /// `[[runners.autoscaler.policy]]` in file order; the last matching one wins.
    pub policies: Vec<AutoscalerPolicy>,
    /// `[runners.autoscaler.plugin_config]`, opaque (it belongs to the plugin).
    pub plugin_config: OpaqueTable,
    /// `[runners.autoscaler.connector_config]`.
    pub connector: ConnectorSettings,
}

/// `[runners.autoscaler.scale_throttle]`: a token bucket on instance creation (reference §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleThrottle {
    /// Instances per second: `limit`, [`DEFAULT_SCALE_THROTTLE_PER_S`] when absent or 0,
    /// `None` (unlimited) when negative (`-1` in the docs).
    pub limit_per_s: Option<u32>,
    /// `burst`, when set (> 0). When unset taskscaler uses `max_instances`, or the limit when
    /// `max_instances` is unset (reference §3.1).
    pub burst: Option<u32>,
}

impl Default for ScaleThrottle {
    fn default() -> Self {
        ScaleThrottle { limit_per_s: Some(DEFAULT_SCALE_THROTTLE_PER_S), burst: None }
    }
}

/// One `[[runners.autoscaler.policy]]` (reference §3.1).
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscalerPolicy {
    /// `periods`: 5-field unix cron expressions, as written; `["* * * * *"]` when absent or
    /// empty.
    pub periods: Vec<String>,
    /// `timezone`; `None` means the runner host's local zone.
    pub timezone: Option<String>,
    /// `idle_count`: idle job slots (not instances); 0 when absent.
    pub idle_count: u32,
    /// `idle_time` in milliseconds; 0 when absent.
    pub idle_time_ms: u64,
    /// `scale_factor`; 0.0 when absent.
    pub scale_factor: f64,
    /// `scale_factor_limit`; 0 when absent.
    pub scale_factor_limit: u32,
    /// `preemptive_mode`; when absent, `idle_count > 0` (`PreemptiveModeEnabled`, reference
    /// §3.1).
    pub preemptive_mode: bool,
}

/// `[runners.autoscaler.connector_config]`: how the runner reaches an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectorSettings {
    /// `os`.
    pub os: Option<String>,
    /// `arch`.
    pub arch: Option<String>,
    /// `protocol` (`ssh`, `winrm`).
    pub protocol: Option<String>,
    /// `protocol_port`.
    pub protocol_port: Option<u32>,
    /// `username`.
    pub username: Option<String>,
    /// `password`.
    pub password: Option<Secret>,
    /// `key_path`.
    pub key_path: Option<String>,
    /// `use_static_credentials`; false when absent.
    pub use_static_credentials: bool,
    /// `keepalive` in milliseconds, when set.
    pub keepalive_ms: Option<u64>,
    /// `timeout` in milliseconds, when set.
    pub timeout_ms: Option<u64>,
    /// `use_external_addr`; false when absent.
    pub use_external_addr: bool,
}

/// `(*RunnerCredentials).HasToken` (common/config.go): a token that is not empty or
/// whitespace only. GitLab Runner never feeds a runner without one.
pub fn has_token(token: &Secret) -> bool {
    !token.expose().trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_options_split_and_hide_secrets() {
        let opts = MachineOptions::parse([
            "amazonec2-access-key=AKIAXYZ",
            "amazonec2-secret-key=sekrit",
            "amazonec2-region=ap-northeast-2",
            "amazonec2-instance-type=t2.medium",
            "amazonec2-use-private-address",
            "digitalocean-access-token=do-tok-123",
            "google-password=pw-456",
            "engine-opt=a=b",
        ]);
        assert_eq!(opts.len(), 8);
        assert_eq!(opts.region(), Some("ap-northeast-2"));
        assert_eq!(opts.instance_type(), Some("t2.medium"));
        assert_eq!(opts.get("amazonec2-use-private-address"), Some(&MachineOptionValue::Flag));
        assert_eq!(opts.plain("engine-opt"), Some("a=b"));
        for key in [
            "amazonec2-access-key",
            "amazonec2-secret-key",
            "digitalocean-access-token",
            "google-password",
        ] {
            assert!(matches!(opts.get(key), Some(MachineOptionValue::Secret(_))), "{key}");
            assert_eq!(opts.plain(key), None);
        }
        let shown = format!("{opts:?}");
        for secret in ["AKIAXYZ", "sekrit", "do-tok-123", "pw-456"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
    }

    #[test]
    fn executor_names_round_trip() {
        for name in [
            "docker",
            "docker+machine",
            "docker-autoscaler",
            "shell",
            "kubernetes",
            "instance",
            "ssh",
        ] {
            assert_eq!(Executor::from_name(name).as_str(), name);
        }
        assert_eq!(Executor::from_name("custom"), Executor::Other("custom".into()));
    }
}
