//! Phase two of loading a `config.toml`: the raw file checked, section by section, and turned
//! into the domain types of [`super::validated`], with every default applied once (reference
//! §N as in `validated.rs`). State shared by the checks (the text for line numbers, the file
//! name, the warnings so far) is in [`Ctx`].

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::go_duration::parse_go_duration_nanos;
use super::labels;
use super::raw::{
    GoDuration, RawAutoscaler, RawAutoscalerPolicy, RawCache, RawConfig, RawConnectorConfig,
    RawDocker, RawMachine, RawMachineAutoscaling, RawRunner, TomlNumber,
};
use super::secret::Secret;
use super::validated::{
    AutoscalerPolicy, AutoscalerSettings, AzureSettings, CacheSettings, CacheType,
    ConnectorSettings, DEFAULT_CHECK_INTERVAL_MS, DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_INSTANCE_ACQUIRE_TIMEOUT_MS, DEFAULT_MAX_REMOVAL_ATTEMPTS, DEFAULT_POLICY_PERIOD,
    DEFAULT_SCALE_THROTTLE_PER_S, DEFAULT_SHUTDOWN_TIMEOUT_MS, DEFAULT_UPDATE_INTERVAL_MS,
    DEFAULT_UPDATE_INTERVAL_WHEN_EXPECTING_MS, DockerSettings, Executor, GcsSettings,
    MachineAutoscaling, MachineOptions, MachineSettings, PullPolicy, RunnerConfig, RunnerEntry,
    S3Settings, ScaleThrottle, has_token, is_secret_option,
};
use crate::input_error::InputError;

/// State shared by the validation functions: the text (for line numbers), the file name and
/// the warnings collected so far.
pub(super) struct Ctx<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a Path,
    pub(super) notes: Vec<InputError>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(text: &'a str, file: &'a Path) -> Self {
        Ctx { text, file, notes: Vec::new() }
    }

    pub(super) fn error(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> InputError {
        InputError::file(self.file, message).at_offset(self.text, span.start).key(key)
    }

    /// An error at `key` (a dotted path), located by finding the key in the text: for values
    /// that the raw types keep without a span.
    fn error_at_key(&self, key: &str, message: impl Into<String>) -> InputError {
        let error = InputError::file(self.file, message).key(key);
        let span = super::overrides::parse_key_path(key)
            .ok()
            .and_then(|path| super::span_of(self.text, &path));
        match span {
            Some(span) => error.at_offset(self.text, span.start),
            None => error,
        }
    }

    /// Compiles a section's periods and time zone as the runner does when it loads the file,
    /// so that every command refuses what GitLab Runner refuses (GitLab Runner 19.4
    /// `common/config.go` `(*RunnerConfig).loadConfig` → `(*DockerMachine).CompilePeriods`,
    /// which fails the config load on a bad expression or an unknown `time.LoadLocation`).
    fn check_periods(
        &self,
        base: &str,
        keys: (&str, &str),
        periods: &[String],
        timezone: Option<&str>,
        dialect: crate::periods::CronDialect,
    ) -> Result<(), InputError> {
        for (i, p) in periods.iter().enumerate() {
            crate::periods::PeriodSet::parse(std::slice::from_ref(p), "", dialect).map_err(
                |e| {
                    let why = e.split_once(": ").map_or(e.as_str(), |(_, why)| why).to_owned();
                    self.error_at_key(&format!("{base}.{}[{i}]", keys.0), format!("{p:?}: {why}"))
                },
            )?;
        }
        if let Some(tz) = timezone {
            crate::periods::load_zone(tz)
                .map_err(|e| self.error_at_key(&format!("{base}.{}", keys.1), e))?;
        }
        Ok(())
    }

    fn note(&mut self, span: Option<Range<usize>>, key: &str, message: impl Into<String>) {
        let mut warning = InputError::file(self.file, message).key(key);
        if let Some(span) = span {
            warning = warning.at_offset(self.text, span.start);
        }
        self.notes.push(warning);
    }

    /// An integer in `min..=u32::MAX`.
    fn u32_at_least(
        &self,
        v: &Spanned<i64>,
        key: &str,
        min: i64,
        why: &str,
    ) -> Result<u32, InputError> {
        let n = *v.get_ref();
        if n < min {
            return Err(self.error(v.span(), key, format!("must be ≥ {min}{why}, got {n}")));
        }
        u32::try_from(n)
            .map_err(|_| self.error(v.span(), key, format!("must be ≤ {}, got {n}", u32::MAX)))
    }

    /// A non-negative count; 0 when absent.
    fn count(&self, v: Option<&Spanned<i64>>, key: &str) -> Result<u32, InputError> {
        v.map_or(Ok(0), |v| self.u32_at_least(v, key, 0, ""))
    }

    /// A non-negative float. An integer is accepted as GitLab Runner 19.4 accepts it, with a
    /// warning (see `float_from_integer_note`).
    fn non_negative_float(
        &mut self,
        v: &Spanned<TomlNumber>,
        key: &str,
    ) -> Result<f64, InputError> {
        let x = v.get_ref().as_f64();
        if !x.is_finite() || x < 0.0 {
            return Err(self.error(v.span(), key, format!("must be a number ≥ 0.0, got {x}")));
        }
        if let TomlNumber::Int(i) = *v.get_ref() {
            self.note(Some(v.span()), key, float_from_integer_note(i));
        }
        Ok(x)
    }

    /// A non-negative Go duration in milliseconds (truncated).
    fn duration_ms(&mut self, v: &Spanned<GoDuration>, key: &str) -> Result<u64, InputError> {
        let nanos = match v.get_ref() {
            GoDuration::Text(text) => {
                parse_go_duration_nanos(text).map_err(|m| self.error(v.span(), key, m))?
            }
            GoDuration::Nanos(n) => {
                if *n > 0 {
                    self.note(
                        Some(v.span()),
                        key,
                        format!(
                            "an integer duration is read by GitLab Runner as nanoseconds \
                             ({n} ns); write \"{n}s\" if seconds were meant"
                        ),
                    );
                }
                *n
            }
        };
        u64::try_from(nanos)
            .map(|ns| ns / 1_000_000)
            .map_err(|_| self.error(v.span(), key, "must not be negative"))
    }

    fn opt_duration_ms(
        &mut self,
        v: Option<&Spanned<GoDuration>>,
        key: &str,
    ) -> Result<Option<u64>, InputError> {
        v.map(|v| self.duration_ms(v, key)).transpose()
    }
}

/// `(*RunCommand).checkConfigConcurrency` (commands/multi.go): the warning GitLab Runner 19.4
/// logs at start and at every reload when `concurrent` is below the number of runners, or
/// runners keep `request_concurrency` at 1 (optionally with `limit` 1 or 2). Its issues and
/// solutions in GitLab Runner's words, on one line; `None` when there is nothing to say.
pub fn concurrency_warning(concurrent: u32, runners: &[RunnerEntry]) -> Option<String> {
    let mut issues = Vec::new();
    let mut solutions = Vec::new();
    let n = runners.len();
    if (concurrent as usize) < n {
        issues.push(format!(
            "Worker starvation bottleneck: 'concurrent' setting ({concurrent}) is less than \
             number of runners ({n})"
        ));
        solutions
            .push(format!("Increase 'concurrent' to at least {} (current: {concurrent})", n + 1));
    }
    // `GetRequestConcurrency` is max(1, request_concurrency); the entries hold it so already.
    let low = runners.iter().filter(|r| r.request_concurrency <= 1).count();
    let restrictive = runners
        .iter()
        .filter(|r| r.limit > 0 && r.limit <= 2 && r.request_concurrency <= 1)
        .count();
    if low > 0 {
        issues.push(format!(
            "Request bottleneck: {low} runners have request_concurrency=1, causing job delays \
             during long polling"
        ));
        solutions.push(format!(
            "Increase 'request_concurrency' to 2-4 for {low} runners currently using \
             request_concurrency=1"
        ));
    }
    if restrictive > 0 {
        issues.push(format!(
            "Build limit bottleneck: {restrictive} runners have low 'limit' settings (≤2) with \
             request_concurrency=1"
        ));
        solutions.push(format!(
            "For {restrictive} runners with low limits: either increase 'limit' to 5+ or \
             increase 'request_concurrency' to 2+"
        ));
    }
    if issues.is_empty() {
        return None;
    }
    let solutions: Vec<String> =
        solutions.iter().enumerate().map(|(i, s)| format!("{}. {s}", i + 1)).collect();
    Some(format!(
        "CONFIGURATION: Long polling issues detected. Issues found: {}. This can cause job \
         delays matching your GitLab instance's long polling timeout. Recommended solutions: \
         {}. (GitLab Runner 19.4 logs this at start and at every reload)",
        issues.join("; "),
        solutions.join(" ")
    ))
}

/// Why an integer `IdleScaleFactor = 1` is a warning and not an error.
fn float_from_integer_note(i: i64) -> String {
    format!(
        "written as an integer: GitLab Runner 19.4 (BurntSushi/toml 1.6, which converts \
         integers to floats) reads it as {i}.0, but its docs ask for a float and runners \
         built on BurntSushi/toml < 1.0 refused integers here; write {i}.0"
    )
}

/// The most seconds GitLab Runner can hold in a `time.Duration` (int64 nanoseconds):
/// 9,223,372,036 s, about 292 years. `check_interval` and `shutdown_timeout` are integer
/// seconds multiplied by `time.Second` (GitLab Runner 19.4 `common/config.go`
/// `(*Config).GetCheckInterval`, `(*Config).GetShutdownTimeout`); past this the product wraps
/// around, so a larger value is refused.
pub const MAX_GO_SECONDS: i64 = i64::MAX / 1_000_000_000;

/// A `check_interval` above this (one hour) draws a warning: GitLab Runner accepts it.
pub const LONG_CHECK_INTERVAL_S: i64 = 3_600;

fn go_seconds_overflow(s: i64) -> String {
    format!(
        "must be at most {MAX_GO_SECONDS} s (about 292 years), got {s}: GitLab Runner 19.4 \
         multiplies it by time.Second in a Go time.Duration, which wraps around past that \
         ((*Config).GetCheckInterval, GetShutdownTimeout)"
    )
}

/// Phase two: checks the raw file and builds the domain types.
pub(super) fn validate(raw: &RawConfig, ctx: &mut Ctx<'_>) -> Result<RunnerConfig, InputError> {
    let concurrent = match &raw.concurrent {
        None => {
            return Err(InputError::file(
                ctx.file,
                "missing: GitLab Runner needs `concurrent`, an integer ≥ 1 (the number of jobs \
                 it runs at once)",
            )
            .key("concurrent"));
        }
        Some(v) if *v.get_ref() < 1 => {
            return Err(ctx.error(
                v.span(),
                "concurrent",
                format!(
                    "must be ≥ 1, got {}: GitLab Runner refuses to start with concurrent < 1 \
                     (it is the size of its worker pool, reference §1.1)",
                    v.get_ref()
                ),
            ));
        }
        Some(v) => ctx.u32_at_least(v, "concurrent", 1, "")?,
    };
    let check_interval_ms = match raw.check_interval.as_ref() {
        Some(v) if *v.get_ref() > MAX_GO_SECONDS => {
            return Err(ctx.error(v.span(), "check_interval", go_seconds_overflow(*v.get_ref())));
        }
        Some(v) if *v.get_ref() > LONG_CHECK_INTERVAL_S => {
            let s = *v.get_ref();
            ctx.note(
                Some(v.span()),
                "check_interval",
                format!(
                    "{s} s ({:.1} days): GitLab Runner accepts it, but each runner then asks for \
                     jobs once every {s} s and a job can wait that long; a run whose next event \
                     lies more than 400 days after the last job stops as stalled",
                    s as f64 / 86_400.0
                ),
            );
            u64::try_from(s).unwrap_or(u64::MAX).saturating_mul(1_000)
        }
        Some(v) if *v.get_ref() > 0 => {
            u64::try_from(*v.get_ref()).unwrap_or(u64::MAX).saturating_mul(1_000)
        }
        _ => DEFAULT_CHECK_INTERVAL_MS,
    };
    let shutdown_timeout_ms = match raw.shutdown_timeout.as_ref() {
        Some(v) if *v.get_ref() > MAX_GO_SECONDS => {
            return Err(ctx.error(v.span(), "shutdown_timeout", go_seconds_overflow(*v.get_ref())));
        }
        Some(v) if *v.get_ref() > 0 => {
            u64::try_from(*v.get_ref()).unwrap_or(u64::MAX).saturating_mul(1_000)
        }
        _ => DEFAULT_SHUTDOWN_TIMEOUT_MS,
    };
    let connection_max_age_ms =
        ctx.opt_duration_ms(raw.connection_max_age.as_ref(), "connection_max_age")?;
    if raw.runners.is_empty() {
        return Err(InputError::file(
            ctx.file,
            "no [[runners]] entries: GitLab Runner would have no runner to ask for jobs",
        )
        .key("runners"));
    }
    // `(*Config).Validate`: the global labels first, then each runner's (common/config.go).
    if let Some(global) = &raw.labels {
        labels::check_patterns(ctx, "labels", global)?;
    }
    let mut runners = Vec::with_capacity(raw.runners.len());
    for (index, runner) in raw.runners.iter().enumerate() {
        runners.push(runner_entry(ctx, index, runner)?);
        let table = format!("runners[{index}].labels");
        if let Some(own) = &runner.labels {
            labels::check_patterns(ctx, &table, own)?;
        }
        labels::check_count(ctx, &table, raw.labels.as_ref(), runner.labels.as_ref())?;
    }
    if let Some(warning) = concurrency_warning(concurrent, &runners) {
        ctx.note(raw.concurrent.as_ref().map(Spanned::span), "concurrent", warning);
    }
    Ok(RunnerConfig {
        concurrent,
        check_interval_ms,
        log_level: raw.log_level.clone(),
        log_format: raw.log_format.clone(),
        listen_address: raw.listen_address.clone(),
        shutdown_timeout_ms,
        connection_max_age_ms,
        runners,
    })
}

fn runner_entry(ctx: &mut Ctx<'_>, index: usize, r: &RawRunner) -> Result<RunnerEntry, InputError> {
    let base = format!("runners[{index}]");
    let k = |name: &str| format!("{base}.{name}");
    let executor = match r.executor.as_deref() {
        Some(name) => Executor::from_name(name),
        None => {
            ctx.note(
                None,
                &k("executor"),
                "missing: GitLab Runner cannot run jobs for this runner",
            );
            Executor::Other(String::new())
        }
    };
    let token = r.token.clone().unwrap_or_default();
    if !has_token(&token) {
        // GitLab Runner 19.4 commands/multi.go (*RunCommand).loadConfig logs this (with its
        // own wording below) and (*RunCommand).feedRunner never feeds the runner.
        ctx.note(
            None,
            &k("token"),
            "missing, empty or whitespace: GitLab Runner 19.4 warns \"Runner token is empty or \
             whitespace; this runner will be skipped during job polling\" and never asks for \
             jobs for it (RunnerCredentials.HasToken, reference §1.2)",
        );
    }
    if r.url.as_deref().unwrap_or("").is_empty() {
        ctx.note(None, &k("url"), "missing or empty: this runner cannot reach GitLab");
    }
    let limit = match &r.limit {
        Some(v) => ctx.u32_at_least(v, &k("limit"), 0, " (0 means unlimited)")?,
        None => 0,
    };
    let request_concurrency = match &r.request_concurrency {
        Some(v) if *v.get_ref() < 1 => 1,
        Some(v) => ctx.u32_at_least(v, &k("request_concurrency"), 1, "")?,
        None => 1,
    };
    ctx.count(r.output_limit.as_ref(), &k("output_limit"))?;
    ctx.opt_duration_ms(r.unhealthy_interval.as_ref(), &k("unhealthy_interval"))?;
    ctx.opt_duration_ms(r.prepare_timeout.as_ref(), &k("prepare_timeout"))?;
    ctx.opt_duration_ms(r.get_sources_timeout.as_ref(), &k("get_sources_timeout"))?;

    let docker = match &r.docker {
        Some(d) => docker_settings(ctx, &k("docker"), d)?,
        None => DockerSettings::default(),
    };
    let cache = match &r.cache {
        Some(c) => cache_settings(ctx, &k("cache"), c)?,
        None => CacheSettings::default(),
    };
    let machine =
        r.machine.as_ref().map(|m| machine_settings(ctx, &k("machine"), m)).transpose()?;
    let autoscaler =
        r.autoscaler.as_ref().map(|a| autoscaler_settings(ctx, &k("autoscaler"), a)).transpose()?;

    match executor {
        Executor::DockerMachine if machine.is_none() => ctx.note(
            None,
            &k("machine"),
            "executor is docker+machine but there is no [runners.machine] section: GitLab \
             Runner cannot create machines",
        ),
        Executor::DockerAutoscaler | Executor::Instance if autoscaler.is_none() => ctx.note(
            None,
            &k("autoscaler"),
            format!(
                "executor is {executor} but there is no [runners.autoscaler] section: GitLab \
                 Runner cannot create instances"
            ),
        ),
        _ => {}
    }

    Ok(RunnerEntry {
        name: r.name.clone().unwrap_or_default(),
        url: r.url.clone().unwrap_or_default(),
        token,
        executor,
        limit,
        request_concurrency,
        strict_check_interval: r.strict_check_interval.unwrap_or(false),
        adaptive_request_concurrency: r
            .feature_flags
            .as_ref()
            .and_then(|f| f.get("FF_USE_ADAPTIVE_REQUEST_CONCURRENCY").copied()),
        hash_cache_keys: r
            .feature_flags
            .as_ref()
            .and_then(|f| f.get("FF_HASH_CACHE_KEYS").copied())
            .unwrap_or(false),
        builds_dir: r.builds_dir.clone(),
        cache_dir: r.cache_dir.clone(),
        docker,
        cache,
        machine,
        autoscaler,
    })
}

fn docker_settings(
    ctx: &mut Ctx<'_>,
    base: &str,
    d: &RawDocker,
) -> Result<DockerSettings, InputError> {
    let mut pull_policy = Vec::new();
    if let Some(policies) = &d.pull_policy {
        for name in &policies.get_ref().0 {
            let policy = PullPolicy::from_name(name).ok_or_else(|| {
                ctx.error(
                    policies.span(),
                    &format!("{base}.pull_policy"),
                    format!(
                        "unsupported pull_policy \"{name}\": GitLab Runner accepts always, \
                         if-not-present and never (with anything else every job fails)"
                    ),
                )
            })?;
            pull_policy.push(policy);
        }
    }
    if pull_policy.is_empty() {
        pull_policy.push(PullPolicy::Always);
    }
    Ok(DockerSettings {
        image: d.image.clone(),
        privileged: d.privileged.unwrap_or(false),
        disable_cache: d.disable_cache.unwrap_or(false),
        volumes: d.volumes.clone().unwrap_or_default(),
        pull_policy,
        helper_image: d.helper_image.clone(),
    })
}

fn cache_settings(
    ctx: &mut Ctx<'_>,
    base: &str,
    c: &RawCache,
) -> Result<CacheSettings, InputError> {
    let k = |name: &str| format!("{base}.{name}");
    let cache_type = match &c.cache_type {
        None => CacheType::None,
        Some(t) => match t.get_ref().as_str() {
            "" => CacheType::None,
            "s3" | "s3v2" => CacheType::S3,
            "gcs" | "gcsv2" => CacheType::Gcs,
            "azure" => CacheType::Azure,
            other => {
                ctx.note(
                    Some(t.span()),
                    &k("Type"),
                    format!(
                        "unknown cache Type \"{other}\": GitLab Runner knows s3, s3v2, gcs, \
                         gcsv2 and azure, and uses no distributed cache otherwise"
                    ),
                );
                CacheType::None
            }
        },
    };
    let max_uploaded_archive_size =
        ctx.count(c.max_uploaded_archive_size.as_ref(), &k("MaxUploadedArchiveSize"))?;
    if c.has_legacy_s3_keys() {
        let effect = if cache_type == CacheType::S3 && c.s3.is_none() {
            "so GitLab Runner 19.4 has no S3 cache here (cache/s3v2 New: \"missing S3 \
             configuration\"; the job gets cache/cache.go's nopAdapter). fleetsim simulates \
             what the runner does: only the local cache on each machine, so a job on a machine \
             that never ran its project misses and pays its cache_miss_penalty (the run's \
             misses are in summary.cache). Fix: move these keys into [runners.cache.s3]; to \
             model the cache you meant without editing the file, set [cache] distributed = \
             true in the scenario"
        } else {
            "GitLab Runner 19.4 ignores them (it reads S3 settings only from \
             [runners.cache.s3]); fleetsim fills keys missing there from them only for \
             `sim migrate` and for [cache] distributed = true"
        };
        ctx.note(
            None,
            base,
            format!(
                "S3 settings directly in [runners.cache] (ServerAddress, AccessKey, …) are the \
                 form GitLab Runner dropped in 12.0, {effect}"
            ),
        );
    }
    let s3 = if c.s3.is_some() || c.has_legacy_s3_keys() {
        let section = c.s3.as_ref();
        let pick = |from_section: Option<&String>, flat: &Option<String>| {
            from_section.or(flat.as_ref()).cloned()
        };
        Some(S3Settings {
            server_address: pick(
                section.and_then(|s| s.server_address.as_ref()),
                &c.server_address,
            ),
            access_key: section.and_then(|s| s.access_key.clone()).or_else(|| c.access_key.clone()),
            secret_key: section.and_then(|s| s.secret_key.clone()).or_else(|| c.secret_key.clone()),
            session_token: section.and_then(|s| s.session_token.clone()),
            bucket_name: pick(section.and_then(|s| s.bucket_name.as_ref()), &c.bucket_name)
                .unwrap_or_default(),
            bucket_location: pick(
                section.and_then(|s| s.bucket_location.as_ref()),
                &c.bucket_location,
            ),
            insecure: section.and_then(|s| s.insecure).or(c.insecure).unwrap_or(false),
            authentication_type: section.and_then(|s| s.authentication_type.clone()),
            role_arn: section.and_then(|s| s.role_arn.clone()),
            upload_role_arn: section.and_then(|s| s.upload_role_arn.clone()),
            path_style: section.and_then(|s| s.path_style),
            dual_stack: section.and_then(|s| s.dual_stack),
            accelerate: section.and_then(|s| s.accelerate).unwrap_or(false),
            server_side_encryption: section.and_then(|s| s.server_side_encryption.clone()),
        })
    } else {
        None
    };
    let gcs = c.gcs.as_ref().map(|g| GcsSettings {
        access_id: g.access_id.clone(),
        private_key: g.private_key.clone(),
        credentials_file: g.credentials_file.clone(),
        bucket_name: g.bucket_name.clone().unwrap_or_default(),
        universe_domain: g.universe_domain.clone(),
    });
    let azure = c.azure.as_ref().map(|a| AzureSettings {
        account_name: a.account_name.clone(),
        account_key: a.account_key.clone(),
        container_name: a.container_name.clone().unwrap_or_default(),
        storage_domain: a.storage_domain.clone(),
    });
    let missing = match cache_type {
        CacheType::S3 if c.s3.is_none() && !c.has_legacy_s3_keys() => Some("[runners.cache.s3]"),
        CacheType::Gcs if gcs.is_none() => Some("[runners.cache.gcs]"),
        CacheType::Azure if azure.is_none() => Some("[runners.cache.azure]"),
        _ => None,
    };
    if let (Some(section), Some(t)) = (missing, &c.cache_type) {
        ctx.note(
            Some(t.span()),
            &k("Type"),
            format!("there is no {section} section: GitLab Runner cannot use this cache"),
        );
    }
    Ok(CacheSettings {
        cache_type,
        path: c.path.clone().unwrap_or_default(),
        shared: c.shared.unwrap_or(false),
        max_uploaded_archive_size: u64::from(max_uploaded_archive_size),
        s3,
        s3_section: c.s3.is_some(),
        gcs,
        azure,
    })
}

fn machine_settings(
    ctx: &mut Ctx<'_>,
    base: &str,
    m: &RawMachine,
) -> Result<MachineSettings, InputError> {
    let k = |name: &str| format!("{base}.{name}");
    if m.has_off_peak() {
        ctx.note(
            None,
            base,
            "OffPeak* settings were removed in GitLab Runner 14.0; it only logs a warning and \
             ignores them (use [[runners.machine.autoscaling]], reference §2.8)",
        );
    }
    let idle_scale_factor = match &m.idle_scale_factor {
        Some(v) => ctx.non_negative_float(v, &k("IdleScaleFactor"))?,
        None => 0.0,
    };
    let idle_time_s = u64::from(ctx.count(m.idle_time.as_ref(), &k("IdleTime"))?);
    let max_removal_attempts =
        match ctx.count(m.max_removal_attempts.as_ref(), &k("MaxRemovalAttempts"))? {
            0 => DEFAULT_MAX_REMOVAL_ATTEMPTS,
            n => n,
        };
    let mut autoscaling = Vec::new();
    for (i, a) in m.autoscaling.iter().flatten().enumerate() {
        autoscaling.push(machine_autoscaling(ctx, &format!("{base}.autoscaling[{i}]"), a)?);
    }
    // `(*RunnerConfig).validateMachineOptionsWithName` (common/config.go): each template
    // must hold the `%s` the machine's name replaces, or GitLab Runner refuses to start.
    for (i, opt) in m.machine_options_with_name.iter().flatten().enumerate() {
        let text = opt.get_ref().expose();
        if !text.contains("%s") {
            // Secret options are not quoted whole (fleetsim never prints a secret).
            let shown = match text.split_once('=') {
                Some((name, _)) if is_secret_option(name.trim_start_matches('-')) => {
                    format!("{name}=[redacted]")
                }
                _ => text.to_owned(),
            };
            return Err(ctx.error(
                opt.span(),
                &k(&format!("MachineOptionsWithName[{i}]")),
                format!(
                    "machine option with name {shown:?} must contain %s placeholder (GitLab \
                     Runner 19.4 refuses to start: validating machine options with name)"
                ),
            ));
        }
    }
    let options = m.machine_options.as_deref().unwrap_or_default();
    Ok(MachineSettings {
        idle_count: ctx.count(m.idle_count.as_ref(), &k("IdleCount"))?,
        idle_count_min: ctx.count(m.idle_count_min.as_ref(), &k("IdleCountMin"))?,
        idle_scale_factor,
        idle_time_s,
        max_growth_rate: ctx.count(m.max_growth_rate.as_ref(), &k("MaxGrowthRate"))?,
        max_builds: ctx.count(m.max_builds.as_ref(), &k("MaxBuilds"))?,
        machine_driver: m.machine_driver.clone().unwrap_or_default(),
        machine_name: m.machine_name.clone().unwrap_or_default(),
        machine_options: MachineOptions::parse(options.iter().map(Secret::expose)),
        max_removal_attempts,
        autoscaling,
    })
}

fn machine_autoscaling(
    ctx: &mut Ctx<'_>,
    base: &str,
    a: &RawMachineAutoscaling,
) -> Result<MachineAutoscaling, InputError> {
    let k = |name: &str| format!("{base}.{name}");
    let idle_scale_factor = match &a.idle_scale_factor {
        Some(v) => ctx.non_negative_float(v, &k("IdleScaleFactor"))?,
        None => 0.0,
    };
    ctx.check_periods(
        base,
        ("Periods", "Timezone"),
        a.periods.as_deref().unwrap_or_default(),
        a.timezone.as_deref().filter(|tz| !tz.is_empty()),
        crate::periods::CronDialect::Seconds7,
    )?;
    Ok(MachineAutoscaling {
        periods: a.periods.clone().unwrap_or_default(),
        timezone: a.timezone.clone().filter(|tz| !tz.is_empty()),
        idle_count: ctx.count(a.idle_count.as_ref(), &k("IdleCount"))?,
        idle_count_min: ctx.count(a.idle_count_min.as_ref(), &k("IdleCountMin"))?,
        idle_scale_factor,
        idle_time_s: u64::from(ctx.count(a.idle_time.as_ref(), &k("IdleTime"))?),
    })
}

fn autoscaler_settings(
    ctx: &mut Ctx<'_>,
    base: &str,
    a: &RawAutoscaler,
) -> Result<AutoscalerSettings, InputError> {
    let k = |name: &str| format!("{base}.{name}");
    let nonzero_or = |v: Option<u64>, default: u64| match v {
        Some(ms) if ms > 0 => ms,
        _ => default,
    };
    let instance_acquire_timeout_ms = nonzero_or(
        ctx.opt_duration_ms(a.instance_acquire_timeout.as_ref(), &k("instance_acquire_timeout"))?,
        DEFAULT_INSTANCE_ACQUIRE_TIMEOUT_MS,
    );
    let update_interval_ms = nonzero_or(
        ctx.opt_duration_ms(a.update_interval.as_ref(), &k("update_interval"))?,
        DEFAULT_UPDATE_INTERVAL_MS,
    );
    let update_interval_when_expecting_ms = nonzero_or(
        ctx.opt_duration_ms(
            a.update_interval_when_expecting.as_ref(),
            &k("update_interval_when_expecting"),
        )?,
        DEFAULT_UPDATE_INTERVAL_WHEN_EXPECTING_MS,
    );
    ctx.opt_duration_ms(a.deletion_retry_interval.as_ref(), &k("deletion_retry_interval"))?;
    ctx.opt_duration_ms(a.shutdown_deletion_interval.as_ref(), &k("shutdown_deletion_interval"))?;
    ctx.count(a.shutdown_deletion_retries.as_ref(), &k("shutdown_deletion_retries"))?;
    let failure_threshold =
        match ctx.count(a.failure_threshold.as_ref(), &k("failure_threshold"))? {
            0 => DEFAULT_FAILURE_THRESHOLD,
            n => n,
        };
    let scale_throttle = match &a.scale_throttle {
        None => ScaleThrottle::default(),
        Some(t) => {
            let limit_per_s = match &t.limit {
                None => Some(DEFAULT_SCALE_THROTTLE_PER_S),
                Some(v) if *v.get_ref() < 0 => None,
                Some(v) if *v.get_ref() == 0 => Some(DEFAULT_SCALE_THROTTLE_PER_S),
                Some(v) => Some(ctx.u32_at_least(v, &k("scale_throttle.limit"), 0, "")?),
            };
            let burst = match ctx.count(t.burst.as_ref(), &k("scale_throttle.burst"))? {
                0 => None,
                n => Some(n),
            };
            ScaleThrottle { limit_per_s, burst }
        }
    };
    let mut policies = Vec::new();
    for (i, p) in a.policy.iter().flatten().enumerate() {
        policies.push(autoscaler_policy(ctx, &format!("{base}.policy[{i}]"), p)?);
    }
    let connector = match &a.connector_config {
        Some(c) => connector_settings(ctx, &k("connector_config"), c)?,
        None => ConnectorSettings::default(),
    };
    Ok(AutoscalerSettings {
        plugin: a.plugin.clone().unwrap_or_default(),
        capacity_per_instance: match ctx
            .count(a.capacity_per_instance.as_ref(), &k("capacity_per_instance"))?
        {
            0 => 1,
            n => n,
        },
        max_use_count: ctx.count(a.max_use_count.as_ref(), &k("max_use_count"))?,
        max_instances: ctx.count(a.max_instances.as_ref(), &k("max_instances"))?,
        instance_acquire_timeout_ms,
        update_interval_ms,
        update_interval_when_expecting_ms,
        failure_threshold,
        delete_instances_on_shutdown: a.delete_instances_on_shutdown.unwrap_or(false),
        reservation_throttling: a.reservation_throttling.unwrap_or(true),
        state_storage_enabled: a.state_storage.as_ref().and_then(|s| s.enabled).unwrap_or(false),
        scale_throttle,
        policies,
        plugin_config: a.plugin_config.clone().unwrap_or_default(),
        connector,
    })
}

fn autoscaler_policy(
    ctx: &mut Ctx<'_>,
    base: &str,
    p: &RawAutoscalerPolicy,
) -> Result<AutoscalerPolicy, InputError> {
    let k = |name: &str| format!("{base}.{name}");
    let idle_count = ctx.count(p.idle_count.as_ref(), &k("idle_count"))?;
    let scale_factor = match &p.scale_factor {
        Some(v) => {
            let x = v.get_ref().as_f64();
            if !x.is_finite() || x < 0.0 {
                return Err(ctx.error(
                    v.span(),
                    &k("scale_factor"),
                    format!("must be a number ≥ 0.0, got {x}"),
                ));
            }
            x
        }
        None => 0.0,
    };
    let periods = match &p.periods {
        Some(periods) if !periods.is_empty() => periods.clone(),
        _ => vec![DEFAULT_POLICY_PERIOD.to_owned()],
    };
    // A bad policy period or zone fails every job request: GitLab Runner 19.4
    // executors/internal/autoscaler/provider.go (*provider).Acquire returns "configuring
    // taskscaler schedules" when `ConfigureSchedule` refuses them.
    ctx.check_periods(
        base,
        ("periods", "timezone"),
        p.periods.as_deref().unwrap_or_default(),
        p.timezone.as_deref().filter(|tz| !tz.is_empty()),
        crate::periods::CronDialect::Minutes5,
    )?;
    if p.preemptive_mode == Some(true) && idle_count == 0 {
        ctx.note(
            None,
            &k("preemptive_mode"),
            "preemptive_mode = true with idle_count = 0: while this policy applies the runner \
             requests no job until a slot is idle, and none is kept idle, so jobs wait for \
             another policy",
        );
    }
    Ok(AutoscalerPolicy {
        periods,
        timezone: p.timezone.clone().filter(|tz| !tz.is_empty()),
        idle_count,
        idle_time_ms: ctx.opt_duration_ms(p.idle_time.as_ref(), &k("idle_time"))?.unwrap_or(0),
        scale_factor,
        scale_factor_limit: ctx.count(p.scale_factor_limit.as_ref(), &k("scale_factor_limit"))?,
        preemptive_mode: p.preemptive_mode.unwrap_or(idle_count > 0),
    })
}

fn connector_settings(
    ctx: &mut Ctx<'_>,
    base: &str,
    c: &RawConnectorConfig,
) -> Result<ConnectorSettings, InputError> {
    let k = |name: &str| format!("{base}.{name}");
    let protocol_port = match c.protocol_port {
        Some(port) => Some(u32::try_from(port).map_err(|_| {
            ctx.error_at_key(&k("protocol_port"), format!("must be ≥ 0, got {port}"))
        })?),
        None => None,
    };
    Ok(ConnectorSettings {
        os: c.os.clone(),
        arch: c.arch.clone(),
        protocol: c.protocol.clone(),
        protocol_port,
        username: c.username.clone(),
        password: c.password.clone(),
        key_path: c.key_path.clone(),
        use_static_credentials: c.use_static_credentials.unwrap_or(false),
        keepalive_ms: ctx.opt_duration_ms(c.keepalive.as_ref(), &k("keepalive"))?,
        timeout_ms: ctx.opt_duration_ms(c.timeout.as_ref(), &k("timeout"))?,
        use_external_addr: c.use_external_addr.unwrap_or(false),
    })
}
