//! GitLab Runner 19.4's `common/config_test.go`, ported where they pin what fleetsim reads from `config.toml`: one
//! Rust test per Go table case, each through fleetsim's real config loader
//! ([`load_config_str`]) or its scenario build ([`Scenario::load`] + [`Scenario::build`]).
//!
//! Config GitLab Runner refuses to start with is refused here (exit code 2, with the file,
//! line and key: `refusals_exit_2_with_file_line_and_key`).
//!
//! # Not ported (not expressible through fleetsim's inputs)
//!
//! Most of `config_test.go` pins settings fleetsim does not model: Kubernetes
//! (`TestKubernetes*`, `TestContainerSecurity*`, `TestPodSecurityContext*`,
//! `TestGetCapabilities`), Docker pull-policy allow-lists (`TestDockerConfig_Get*PullPolicies`:
//! fleetsim reads `pull_policy` for image pulls only), `TestService_ToImageDefinition`,
//! `TestStringOrArray_*`, `TestEffectivePrivilege`, kill timeouts, artifact timeouts,
//! `TestConfig_SaveConfig*`, `TestConfig_Masked`, `TestLoadConfig_SentryDSNFromEnv`,
//! environment expansion (`TestLoadConfig_ExpandsEnvironmentVariables`: fleetsim does not
//! read the environment, so a run cannot depend on it), `Test_CommandLineFlags`,
//! `TestRunnerBy*` (lookups of the `gitlab-runner` CLI), `TestRunnerCredentials_SameAs`,
//! `TestParseVariable`, `Test_*_UserIsAllowed`, `TestRunnerSettings_IsFeatureFlagOn` (a
//! registry of all flags; fleetsim reads one, `FF_USE_ADAPTIVE_REQUEST_CONCURRENCY`, which
//! the `fidelity` helper is wiring), and `TestConfigParse` (a 750-line table of Go struct
//! decodings, mostly of the sections above).

use std::path::Path;

use fleetsim::config::{LoadedConfig, load_config_str};
use fleetsim::input_error::InputError;
use fleetsim::scenario::{Build, Scenario};
use fleetsim::seeds::SeedTree;
use fleetsim_core::ExecutorKind;
use fleetsim_core::docker_machine::IdleSettings;
use fleetsim_core::periods::PeriodSchedule;
use fleetsim_core::time::SimTime;

use crate::cli::{assert_bad_input, sim, stderr};

const HEAD: &str = "concurrent = 4\n";

/// A runner entry with a token and a URL, so that only the case's keys draw warnings.
pub(crate) fn runner(name: &str, extra: &str) -> String {
    format!(
        "[[runners]]\n  name = \"{name}\"\n  url = \"https://gitlab.example\"\n  token = \
         \"glrt-abcdefghijk\"\n  executor = \"docker\"\n  request_concurrency = 4\n{extra}"
    )
}

pub(crate) fn load(text: &str) -> Result<LoadedConfig, InputError> {
    load_config_str(text, Path::new("config.toml"))
}

fn refused(text: &str) -> String {
    load(text).expect_err("GitLab Runner refuses this config").to_string()
}

// --- TestConfig_Validate -------------------------------------------------------------------

/// The Go test's two runners: "runner-always-valid" with `runner = "name"`, then
/// "runner-tested" with the case's labels; the case's global labels above them.
fn labels_config(global: &[(&str, &str)], tested: &[(&str, &str)]) -> String {
    let table = |name: &str, labels: &[(&str, &str)]| {
        let mut t = format!("[{name}]\n");
        for (k, v) in labels {
            t.push_str(&format!("  \"{k}\" = \"{v}\"\n"));
        }
        t
    };
    let mut text = HEAD.to_owned();
    if !global.is_empty() {
        text.push_str(&table("labels", global));
    }
    text.push_str(&runner("runner-always-valid", &table("runners.labels", &[("runner", "name")])));
    let tested = if tested.is_empty() { String::new() } else { table("runners.labels", tested) };
    text.push_str(&runner("runner-tested", &tested));
    text
}

/// `TestConfig_Validate` / "all labels are valid".
#[test]
fn test_config_validate_all_labels_are_valid() {
    let loaded = load(&labels_config(&[("env", "production")], &[("privileged", "true")])).unwrap();
    assert_eq!(loaded.warnings, Vec::<String>::new());
}

/// `TestConfig_Validate` / "invalid global label key".
#[test]
fn test_config_validate_invalid_global_label_key() {
    let e = refused(&labels_config(&[("test/key", "test_value")], &[]));
    assert!(e.starts_with("config.toml:3:"), "{e}");
    assert!(e.contains("`labels.test/key`") && e.contains("invalid label key"), "{e}");
}

/// `TestConfig_Validate` / "invalid global label value".
#[test]
fn test_config_validate_invalid_global_label_value() {
    let e = refused(&labels_config(&[("test_key", "test/value")], &[]));
    assert!(e.starts_with("config.toml:3:"), "{e}");
    assert!(e.contains("`labels.test_key`") && e.contains("invalid label value"), "{e}");
}

/// `TestConfig_Validate` / "invalid runner label key" (the error names runner-tested).
#[test]
fn test_config_validate_invalid_runner_label_key() {
    let e = refused(&labels_config(&[], &[("test/key", "test_value")]));
    assert!(e.contains("`runners[1].labels.test/key`") && e.contains("invalid label key"), "{e}");
}

/// `TestConfig_Validate` / "invalid runner label value".
#[test]
fn test_config_validate_invalid_runner_label_value() {
    let e = refused(&labels_config(&[], &[("test_key", "test/value")]));
    assert!(e.contains("`runners[1].labels.test_key`") && e.contains("invalid label value"), "{e}");
}

/// `TestConfig_Validate` / "too many labels": 17 global + 17 of runner-tested = 34 > 32, while
/// runner-always-valid has 17 + 1 = 18.
#[test]
fn test_config_validate_too_many_labels() {
    let names = [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "twenty-one",
        "twenty-two",
        "twenty-three",
        "twenty-four",
        "twenty-five",
        "twenty-six",
        "twenty-seven",
        "twenty-eight",
        "twenty-nine",
        "thirty",
        "thirty-one",
        "thirty-two",
        "thirty-three",
        "thirty-four",
    ];
    let values: Vec<String> = (1..=34).map(|i| i.to_string()).collect();
    let pairs: Vec<(&str, &str)> =
        names.iter().zip(&values).map(|(k, v)| (*k, v.as_str())).collect();
    let e = refused(&labels_config(&pairs[..17], &pairs[17..]));
    assert!(e.contains("`runners[1].labels`") && e.contains("34 labels"), "{e}");
    // One label fewer is accepted: the limit is 32 computed labels, not 31.
    let ok = load(&labels_config(&pairs[..17], &pairs[17..32]));
    assert!(ok.is_ok(), "{:?}", ok.err());
}

// --- TestRunnerConfig_ValidateMachineOptionsWithName ---------------------------------------

fn machine_options_with_name(options: Option<&[&str]>) -> String {
    let mut machine = "  [runners.machine]\n    MachineName = \"test-machine-%s\"\n".to_owned();
    if let Some(opts) = options {
        let list: Vec<String> = opts.iter().map(|o| format!("\"{o}\"")).collect();
        machine.push_str(&format!("    MachineOptionsWithName = [{}]\n", list.join(", ")));
    }
    format!("{HEAD}{}", runner("r", &machine).replace("\"docker\"", "\"docker+machine\""))
}

/// `TestRunnerConfig_ValidateMachineOptionsWithName` / "valid options with %s".
#[test]
fn test_validate_machine_options_with_name_valid_options_with_placeholder() {
    assert!(
        load(&machine_options_with_name(Some(&["--option=%s", "--another=%s-suffix"]))).is_ok()
    );
}

/// `TestRunnerConfig_ValidateMachineOptionsWithName` / "empty options".
#[test]
fn test_validate_machine_options_with_name_empty_options() {
    assert!(load(&machine_options_with_name(Some(&[]))).is_ok());
}

/// `TestRunnerConfig_ValidateMachineOptionsWithName` / "nil options".
#[test]
fn test_validate_machine_options_with_name_nil_options() {
    assert!(load(&machine_options_with_name(None)).is_ok());
}

/// `TestRunnerConfig_ValidateMachineOptionsWithName` / "nil machine config": a runner without
/// `[runners.machine]`.
#[test]
fn test_validate_machine_options_with_name_nil_machine_config() {
    let loaded = load(&format!("{HEAD}{}", runner("r", ""))).unwrap();
    assert!(loaded.config.runners[0].machine.is_none());
}

/// `TestRunnerConfig_ValidateMachineOptionsWithName` / "invalid option without %s".
#[test]
fn test_validate_machine_options_with_name_invalid_option_without_placeholder() {
    let e = refused(&machine_options_with_name(Some(&["--option=value"])));
    assert!(
        e.contains(r#"machine option with name "--option=value" must contain %s placeholder"#),
        "{e}"
    );
    assert!(e.contains("`runners[0].machine.MachineOptionsWithName[0]`"), "{e}");
}

/// `TestRunnerConfig_ValidateMachineOptionsWithName` / "mixed valid and invalid".
#[test]
fn test_validate_machine_options_with_name_mixed_valid_and_invalid() {
    let e = refused(&machine_options_with_name(Some(&["--valid=%s", "--invalid=value"])));
    assert!(
        e.contains(r#"machine option with name "--invalid=value" must contain %s placeholder"#),
        "{e}"
    );
    assert!(e.contains("`runners[0].machine.MachineOptionsWithName[1]`"), "{e}");
}

// --- TestRunnerCredentials_HasToken --------------------------------------------------------

/// Loads a config whose only runner has `token` (a TOML basic string) and says whether
/// fleetsim counts it as having a token (no "skipped during job polling" warning).
fn has_token(token_toml: &str) -> bool {
    let text = format!("{HEAD}{}", runner("r", "")).replace("\"glrt-abcdefghijk\"", token_toml);
    let loaded = load(&text).unwrap();
    let skipped = loaded
        .warnings
        .iter()
        .any(|w| w.contains("`runners[0].token`") && w.contains("skipped during job polling"));
    assert_eq!(fleetsim::config::validated::has_token(&loaded.config.runners[0].token), !skipped);
    !skipped
}

/// `TestRunnerCredentials_HasToken` / "valid token".
#[test]
fn test_has_token_valid_token() {
    assert!(has_token("\"abc123\""));
}

/// `TestRunnerCredentials_HasToken` / "empty string".
#[test]
fn test_has_token_empty_string() {
    assert!(!has_token("\"\""));
}

/// `TestRunnerCredentials_HasToken` / "single space".
#[test]
fn test_has_token_single_space() {
    assert!(!has_token("\" \""));
}

/// `TestRunnerCredentials_HasToken` / "multiple spaces".
#[test]
fn test_has_token_multiple_spaces() {
    assert!(!has_token("\"   \""));
}

/// `TestRunnerCredentials_HasToken` / "tab character".
#[test]
fn test_has_token_tab_character() {
    assert!(!has_token("\"\\t\""));
}

/// `TestRunnerCredentials_HasToken` / "newline".
#[test]
fn test_has_token_newline() {
    assert!(!has_token("\"\\n\""));
}

/// `TestRunnerCredentials_HasToken` / "mixed whitespace".
#[test]
fn test_has_token_mixed_whitespace() {
    assert!(!has_token("\" \\t\\n \""));
}

/// `TestRunnerCredentials_HasToken` / "surrounded token".
#[test]
fn test_has_token_surrounded_token() {
    assert!(has_token("\"  abc  \""));
}

// --- TestAutoscalerPolicyConfig_PreemptiveModeEnabled --------------------------------------

fn preemptive(preemptive_mode: Option<bool>, idle_count: u32) -> bool {
    let mut policy =
        format!("    [[runners.autoscaler.policy]]\n      idle_count = {idle_count}\n");
    if let Some(p) = preemptive_mode {
        policy.push_str(&format!("      preemptive_mode = {p}\n"));
    }
    let autoscaler =
        format!("  [runners.autoscaler]\n    plugin = \"aws\"\n    max_instances = 10\n{policy}");
    let text = format!("{HEAD}{}", runner("r", &autoscaler))
        .replace("\"docker\"", "\"docker-autoscaler\"");
    let loaded = load(&text).unwrap();
    loaded.config.runners[0].autoscaler.as_ref().unwrap().policies[0].preemptive_mode
}

/// `TestAutoscalerPolicyConfig_PreemptiveModeEnabled` / "should return enabled when flag is
/// true".
#[test]
fn test_preemptive_mode_enabled_when_flag_is_true() {
    assert!(preemptive(Some(true), 0));
}

/// `TestAutoscalerPolicyConfig_PreemptiveModeEnabled` / "should return turned off when flag is
/// false".
#[test]
fn test_preemptive_mode_off_when_flag_is_false() {
    assert!(!preemptive(Some(false), 0));
}

/// `TestAutoscalerPolicyConfig_PreemptiveModeEnabled` / "should return turned off when flag is
/// false and idle count is greater than zero".
#[test]
fn test_preemptive_mode_off_when_flag_is_false_and_idle_count_above_zero() {
    assert!(!preemptive(Some(false), 10));
}

/// `TestAutoscalerPolicyConfig_PreemptiveModeEnabled` / "should return turned off when value is
/// not set and the idle count is zero".
#[test]
fn test_preemptive_mode_off_when_unset_and_idle_count_zero() {
    assert!(!preemptive(None, 0));
}

/// `TestAutoscalerPolicyConfig_PreemptiveModeEnabled` / "should return enabled when value is
/// not set and the idle count is greater than zero".
#[test]
fn test_preemptive_mode_enabled_when_unset_and_idle_count_above_zero() {
    assert!(preemptive(None, 10));
}

// --- TestDockerMachine ---------------------------------------------------------------------

/// `timeNow()` of the Go test: 2020-05-05 20:00:00 local (UTC here: no `Timezone` is the
/// host's zone, which fleetsim reads as UTC).
const ACTIVE: &str = "* * 20 * * * *";
/// `timeNow().Add(2*time.Hour).Hour()`.
const INACTIVE: &str = "* * 22 * * * *";

/// Writes a scenario starting at `timeNow()` around a docker+machine runner with `machine`
/// (the `[runners.machine]` body) and builds it.
fn build_machine(machine: &str) -> Result<Build, InputError> {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{HEAD}{}  [runners.machine]\n    MachineName = \"m-%s\"\n{machine}",
        runner("r", "").replace("\"docker\"", "\"docker+machine\"")
    );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    std::fs::write(
        dir.path().join("trace.csv"),
        "job_id,created_at,duration,project_id\n1,0,60,1\n",
    )
    .unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "[scenario]\nname = \"t\"\nseed = 1\n[runner]\nconfig = \"config.toml\"\n[workload]\n\
         trace = \"trace.csv\"\nstart = \"2020-05-05T20:00:00Z\"\n",
    )
    .unwrap();
    Scenario::load(&scenario, &[])?.build(SeedTree::new(1))
}

/// `GetIdleCount()` and `GetIdleTime()` (seconds) at `timeNow()`: the last section in period,
/// else the root settings.
fn idle_at_start(machine: &str) -> (u32, u64) {
    let mut build = build_machine(machine).unwrap();
    let ExecutorKind::DockerMachine(spec) = &build.spec.processes[0].runners[0].executor else {
        panic!("not docker+machine")
    };
    let active = match build.periods.first_mut() {
        Some((_, periods)) => periods.active(SimTime(0)),
        None => None,
    };
    let s: IdleSettings = active.map_or(spec.root, |i| spec.sections[i]);
    (s.idle_count, s.idle_time_ms / 1000)
}

fn section(periods: &str, idle_count: u32, idle_time: u32) -> String {
    format!(
        "    [[runners.machine.autoscaling]]\n      Periods = [\"{periods}\"]\n      IdleCount = \
         {idle_count}\n      IdleTime = {idle_time}\n"
    )
}

const ROOT: &str = "    IdleCount = 1\n    IdleTime = 1000\n";

fn off_peak(periods: &str) -> String {
    format!(
        "    OffPeakPeriods = [\"{periods}\"]\n    OffPeakIdleCount = 2\n    OffPeakIdleTime = 2000\n"
    )
}

/// `TestDockerMachine` / "global config only".
#[test]
fn test_docker_machine_global_config_only() {
    assert_eq!(idle_at_start(ROOT), (1, 1000));
}

/// `TestDockerMachine` / "offpeak active ignored".
#[test]
fn test_docker_machine_offpeak_active_ignored() {
    assert_eq!(idle_at_start(&format!("{ROOT}{}", off_peak(ACTIVE))), (1, 1000));
}

/// `TestDockerMachine` / "offpeak inactive ignored".
#[test]
fn test_docker_machine_offpeak_inactive_ignored() {
    assert_eq!(idle_at_start(&format!("{ROOT}{}", off_peak(INACTIVE))), (1, 1000));
}

/// `TestDockerMachine` / "offpeak invalid format ignored" (no error, and 0 / 0).
#[test]
fn test_docker_machine_offpeak_invalid_format_ignored() {
    assert_eq!(idle_at_start(&off_peak("invalid period")), (0, 0));
}

/// `TestDockerMachine` / "autoscaling config active".
#[test]
fn test_docker_machine_autoscaling_config_active() {
    assert_eq!(idle_at_start(&format!("{ROOT}{}", section(ACTIVE, 2, 2000))), (2, 2000));
}

/// `TestDockerMachine` / "autoscaling config inactive".
#[test]
fn test_docker_machine_autoscaling_config_inactive() {
    assert_eq!(idle_at_start(&format!("{ROOT}{}", section(INACTIVE, 2, 2000))), (1, 1000));
}

/// `TestDockerMachine` / "last matching autoscaling config is selected".
#[test]
fn test_docker_machine_last_matching_autoscaling_config_is_selected() {
    let m = format!("{ROOT}{}{}", section(ACTIVE, 2, 2000), section(ACTIVE, 3, 3000));
    assert_eq!(idle_at_start(&m), (3, 3000));
}

/// `TestDockerMachine` / "autoscaling overrides offpeak config".
#[test]
fn test_docker_machine_autoscaling_overrides_offpeak_config() {
    let m = format!(
        "{ROOT}{}{}{}{}",
        off_peak(ACTIVE),
        section(ACTIVE, 3, 3000),
        section(ACTIVE, 4, 4000),
        section(INACTIVE, 5, 5000)
    );
    assert_eq!(idle_at_start(&m), (4, 4000));
}

/// `TestDockerMachine` / "autoscaling invalid period config": an `InvalidTimePeriodsError`
/// (GitLab Runner does not start); fleetsim refuses the scenario, naming the section.
#[test]
fn test_docker_machine_autoscaling_invalid_period_config() {
    let e = build_machine(&format!("{ROOT}{}", section("invalid period", 3, 3000))).unwrap_err();
    let e = e.to_string();
    assert!(e.contains("runners[0].machine.autoscaling[0].Periods"), "{e}");
    assert!(e.contains("invalid period"), "{e}");
}

// --- exit code 2 ---------------------------------------------------------------------------

/// Each refusal above, through `sim run`: exit code 2, the file, the line and the key.
#[test]
fn refusals_exit_2_with_file_line_and_key() {
    let cases = [
        (labels_config(&[("test/key", "v1")], &[]), "config.toml:3:", "labels.test/key"),
        (labels_config(&[], &[("key1", "a b")]), "config.toml:", "runners[1].labels.key1"),
        (
            machine_options_with_name(Some(&["--valid=%s", "--invalid=value"])),
            "config.toml:",
            "runners[0].machine.MachineOptionsWithName[1]",
        ),
    ];
    for (config, place, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        std::fs::write(dir.path().join("trace.csv"), "job_id,created_at,duration,project_id\n")
            .unwrap();
        let scenario = dir.path().join("s.toml");
        std::fs::write(
            &scenario,
            "[scenario]\nname = \"t\"\nseed = 1\n[runner]\nconfig = \"config.toml\"\n\
             [workload]\ntrace = \"trace.csv\"\n",
        )
        .unwrap();
        let out = dir.path().join("out");
        let o = sim(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_bad_input(&o, &[place, key]);
        assert!(!stderr(&o).contains("panicked"));
    }
}
