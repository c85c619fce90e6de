//! `sim migrate`: a docker+machine `config.toml` rewritten for the docker-autoscaler executor
//! (GitLab removes docker+machine in 20.0), with every step that loses information reported.
//!
//! The mapping (reference §6.3, and the reasons):
//!
//! | docker+machine | docker-autoscaler | why |
//! |---|---|---|
//! | `executor = "docker+machine"` | `executor = "docker-autoscaler"` | |
//! | `IdleCount` (machines) | policy `idle_count = IdleCount × capacity` | `idle_count` counts job slots |
//! | `IdleScaleFactor`, `IdleCountMin` | `scale_factor`, `idle_count = max(IdleCountMin, 1) × capacity`, `scale_factor_limit = IdleCount × capacity` | docker+machine keeps `min(IdleCount, max(IdleCountMin, used × factor))` machines; taskscaler's `max(idle_count, min(scale_factor × in use, limit))` is the same in slots |
//! | `IdleTime` (seconds) | policy `idle_time` (a duration) | |
//! | `MaxBuilds` | `max_use_count` | |
//! | `limit` | `max_instances = ceil(limit / capacity)`; `limit` itself stays (it still caps jobs) | docker+machine's `limit` also caps machines |
//! | `[[runners.machine.autoscaling]]` (7-field cron) | one `[[runners.autoscaler.policy]]` each, after the root policy (5-field cron) | last match wins in both |
//! | `MachineOptions` | the instance group's launch template (outside `config.toml`) | reported, values not copied |
//! | `MaxGrowthRate` | none: `scale_throttle` limits a rate, not creations at once | reported |
//!
//! Preemptive mode: docker+machine with `IdleCount > 0` sends no job request without an idle
//! machine, which is preemptive mode, and taskscaler's default (`idle_count > 0`) matches it;
//! `--preemptive on|off` writes it explicitly instead.

use std::fmt::Write as _;
use std::path::Path;

use toml_edit::{DocumentMut, Item, value};

use crate::config::{Executor, MachineOptionValue, MachineSettings, load_config_str};
use crate::input_error::InputError;

/// The fleeting plugin written by default (the AWS plugin, as an OCI reference).
pub const DEFAULT_PLUGIN: &str = "aws:latest";

/// docker-machine's amazonec2 driver logs in as this user unless `amazonec2-ssh-user` says
/// otherwise (its default AMI is Ubuntu).
const DEFAULT_SSH_USER: &str = "ubuntu";

/// Choices the mapping cannot make from the docker+machine config.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Jobs per instance (`capacity_per_instance`, ≥ 1).
    pub capacity: u32,
    /// `Some(on)` writes `preemptive_mode` on every policy; `None` keeps taskscaler's
    /// default, which matches docker+machine's behaviour.
    pub preemptive: Option<bool>,
    /// The fleeting plugin.
    pub plugin: String,
    /// The instance group's name (`plugin_config.name`): an AWS Auto Scaling group to
    /// create from the old `MachineOptions`.
    pub group_name: String,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            capacity: 1,
            preemptive: None,
            plugin: DEFAULT_PLUGIN.into(),
            group_name: "gitlab-runner-instances".into(),
        }
    }
}

/// The migrated config and what the migration could not carry over.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The new `config.toml` text (everything not migrated is kept as written).
    pub config: String,
    /// One line per lossy step or manual action.
    pub notes: Vec<String>,
    /// The instance type and region of the old machines, per migrated runner, for the
    /// scenario's `[autoscaler]` table.
    pub instance_types: Vec<(String, Option<String>, Option<String>)>,
}

/// Rewrites every docker+machine `[[runners]]` entry of `text` (read from `file`).
pub fn migrate(text: &str, file: &Path, opts: &MigrateOptions) -> Result<Migration, InputError> {
    if opts.capacity == 0 {
        return Err(InputError::file("--capacity", "expected at least 1"));
    }
    let loaded = load_config_str(text, file)?;
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        InputError::file(file, format!("cannot edit the file: {e}"))
    })?;
    let mut notes = Vec::new();
    let mut instance_types = Vec::new();
    let mut migrated = 0;
    for (i, r) in loaded.config.runners.iter().enumerate() {
        if r.executor != Executor::DockerMachine {
            continue;
        }
        let Some(m) = &r.machine else {
            notes.push(format!(
                "runners[{i}] ({:?}): docker+machine without [runners.machine]; left as is",
                r.name
            ));
            continue;
        };
        let who = format!("runners[{i}] ({:?})", r.name);
        let section = autoscaler_section(&who, r.limit, m, opts, &mut notes);
        let section: DocumentMut = section.parse().map_err(|e: toml_edit::TomlError| {
            InputError::file(file, format!("internal error: the generated section: {e}"))
        })?;
        let Some(entry) = doc
            .get_mut("runners")
            .and_then(Item::as_array_of_tables_mut)
            .and_then(|a| a.get_mut(i))
        else {
            return Err(InputError::file(file, "[[runners]] is not an array of tables")
                .key(format!("runners[{i}]")));
        };
        // Keep the line's layout (indentation, comment): replace the value only.
        match entry.get_mut("executor").and_then(Item::as_value_mut) {
            Some(v) => {
                let decor = v.decor().clone();
                *v = "docker-autoscaler".into();
                *v.decor_mut() = decor;
            }
            None => {
                entry.insert("executor", value("docker-autoscaler"));
            }
        }
        entry.remove("machine");
        move_flat_s3_keys(entry, &who, &mut notes);
        let mut autoscaler = section.as_table().get("autoscaler").cloned().expect("generated");
        if let Some(t) = autoscaler.as_table_mut() {
            renumber(t);
        }
        entry.insert("autoscaler", autoscaler);
        instance_types.push((
            r.name.clone(),
            m.machine_options.instance_type().map(str::to_owned),
            m.machine_options.region().map(str::to_owned),
        ));
        migrated += 1;
        // In u64: a u32 `limit` near its maximum times the capacity would wrap.
        let slots = (r.limit > 0)
            .then(|| u64::from(r.limit.div_ceil(opts.capacity)) * u64::from(opts.capacity));
        if let Some(slots) = slots
            && u64::from(loaded.config.concurrent) < slots
        {
            notes.push(format!(
                "note: concurrent = {} is below max_instances × capacity_per_instance = {slots} \
                 of {who}; GitLab recommends concurrent = max_instances × capacity_per_instance",
                loaded.config.concurrent
            ));
        }
    }
    if migrated == 0 {
        return Err(InputError::file(
            file,
            "no [[runners]] entry uses executor \"docker+machine\"",
        )
        .key("runners"));
    }
    let mut config = String::new();
    let _ = writeln!(
        config,
        "# Migrated from docker+machine by `sim migrate` (fleetsim); see its report for what\n\
         # did not carry over."
    );
    config.push_str(&doc.to_string());
    if !config.ends_with('\n') {
        config.push('\n');
    }
    Ok(Migration { config, notes, instance_types })
}

/// The `[runners.cache]` S3 keys GitLab Runner read before 12.0 (reference §4.1).
const FLAT_S3_KEYS: [&str; 6] =
    ["ServerAddress", "AccessKey", "SecretKey", "BucketName", "BucketLocation", "Insecure"];

/// A runner new enough for docker-autoscaler ignores the pre-12.0 flat S3 keys and would run
/// without a distributed cache: move them into `[runners.cache.s3]` (a key already there
/// wins, as it does in GitLab Runner's reading).
fn move_flat_s3_keys(entry: &mut toml_edit::Table, who: &str, notes: &mut Vec<String>) {
    let Some(cache) = entry.get_mut("cache").and_then(Item::as_table_mut) else { return };
    let mut moved = Vec::new();
    for key in FLAT_S3_KEYS {
        let Some(item) = cache.remove(key) else { continue };
        let s3 = cache.entry("s3").or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_position(None);
            t.decor_mut().set_prefix("    ");
            Item::Table(t)
        });
        if let Some(s3) = s3.as_table_mut()
            && !s3.contains_key(key)
        {
            s3.insert(key, item);
            if let Some(mut k) = s3.key_mut(key) {
                k.leaf_decor_mut().set_prefix("      ");
            }
        }
        moved.push(key);
    }
    if !moved.is_empty() {
        notes.push(format!(
            "fixed: {who}: moved the flat [runners.cache] S3 keys ({}) into [runners.cache.s3]; \
             GitLab Runner 12.0 and later ignore them where they were",
            moved.join(", ")
        ));
    }
}

/// Moves generated tables after the existing ones of the document, in their own order.
fn renumber(t: &mut toml_edit::Table) {
    t.set_position(None);
    for (_, item) in t.iter_mut() {
        match item {
            Item::Table(sub) => renumber(sub),
            Item::ArrayOfTables(a) => {
                for sub in a.iter_mut() {
                    renumber(sub);
                }
            }
            _ => {}
        }
    }
}

/// The `[autoscaler]` section for one runner, as TOML text, with notes on what was lost.
fn autoscaler_section(
    who: &str,
    limit: u32,
    m: &MachineSettings,
    opts: &MigrateOptions,
    notes: &mut Vec<String>,
) -> String {
    let c = opts.capacity;
    let mut s = String::new();
    let _ = writeln!(s, "  [autoscaler]");
    let _ = writeln!(s, "    plugin = {:?}", opts.plugin);
    let _ = writeln!(s, "    capacity_per_instance = {c}");
    let _ = writeln!(s, "    max_use_count = {}", m.max_builds);
    let _ = writeln!(s, "    max_instances = {}", if limit > 0 { limit.div_ceil(c) } else { 0 });
    let _ = writeln!(s, "    [autoscaler.plugin_config]");
    let _ = writeln!(s, "      name = {:?}", opts.group_name);
    if let Some(region) = m.machine_options.region() {
        let _ = writeln!(s, "      region = {region:?}");
    }
    let _ = writeln!(s, "    [autoscaler.connector_config]");
    let user = m
        .machine_options
        .get("amazonec2-ssh-user")
        .and_then(|v| match v {
            MachineOptionValue::Plain(v) => Some(v.as_str()),
            _ => None,
        })
        .unwrap_or(DEFAULT_SSH_USER);
    let _ = writeln!(s, "      username = {user:?}");
    // The root settings are the first policy; each autoscaling section a later one.
    let root = Idle {
        periods: None,
        timezone: None,
        idle_count: m.idle_count,
        idle_count_min: m.idle_count_min,
        factor: m.idle_scale_factor,
        idle_time_s: m.idle_time_s,
    };
    write_policy(&mut s, &root, c, opts.preemptive);
    for (k, a) in m.autoscaling.iter().enumerate() {
        let periods = a
            .periods
            .iter()
            .map(|p| {
                cron_5_field(p).map_err(|e| format!("{who}: autoscaling[{k}] period {p:?}: {e}"))
            })
            .filter_map(|r| match r {
                Ok((p, None)) => Some(p),
                Ok((p, Some(loss))) => {
                    notes.push(format!("lossy: {who}: autoscaling[{k}] period {loss}"));
                    Some(p)
                }
                Err(e) => {
                    notes.push(format!("lossy: {e}; period dropped"));
                    None
                }
            })
            .collect();
        let section = Idle {
            periods: Some(periods),
            timezone: a.timezone.clone(),
            idle_count: a.idle_count,
            idle_count_min: a.idle_count_min,
            factor: a.idle_scale_factor,
            idle_time_s: a.idle_time_s,
        };
        write_policy(&mut s, &section, c, opts.preemptive);
    }
    notes.push(format!(
        "manual: {who}: create the instance group {:?} (an AWS Auto Scaling group with desired \
         capacity 0) from the old MachineOptions: {}; the plugin needs its IAM permissions",
        opts.group_name,
        option_summary(m)
    ));
    if m.max_growth_rate > 0 {
        notes.push(format!(
            "lossy: {who}: MaxGrowthRate = {} (machines created at once) has no equivalent; \
             [runners.autoscaler.scale_throttle] limits creations per second instead (default 100/s)",
            m.max_growth_rate
        ));
    }
    if m.idle_scale_factor == 0.0 && m.idle_count_min > 0 {
        notes.push(format!(
            "note: {who}: IdleCountMin = {} had no effect without IdleScaleFactor; not carried over",
            m.idle_count_min
        ));
    }
    if c > 1 {
        notes.push(format!(
            "note: {who}: capacity_per_instance = {c}: jobs share an instance (CPU, memory, disk, \
             the Docker daemon); size the instance type for {c} jobs"
        ));
    }
    s
}

struct Idle {
    periods: Option<Vec<String>>,
    timezone: Option<String>,
    idle_count: u32,
    idle_count_min: u32,
    factor: f64,
    idle_time_s: u64,
}

fn write_policy(s: &mut String, p: &Idle, c: u32, preemptive: Option<bool>) {
    // Slots in u64: `IdleCount` × capacity overflows u32 for a huge (but accepted) IdleCount,
    // and GitLab Runner reads `idle_count` as a Go int.
    let slots = |machines: u32| u64::from(machines) * u64::from(c);
    let _ = writeln!(s, "    [[autoscaler.policy]]");
    if let Some(periods) = &p.periods {
        let list: Vec<String> = periods.iter().map(|p| format!("{p:?}")).collect();
        let _ = writeln!(s, "      periods = [{}]", list.join(", "));
    }
    if let Some(tz) = &p.timezone {
        let _ = writeln!(s, "      timezone = {tz:?}");
    }
    if p.factor > 0.0 {
        let _ = writeln!(s, "      idle_count = {}", slots(p.idle_count_min.max(1)));
        let _ = writeln!(s, "      scale_factor = {:?}", p.factor);
        let _ = writeln!(s, "      scale_factor_limit = {}", slots(p.idle_count));
    } else {
        let _ = writeln!(s, "      idle_count = {}", slots(p.idle_count));
    }
    let _ = writeln!(s, "      idle_time = {:?}", go_duration(p.idle_time_s));
    if let Some(on) = preemptive {
        let _ = writeln!(s, "      preemptive_mode = {on}");
    }
}

/// Seconds as a Go duration string (`1800` → `30m0s`, as Go's `Duration.String` prints it).
fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// Turns a docker+machine period (gorhill/cronexpr: 7 fields `sec min hour dom month dow
/// year`, or 6 without seconds, or 5) into taskscaler's 5-field form. Returns what was lost,
/// if anything: a seconds field that is not "every second" or a year field that is not "*".
pub fn cron_5_field(expr: &str) -> Result<(String, Option<String>), String> {
    let f: Vec<&str> = expr.split_whitespace().collect();
    let (sec, five, year) = match f.len() {
        7 => (Some(f[0]), &f[1..6], Some(f[6])),
        6 => (None, &f[0..5], Some(f[5])),
        5 => (None, &f[0..5], None),
        n => return Err(format!("expected 5 to 7 fields, found {n}")),
    };
    let mut lost = Vec::new();
    if let Some(sec) = sec
        && !matches!(sec, "*" | "0" | "*/1" | "0-59")
    {
        lost.push(format!("seconds field {sec:?} dropped (5-field periods match whole minutes)"));
    }
    if let Some(year) = year
        && year != "*"
    {
        lost.push(format!("year field {year:?} dropped (5-field periods have no year)"));
    }
    let out = five.join(" ");
    let loss = (!lost.is_empty()).then(|| format!("{expr:?} → {out:?}: {}", lost.join("; ")));
    Ok((out, loss))
}

/// The `MachineOptions` keys (values of credentials left out).
fn option_summary(m: &MachineSettings) -> String {
    let keys: Vec<String> = (&m.machine_options)
        .into_iter()
        .map(|o| match &o.value {
            // Credentials are `Secret`s and print as their key only.
            MachineOptionValue::Plain(v) => {
                format!("{}={}", o.key, crate::redact::value_text(v))
            }
            _ => o.key.clone(),
        })
        .collect();
    if keys.is_empty() { "(none)".into() } else { keys.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_lose_seconds_and_years_only_when_they_restrict() {
        assert_eq!(
            cron_5_field("* * 9-17 * * mon-fri *").unwrap(),
            ("* 9-17 * * mon-fri".into(), None)
        );
        let (p, loss) = cron_5_field("0-29 * 9-17 * * mon-fri 2026").unwrap();
        assert_eq!(p, "* 9-17 * * mon-fri");
        let loss = loss.unwrap();
        assert!(loss.contains("seconds") && loss.contains("year"), "{loss}");
        assert!(cron_5_field("* *").is_err());
    }

    /// Issue 16, class 8: `IdleCount = 4294967295` with `--capacity 2` wrote a wrapped
    /// `idle_count` (4294967294). The slots are written exactly.
    #[test]
    fn a_huge_idle_count_times_the_capacity_does_not_wrap() {
        let idle = Idle {
            periods: None,
            timezone: None,
            idle_count: u32::MAX,
            idle_count_min: 0,
            factor: 0.0,
            idle_time_s: 0,
        };
        let mut out = String::new();
        write_policy(&mut out, &idle, 2, None);
        assert!(out.contains("idle_count = 8589934590"), "{out}");
    }

    #[test]
    fn go_durations_print_like_go() {
        assert_eq!(go_duration(1800), "30m0s");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(3725), "1h2m5s");
    }
}
