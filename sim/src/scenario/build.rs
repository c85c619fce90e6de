//! [`Scenario::build`]: a validated scenario turned into the core's [`FleetSpec`] (the
//! runners of every host, their docker+machine or docker-autoscaler specs with the
//! autoscaling periods), and each runner's machine type priced from the cloud's table.

use fleetsim_core::cache::{PullPolicy, RunnerCache};
use fleetsim_core::docker_machine::{DockerMachineSpec, IdleSettings};
use fleetsim_core::spec::{ExecutorKind, FleetSpec, ProcessSpec, RunnerSpec};
use fleetsim_core::taskscaler::{AutoscalerSpec, Policy, Throttle};
use fleetsim_core::{ProjectId, RunnerId};
use rand::RngExt;

use super::{
    DEFAULT_INSTANCE_TYPE, MAX_SIMULATED_WORKERS, PREPARE_ATTEMPTS, PREPARE_RETRY_PAUSE_MS,
    PollPhase, Scenario,
};
use crate::cloud::ec2::MachineType;
use crate::cloud::prices::{self, Market};
use crate::config::{
    AutoscalerSettings, Executor, MachineSettings, PullPolicy as ConfigPullPolicy,
};
use crate::input_error::InputError;
use crate::periods::{CalendarPeriods, CronDialect, PeriodSet};
use crate::seeds::SeedTree;

impl Scenario {
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
            containers: self.calibration.as_ref().map(|c| c.container_costs()).unwrap_or_default(),
            emit_every_step: false,
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
