//! Raw serde types: `config.toml` exactly as GitLab Runner spells it.
//!
//! Key names mirror GitLab Runner's Go structs (`common/config.go`,
//! `cache/cacheconfig/cacheconfig.go`, GitLab Runner 19.4), including the PascalCase keys of
//! `[runners.machine]` and `[runners.cache]`. Every field is optional, because GitLab Runner
//! gives every key a zero value when it is absent; defaults are applied in
//! [`super::validated`], not here.
//!
//! Fields that validation may reject are [`Spanned`], so the error can name the line and
//! column. Sections fleetsim does not simulate (`[runners.kubernetes]`, `[runners.custom]`,
//! `[session_server]`, …) are kept as [`OpaqueTable`]: accepted whole, without unknown-key
//! warnings inside them.
//!
//! Differences from GitLab Runner's decoder (BurntSushi/toml 1.6):
//! - it matches key names case-insensitively when the exact name is absent; fleetsim matches
//!   exactly, so `idlecount` gives an "unknown key" warning here;
//! - it ignores unknown keys silently; fleetsim warns.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

use super::secret::Secret;

/// The whole file: global keys and `[[runners]]`.
#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    /// `concurrent`: size of the global worker pool. GitLab Runner refuses values < 1.
    pub concurrent: Option<Spanned<i64>>,
    /// `check_interval`, in seconds; ≤ 0 or absent means 3 s.
    pub check_interval: Option<Spanned<i64>>,
    /// `log_level` (panic, fatal, error, warning, info, debug).
    pub log_level: Option<String>,
    /// `log_format` (runner, text, json).
    pub log_format: Option<String>,
    /// `listen_address` of the metrics/debug server.
    pub listen_address: Option<String>,
    /// `shutdown_timeout`, in seconds; ≤ 0 means 30 s.
    pub shutdown_timeout: Option<Spanned<i64>>,
    /// `connection_max_age`, a Go duration.
    pub connection_max_age: Option<Spanned<GoDuration>>,
    /// `sentry_dsn` (holds a key, so it is a secret).
    pub sentry_dsn: Option<Secret>,
    /// `user` the runner runs shell builds as.
    pub user: Option<String>,
    /// `[labels]`: default labels for all runners.
    pub labels: Option<super::labels::RawLabels>,
    /// `[session_server]`: accepted and ignored.
    pub session_server: Option<OpaqueTable>,
    /// `[machine]`: global docker+machine settings (`shutdown_drain`), ignored.
    pub machine: Option<OpaqueTable>,
    /// `[experimental]`, ignored.
    pub experimental: Option<OpaqueTable>,
    /// `[[runners]]`, in file order.
    #[serde(default)]
    pub runners: Vec<RawRunner>,
}

/// One `[[runners]]` entry.
#[derive(Debug, Default, Deserialize)]
pub struct RawRunner {
    /// `name` (the description shown in GitLab).
    pub name: Option<String>,
    /// `url` of the GitLab instance.
    pub url: Option<String>,
    /// `id`: the runner's ID in GitLab, written by `gitlab-runner register`.
    pub id: Option<i64>,
    /// `token`: the runner authentication token.
    pub token: Option<Secret>,
    /// `token_obtained_at`, a TOML datetime written by `register`.
    pub token_obtained_at: Option<toml::value::Datetime>,
    /// `token_expires_at`, a TOML datetime written by `register`.
    pub token_expires_at: Option<toml::value::Datetime>,
    /// `tls-ca-file`.
    #[serde(rename = "tls-ca-file")]
    pub tls_ca_file: Option<String>,
    /// `tls-cert-file`.
    #[serde(rename = "tls-cert-file")]
    pub tls_cert_file: Option<String>,
    /// `tls-key-file`.
    #[serde(rename = "tls-key-file")]
    pub tls_key_file: Option<String>,
    /// `executor` (docker, docker+machine, docker-autoscaler, shell, kubernetes, instance, …).
    pub executor: Option<String>,
    /// `limit`: maximum concurrent jobs for this entry; 0 = unlimited.
    pub limit: Option<Spanned<i64>>,
    /// `output_limit`: maximum job log size in KiB.
    pub output_limit: Option<Spanned<i64>>,
    /// `request_concurrency`: maximum simultaneous job requests; < 1 means 1.
    pub request_concurrency: Option<Spanned<i64>>,
    /// `strict_check_interval`: no immediate re-poll after a job is received.
    pub strict_check_interval: Option<bool>,
    /// `unhealthy_requests_limit`.
    pub unhealthy_requests_limit: Option<i64>,
    /// `unhealthy_interval`, a Go duration.
    pub unhealthy_interval: Option<Spanned<GoDuration>>,
    /// `job_status_final_update_retry_limit`.
    pub job_status_final_update_retry_limit: Option<i64>,
    /// `builds_dir`.
    pub builds_dir: Option<String>,
    /// `cache_dir`: where the local cache lives.
    pub cache_dir: Option<String>,
    /// `clone_url`.
    pub clone_url: Option<String>,
    /// `environment` (`NAME=value` strings; they often carry credentials, so they are secret).
    pub environment: Option<Vec<Secret>>,
    /// `[runners.labels]`.
    pub labels: Option<super::labels::RawLabels>,
    /// `proxy_exec`.
    pub proxy_exec: Option<bool>,
    /// `pre_get_sources_script`.
    pub pre_get_sources_script: Option<String>,
    /// `post_get_sources_script`.
    pub post_get_sources_script: Option<String>,
    /// `pre_build_script`.
    pub pre_build_script: Option<String>,
    /// `post_build_script`.
    pub post_build_script: Option<String>,
    /// `prepare_timeout`, a Go duration.
    pub prepare_timeout: Option<Spanned<GoDuration>>,
    /// `get_sources_timeout`, a Go duration.
    pub get_sources_timeout: Option<Spanned<GoDuration>>,
    /// `debug_trace_disabled`.
    pub debug_trace_disabled: Option<bool>,
    /// `safe_directory_checkout`.
    pub safe_directory_checkout: Option<bool>,
    /// `clean_git_config`.
    pub clean_git_config: Option<bool>,
    /// `shell` (bash, sh, pwsh, …).
    pub shell: Option<String>,
    /// `step_runner_image`.
    pub step_runner_image: Option<String>,
    /// `use_slot_cgroups`.
    pub use_slot_cgroups: Option<bool>,
    /// `slot_cgroup_template`.
    pub slot_cgroup_template: Option<String>,
    /// `[runners.feature_flags]`: `FF_…` names to booleans.
    pub feature_flags: Option<BTreeMap<String, bool>>,
    /// `[runners.custom_build_dir]`, ignored.
    pub custom_build_dir: Option<OpaqueTable>,
    /// `[runners.referees]`, ignored.
    pub referees: Option<OpaqueTable>,
    /// `[runners.artifact]`, ignored.
    pub artifact: Option<OpaqueTable>,
    /// `[runners.monitoring]`, ignored.
    pub monitoring: Option<OpaqueTable>,
    /// `[runners.instance]` (instance executor options), ignored.
    pub instance: Option<OpaqueTable>,
    /// `[runners.ssh]`, ignored.
    pub ssh: Option<OpaqueTable>,
    /// `[runners.parallels]`, ignored.
    pub parallels: Option<OpaqueTable>,
    /// `[runners.virtualbox]`, ignored.
    pub virtualbox: Option<OpaqueTable>,
    /// `[runners.kubernetes]`, ignored.
    pub kubernetes: Option<OpaqueTable>,
    /// `[runners.custom]`, ignored.
    pub custom: Option<OpaqueTable>,
    /// `[runners.experimental]`, ignored.
    pub experimental: Option<OpaqueTable>,
    /// `[runners.docker]`.
    pub docker: Option<RawDocker>,
    /// `[runners.cache]`.
    pub cache: Option<RawCache>,
    /// `[runners.machine]` (docker+machine).
    pub machine: Option<RawMachine>,
    /// `[runners.autoscaler]` (docker-autoscaler and instance executors).
    pub autoscaler: Option<RawAutoscaler>,
}

/// `[runners.docker]` (`DockerConfig` in GitLab Runner).
#[derive(Debug, Default, Deserialize)]
pub struct RawDocker {
    /// `host`: Docker daemon address.
    pub host: Option<String>,
    /// `tls_cert_path`.
    pub tls_cert_path: Option<String>,
    /// `tls_verify`.
    pub tls_verify: Option<bool>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `image`: the default job image.
    pub image: Option<String>,
    /// `runtime`.
    pub runtime: Option<String>,
    /// `memory`.
    pub memory: Option<String>,
    /// `memory_swap`.
    pub memory_swap: Option<String>,
    /// `memory_reservation`.
    pub memory_reservation: Option<String>,
    /// `cgroup_parent`.
    pub cgroup_parent: Option<String>,
    /// `cpuset_cpus`.
    pub cpuset_cpus: Option<String>,
    /// `cpuset_mems`.
    pub cpuset_mems: Option<String>,
    /// `cpus`.
    pub cpus: Option<String>,
    /// `cpu_shares`.
    pub cpu_shares: Option<i64>,
    /// `dns`.
    pub dns: Option<Vec<String>>,
    /// `dns_search`.
    pub dns_search: Option<Vec<String>>,
    /// `privileged`.
    pub privileged: Option<bool>,
    /// `services_privileged`.
    pub services_privileged: Option<bool>,
    /// `disable_entrypoint_overwrite`.
    pub disable_entrypoint_overwrite: Option<bool>,
    /// `user`.
    pub user: Option<String>,
    /// `allowed_users`.
    pub allowed_users: Option<Vec<String>>,
    /// `group_add`.
    pub group_add: Option<Vec<String>>,
    /// `userns_mode`.
    pub userns_mode: Option<String>,
    /// `cap_add`.
    pub cap_add: Option<Vec<String>>,
    /// `cap_drop`.
    pub cap_drop: Option<Vec<String>>,
    /// `oom_kill_disable`.
    pub oom_kill_disable: Option<bool>,
    /// `oom_score_adjust`.
    pub oom_score_adjust: Option<i64>,
    /// `security_opt`.
    pub security_opt: Option<Vec<String>>,
    /// `services_security_opt`.
    pub services_security_opt: Option<Vec<String>>,
    /// `devices`.
    pub devices: Option<Vec<String>>,
    /// `device_cgroup_rules`.
    pub device_cgroup_rules: Option<Vec<String>>,
    /// `gpus`.
    pub gpus: Option<String>,
    /// `services_devices`.
    pub services_devices: Option<BTreeMap<String, Vec<String>>>,
    /// `disable_cache`: no automatic cache volume for the job container.
    pub disable_cache: Option<bool>,
    /// `volumes`.
    pub volumes: Option<Vec<String>>,
    /// `volume_keep`.
    pub volume_keep: Option<bool>,
    /// `volume_driver`.
    pub volume_driver: Option<String>,
    /// `volume_driver_ops`.
    pub volume_driver_ops: Option<BTreeMap<String, String>>,
    /// `cache_dir`.
    pub cache_dir: Option<String>,
    /// `extra_hosts`.
    pub extra_hosts: Option<Vec<String>>,
    /// `volumes_from`.
    pub volumes_from: Option<Vec<String>>,
    /// `network_mode`.
    pub network_mode: Option<String>,
    /// `pid_mode`.
    pub pid_mode: Option<String>,
    /// `ipcmode`.
    pub ipcmode: Option<String>,
    /// `mac_address`.
    pub mac_address: Option<String>,
    /// `links`.
    pub links: Option<Vec<String>>,
    /// `[[runners.docker.services]]`, ignored.
    pub services: Option<Vec<OpaqueTable>>,
    /// `services_limit`.
    pub services_limit: Option<i64>,
    /// `service_memory`.
    pub service_memory: Option<String>,
    /// `service_memory_swap`.
    pub service_memory_swap: Option<String>,
    /// `service_memory_reservation`.
    pub service_memory_reservation: Option<String>,
    /// `service_cgroup_parent`.
    pub service_cgroup_parent: Option<String>,
    /// `service_slot_cgroup_template`.
    pub service_slot_cgroup_template: Option<String>,
    /// `service_cpuset_cpus`.
    pub service_cpuset_cpus: Option<String>,
    /// `service_cpus`.
    pub service_cpus: Option<String>,
    /// `service_cpu_shares`.
    pub service_cpu_shares: Option<i64>,
    /// `service_gpus`.
    pub service_gpus: Option<String>,
    /// `wait_for_services_timeout`, in seconds.
    pub wait_for_services_timeout: Option<i64>,
    /// `allowed_images`.
    pub allowed_images: Option<Vec<String>>,
    /// `allowed_privileged_images`.
    pub allowed_privileged_images: Option<Vec<String>>,
    /// `allowed_privileged_services`.
    pub allowed_privileged_services: Option<Vec<String>>,
    /// `allowed_pull_policies`.
    pub allowed_pull_policies: Option<Vec<String>>,
    /// `allowed_services`.
    pub allowed_services: Option<Vec<String>>,
    /// `pull_policy`: one string or a list (`StringOrArray` in GitLab Runner).
    pub pull_policy: Option<Spanned<StringOrList>>,
    /// `isolation`.
    pub isolation: Option<String>,
    /// `shm_size`, in bytes.
    pub shm_size: Option<i64>,
    /// `tmpfs`.
    pub tmpfs: Option<BTreeMap<String, String>>,
    /// `services_tmpfs`.
    pub services_tmpfs: Option<BTreeMap<String, String>>,
    /// `sysctls`.
    pub sysctls: Option<BTreeMap<String, String>>,
    /// `helper_image`.
    pub helper_image: Option<String>,
    /// `helper_image_flavor`.
    pub helper_image_flavor: Option<String>,
    /// `container_labels`.
    pub container_labels: Option<BTreeMap<String, String>>,
    /// `enable_ipv6`.
    pub enable_ipv6: Option<bool>,
    /// `ulimit`.
    pub ulimit: Option<BTreeMap<String, String>>,
    /// `network_mtu`.
    pub network_mtu: Option<i64>,
    /// `log_options`.
    pub log_options: Option<BTreeMap<String, String>>,
}

/// `[runners.cache]` (`cacheconfig.Config`), plus the pre-12.0 flat S3 keys.
#[derive(Debug, Default, Deserialize)]
pub struct RawCache {
    /// `Type`: `s3`, `s3v2`, `gcs`, `gcsv2`, `azure`, or empty.
    #[serde(rename = "Type")]
    pub cache_type: Option<Spanned<String>>,
    /// `Path`: prefix of object names.
    #[serde(rename = "Path")]
    pub path: Option<String>,
    /// `Shared`: drop the `runner/<short-token>` segment so all runners share the cache.
    #[serde(rename = "Shared")]
    pub shared: Option<bool>,
    /// `MaxUploadedArchiveSize`, in bytes; 0 = unlimited.
    #[serde(rename = "MaxUploadedArchiveSize")]
    pub max_uploaded_archive_size: Option<Spanned<i64>>,
    /// `[runners.cache.s3]`.
    pub s3: Option<RawCacheS3>,
    /// `[runners.cache.gcs]`.
    pub gcs: Option<RawCacheGcs>,
    /// `[runners.cache.azure]`.
    pub azure: Option<RawCacheAzure>,
    /// Legacy flat `ServerAddress` (GitLab Runner < 12.0).
    #[serde(rename = "ServerAddress")]
    pub server_address: Option<String>,
    /// Legacy flat `AccessKey` (GitLab Runner < 12.0).
    #[serde(rename = "AccessKey")]
    pub access_key: Option<Secret>,
    /// Legacy flat `SecretKey` (GitLab Runner < 12.0).
    #[serde(rename = "SecretKey")]
    pub secret_key: Option<Secret>,
    /// Legacy flat `BucketName` (GitLab Runner < 12.0).
    #[serde(rename = "BucketName")]
    pub bucket_name: Option<String>,
    /// Legacy flat `BucketLocation` (GitLab Runner < 12.0).
    #[serde(rename = "BucketLocation")]
    pub bucket_location: Option<String>,
    /// Legacy flat `Insecure` (GitLab Runner < 12.0).
    #[serde(rename = "Insecure")]
    pub insecure: Option<bool>,
}

impl RawCache {
    /// True when any of the legacy flat S3 keys is present.
    pub fn has_legacy_s3_keys(&self) -> bool {
        self.server_address.is_some()
            || self.access_key.is_some()
            || self.secret_key.is_some()
            || self.bucket_name.is_some()
            || self.bucket_location.is_some()
            || self.insecure.is_some()
    }
}

/// `[runners.cache.s3]` (`CacheS3Config`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawCacheS3 {
    /// `ServerAddress` (`host:port`).
    pub server_address: Option<String>,
    /// `AccessKey`.
    pub access_key: Option<Secret>,
    /// `SecretKey`.
    pub secret_key: Option<Secret>,
    /// `SessionToken`.
    pub session_token: Option<Secret>,
    /// `BucketName`.
    pub bucket_name: Option<String>,
    /// `BucketLocation` (region).
    pub bucket_location: Option<String>,
    /// `Insecure`: plain HTTP.
    pub insecure: Option<bool>,
    /// `AuthenticationType`: `iam` or `access-key`.
    pub authentication_type: Option<String>,
    /// `ServerSideEncryption`.
    pub server_side_encryption: Option<String>,
    /// `ServerSideEncryptionKeyID`.
    #[serde(rename = "ServerSideEncryptionKeyID")]
    pub server_side_encryption_key_id: Option<String>,
    /// `DualStack`.
    pub dual_stack: Option<bool>,
    /// `PathStyle`.
    pub path_style: Option<bool>,
    /// `Accelerate`.
    pub accelerate: Option<bool>,
    /// `RoleARN`.
    #[serde(rename = "RoleARN")]
    pub role_arn: Option<String>,
    /// `UploadRoleARN`.
    #[serde(rename = "UploadRoleARN")]
    pub upload_role_arn: Option<String>,
    /// `AssumeRoleMaxConcurrency`.
    pub assume_role_max_concurrency: Option<i64>,
    /// `DisableAssumeRoleCredentialsCaching`.
    pub disable_assume_role_credentials_caching: Option<bool>,
}

/// `[runners.cache.gcs]` (`CacheGCSConfig`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawCacheGcs {
    /// `AccessID`.
    #[serde(rename = "AccessID")]
    pub access_id: Option<String>,
    /// `PrivateKey`.
    pub private_key: Option<Secret>,
    /// `CredentialsFile`.
    pub credentials_file: Option<String>,
    /// `BucketName`.
    pub bucket_name: Option<String>,
    /// `UniverseDomain`.
    pub universe_domain: Option<String>,
}

/// `[runners.cache.azure]` (`CacheAzureConfig`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawCacheAzure {
    /// `AccountName`.
    pub account_name: Option<String>,
    /// `AccountKey`.
    pub account_key: Option<Secret>,
    /// `ContainerName`.
    pub container_name: Option<String>,
    /// `StorageDomain`.
    pub storage_domain: Option<String>,
}

/// `[runners.machine]` (`DockerMachine`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawMachine {
    /// `IdleCount`.
    pub idle_count: Option<Spanned<i64>>,
    /// `IdleCountMin`.
    pub idle_count_min: Option<Spanned<i64>>,
    /// `IdleScaleFactor` (a float; see [`TomlNumber`]).
    pub idle_scale_factor: Option<Spanned<TomlNumber>>,
    /// `IdleTime`, in seconds.
    pub idle_time: Option<Spanned<i64>>,
    /// `MaxGrowthRate`.
    pub max_growth_rate: Option<Spanned<i64>>,
    /// `MaxBuilds`.
    pub max_builds: Option<Spanned<i64>>,
    /// `MachineDriver`.
    pub machine_driver: Option<String>,
    /// `MachineName` (a template containing `%s`).
    pub machine_name: Option<String>,
    /// `MachineOptions` (`key=value` strings). Held as secrets because some are credentials;
    /// the validated type reveals the others.
    pub machine_options: Option<Vec<Secret>>,
    /// `MachineOptionsWithName` (`--opt=%s` templates; secret like `MachineOptions`).
    pub machine_options_with_name: Option<Vec<Spanned<Secret>>>,
    /// `MaxRemovalAttempts`.
    pub max_removal_attempts: Option<Spanned<i64>>,
    /// Deprecated `OffPeakPeriods` (removed in 14.0).
    pub off_peak_periods: Option<Vec<String>>,
    /// Deprecated `OffPeakTimezone` (removed in 14.0).
    pub off_peak_timezone: Option<String>,
    /// Deprecated `OffPeakIdleCount` (removed in 14.0).
    pub off_peak_idle_count: Option<i64>,
    /// Deprecated `OffPeakIdleTime` (removed in 14.0).
    pub off_peak_idle_time: Option<i64>,
    /// `[[runners.machine.autoscaling]]` (lowercase key in GitLab Runner).
    #[serde(rename = "autoscaling")]
    pub autoscaling: Option<Vec<RawMachineAutoscaling>>,
}

impl RawMachine {
    /// True when any deprecated `OffPeak*` key is present.
    pub fn has_off_peak(&self) -> bool {
        self.off_peak_periods.is_some()
            || self.off_peak_timezone.is_some()
            || self.off_peak_idle_count.is_some()
            || self.off_peak_idle_time.is_some()
    }
}

/// `[[runners.machine.autoscaling]]` (`DockerMachineAutoscaling`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawMachineAutoscaling {
    /// `Periods`: 7-field cron expressions.
    pub periods: Option<Vec<String>>,
    /// `Timezone`.
    pub timezone: Option<String>,
    /// `IdleCount`.
    pub idle_count: Option<Spanned<i64>>,
    /// `IdleCountMin`.
    pub idle_count_min: Option<Spanned<i64>>,
    /// `IdleScaleFactor`.
    pub idle_scale_factor: Option<Spanned<TomlNumber>>,
    /// `IdleTime`, in seconds.
    pub idle_time: Option<Spanned<i64>>,
}

/// `[runners.autoscaler]` (`AutoscalerConfig`).
#[derive(Debug, Default, Deserialize)]
pub struct RawAutoscaler {
    /// `capacity_per_instance`.
    pub capacity_per_instance: Option<Spanned<i64>>,
    /// `max_use_count`.
    pub max_use_count: Option<Spanned<i64>>,
    /// `max_instances`.
    pub max_instances: Option<Spanned<i64>>,
    /// `plugin`.
    pub plugin: Option<String>,
    /// `[runners.autoscaler.plugin_config]`: passed to the plugin unread.
    pub plugin_config: Option<OpaqueTable>,
    /// `[runners.autoscaler.connector_config]`.
    pub connector_config: Option<RawConnectorConfig>,
    /// `[[runners.autoscaler.policy]]`.
    pub policy: Option<Vec<RawAutoscalerPolicy>>,
    /// `instance_ready_command`.
    pub instance_ready_command: Option<String>,
    /// `instance_acquire_timeout`, a Go duration.
    pub instance_acquire_timeout: Option<Spanned<GoDuration>>,
    /// `update_interval`, a Go duration.
    pub update_interval: Option<Spanned<GoDuration>>,
    /// `update_interval_when_expecting`, a Go duration.
    pub update_interval_when_expecting: Option<Spanned<GoDuration>>,
    /// `deletion_retry_interval`, a Go duration.
    pub deletion_retry_interval: Option<Spanned<GoDuration>>,
    /// `shutdown_deletion_interval`, a Go duration.
    pub shutdown_deletion_interval: Option<Spanned<GoDuration>>,
    /// `shutdown_deletion_retries`.
    pub shutdown_deletion_retries: Option<Spanned<i64>>,
    /// `failure_threshold`.
    pub failure_threshold: Option<Spanned<i64>>,
    /// `[runners.autoscaler.scale_throttle]`.
    pub scale_throttle: Option<RawScaleThrottle>,
    /// `reservation_throttling`.
    pub reservation_throttling: Option<bool>,
    /// `log_internal_ip`.
    pub log_internal_ip: Option<bool>,
    /// `log_external_ip`.
    pub log_external_ip: Option<bool>,
    /// `delete_instances_on_shutdown`.
    pub delete_instances_on_shutdown: Option<bool>,
    /// `[runners.autoscaler.vm_isolation]`, ignored.
    pub vm_isolation: Option<OpaqueTable>,
    /// `[runners.autoscaler.state_storage]`.
    pub state_storage: Option<RawStateStorage>,
    /// `instance_operation_time_buckets` (metrics).
    pub instance_operation_time_buckets: Option<Vec<f64>>,
    /// `instance_creation_time_buckets` (metrics).
    pub instance_creation_time_buckets: Option<Vec<f64>>,
    /// `instance_is_running_time_buckets` (metrics).
    pub instance_is_running_time_buckets: Option<Vec<f64>>,
    /// `instance_deletion_time_buckets` (metrics).
    pub instance_deletion_time_buckets: Option<Vec<f64>>,
    /// `instance_readiness_time_buckets` (metrics).
    pub instance_readiness_time_buckets: Option<Vec<f64>>,
    /// `instance_life_duration_buckets` (metrics).
    pub instance_life_duration_buckets: Option<Vec<f64>>,
}

/// `[runners.autoscaler.connector_config]` (`ConnectorConfig`).
#[derive(Debug, Default, Deserialize)]
pub struct RawConnectorConfig {
    /// `os`.
    pub os: Option<String>,
    /// `arch`.
    pub arch: Option<String>,
    /// `protocol` (ssh, winrm).
    pub protocol: Option<String>,
    /// `protocol_port`.
    pub protocol_port: Option<i64>,
    /// `username`.
    pub username: Option<String>,
    /// `password`.
    pub password: Option<Secret>,
    /// `key_path`.
    pub key_path: Option<String>,
    /// `use_static_credentials`.
    pub use_static_credentials: Option<bool>,
    /// `keepalive`, a Go duration.
    pub keepalive: Option<Spanned<GoDuration>>,
    /// `timeout`, a Go duration.
    pub timeout: Option<Spanned<GoDuration>>,
    /// `use_external_addr`.
    pub use_external_addr: Option<bool>,
}

/// `[[runners.autoscaler.policy]]` (`AutoscalerPolicyConfig`).
#[derive(Debug, Default, Deserialize)]
pub struct RawAutoscalerPolicy {
    /// `periods`: 5-field cron expressions.
    pub periods: Option<Vec<String>>,
    /// `timezone`.
    pub timezone: Option<String>,
    /// `idle_count`, in job slots.
    pub idle_count: Option<Spanned<i64>>,
    /// `idle_time`, a Go duration.
    pub idle_time: Option<Spanned<GoDuration>>,
    /// `scale_factor`.
    pub scale_factor: Option<Spanned<TomlNumber>>,
    /// `scale_factor_limit`.
    pub scale_factor_limit: Option<Spanned<i64>>,
    /// `preemptive_mode`.
    pub preemptive_mode: Option<bool>,
}

/// `[runners.autoscaler.scale_throttle]` (`AutoscalerScaleThrottle`).
#[derive(Debug, Default, Deserialize)]
pub struct RawScaleThrottle {
    /// `limit`: instances per second; 0 = default, -1 = unlimited.
    pub limit: Option<Spanned<i64>>,
    /// `burst`.
    pub burst: Option<Spanned<i64>>,
}

/// `[runners.autoscaler.state_storage]` (`AutoscalerStateStorage`).
#[derive(Debug, Default, Deserialize)]
pub struct RawStateStorage {
    /// `enabled`.
    pub enabled: Option<bool>,
    /// `dir`.
    pub dir: Option<String>,
    /// `keep_instance_with_acquisitions`.
    pub keep_instance_with_acquisitions: Option<bool>,
}

/// A TOML table accepted whole and not interpreted. Its `Debug` prints only the key names,
/// because such sections can hold credentials (`[runners.kubernetes] bearer_token`,
/// `[runners.ssh] password`, plugin settings).
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct OpaqueTable(pub toml::Table);

impl fmt::Debug for OpaqueTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A Go `time.Duration` as BurntSushi/toml decodes it: a string for `time.ParseDuration`
/// (`"15m"`, `"1m30s"`) or an integer number of nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoDuration {
    /// A duration string, not yet parsed.
    Text(String),
    /// An integer: nanoseconds.
    Nanos(i64),
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Go duration string such as \"15m\" or an integer of nanoseconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoDuration, E> {
                Ok(GoDuration::Text(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GoDuration, E> {
                Ok(GoDuration::Nanos(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GoDuration, E> {
                i64::try_from(v)
                    .map(GoDuration::Nanos)
                    .map_err(|_| E::custom("duration out of range"))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A TOML number that remembers whether it was written as an integer or a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TomlNumber {
    /// Written as an integer (`1`).
    Int(i64),
    /// Written as a float (`1.0`).
    Float(f64),
}

impl TomlNumber {
    /// The value as a float.
    pub fn as_f64(self) -> f64 {
        match self {
            TomlNumber::Int(i) => i as f64,
            TomlNumber::Float(x) => x,
        }
    }
}

impl<'de> Deserialize<'de> for TomlNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TomlNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a float such as 1.5")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TomlNumber, E> {
                Ok(TomlNumber::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TomlNumber, E> {
                i64::try_from(v).map(TomlNumber::Int).map_err(|_| E::custom("number out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<TomlNumber, E> {
                Ok(TomlNumber::Float(v))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// One string or a list of strings (`StringOrArray` in GitLab Runner).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringOrList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringOrList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringOrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringOrList, E> {
                Ok(StringOrList(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringOrList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(StringOrList(out))
            }
        }
        deserializer.deserialize_any(V)
    }
}
