//! GitLab Runner 19.4's `commands/multi_test.go` and `commands/builds_helper_test.go`, ported
//! where they pin what fleetsim models (the feeder, `limit`, `request_concurrency`, adaptive
//! request concurrency, tokens, the start-up warnings): one Rust test per Go table case.
//! Config cases go through fleetsim's config loader, behaviour through the whole fleet.
//! The adaptive-concurrency cases of `builds_helper_test.go` are in
//! `core/tests/go_builds_helper.rs`.
//!
//! # Not ported (not expressible through fleetsim's inputs)
//!
//! | Go test / case | why |
//! |---|---|
//! | `TestReloadConfig_EmptyTokenWarning` / "no runners" | fleetsim refuses a config without `[[runners]]` (exit 2): there is nothing to simulate. GitLab Runner starts and idles |
//! | `TestReloadConfig_MissingRunnerIDWarning` | `FF_SUSPENDABLE_ENVIRONMENTS` and runner ids: not modelled |
//! | `TestRunCommand_doJobRequest`, `TestRunCommand_requestJob_*` | job update / cancel / abort over the network API: fleetsim's jobs always run to their end |
//! | `TestRunCommand_nextRunnerToReset`, `TestRunCommand_resetOneRunnerToken`, `TestRunCommand_resetRunnerTokens` | token expiry and reset: not modelled |
//! | `TestRunCommand_configReloading*` | config reloads while running: a scenario has one config |
//! | `TestListenAddress`, `TestResolveSkipOIDCIfUnsupportedCloud`, `TestFinishBuildSkipsSyntheticBuilds`, `TestUsageLoggerStoreLoadNil` | metrics server, OIDC, synthetic builds, usage logger: no simulated behaviour |
//! | `TestBuildsHelperFindSessionByURL`, `TestBuildsHelper_ListJobsHandler`, `TestRestrictHTTPMethods`, `TestBuildsHelper_evaluateJobQueuingDuration`, `TestJobExecutionModeTotal`, `TestPrepareStageMetrics*`, `TestEnsureJobsTotalIsZero` | session server, HTTP handlers, monitoring thresholds and metrics |

use fleetsim_core::spec::RunnerSpec;

use crate::common::{job, one_process, run, starts};
use crate::go_config::{load, runner};

// --- TestRequestBottleneckWarning (commands/multi.go checkConfigConcurrency) ---------------

/// A runner with `token`, `request_concurrency` and `limit` (0 = absent).
fn entry(token: &str, request_concurrency: u32, limit: u32) -> String {
    let mut extra = String::new();
    if limit > 0 {
        extra.push_str(&format!("  limit = {limit}\n"));
    }
    let r = runner(token, &extra).replace("glrt-abcdefghijk", token);
    if request_concurrency == 0 {
        r.replace("  request_concurrency = 4\n", "")
    } else {
        r.replace(
            "request_concurrency = 4",
            &format!("request_concurrency = {request_concurrency}"),
        )
    }
}

/// The "CONFIGURATION: Long polling issues detected" warning of a config, if any.
fn bottleneck_warning(concurrent: u32, runners: &[String]) -> Option<String> {
    let text = format!("concurrent = {concurrent}\n{}", runners.concat());
    let loaded = load(&text).unwrap();
    let found: Vec<&String> = loaded
        .warnings
        .iter()
        .filter(|w| w.contains("CONFIGURATION:") && w.contains("Long polling issues detected"))
        .collect();
    assert!(found.len() <= 1, "{found:?}");
    found.first().map(|w| (*w).clone())
}

/// `TestRequestBottleneckWarning` / "worker_starvation": `concurrent` 2, three runners (their
/// `request_concurrency` unset, so the request bottleneck is reported too, as in Go).
#[test]
fn test_request_bottleneck_warning_worker_starvation() {
    let runners: Vec<String> = (1..=3).map(|i| entry(&format!("runner{i}"), 0, 0)).collect();
    let w = bottleneck_warning(2, &runners).expect("Should warn when concurrent < runners");
    assert!(
        w.contains(
            "Worker starvation bottleneck: 'concurrent' setting (2) is less than number of \
             runners (3)"
        ),
        "{w}"
    );
    assert!(w.contains("Increase 'concurrent' to at least 4 (current: 2)"), "{w}");
    assert!(w.starts_with("config.toml:1:"), "the warning points at `concurrent`: {w}");
}

/// `TestRequestBottleneckWarning` / "request_bottleneck".
#[test]
fn test_request_bottleneck_warning_request_bottleneck() {
    let runners = [entry("runner1", 1, 10), entry("runner2", 1, 8)];
    let w = bottleneck_warning(4, &runners).expect("Should warn about request bottleneck");
    assert!(
        w.contains(
            "Request bottleneck: 2 runners have request_concurrency=1, causing job delays during \
             long polling"
        ),
        "{w}"
    );
    assert!(!w.contains("Build limit bottleneck") && !w.contains("Worker starvation"), "{w}");
}

/// `TestRequestBottleneckWarning` / "build_limit_saturation".
#[test]
fn test_request_bottleneck_warning_build_limit_saturation() {
    let runners = [entry("runner1", 1, 2), entry("runner2", 1, 1)];
    let w = bottleneck_warning(4, &runners).expect("Should warn about build limit saturation");
    assert!(
        w.contains(
            "Build limit bottleneck: 2 runners have low 'limit' settings (≤2) with \
             request_concurrency=1"
        ),
        "{w}"
    );
    assert!(
        w.contains(
            "For 2 runners with low limits: either increase 'limit' to 5+ or increase \
             'request_concurrency' to 2+"
        ),
        "{w}"
    );
}

/// `TestRequestBottleneckWarning` / "multiple_scenarios".
#[test]
fn test_request_bottleneck_warning_multiple_scenarios() {
    let runners = [entry("runner1", 1, 2), entry("runner2", 1, 1), entry("runner3", 2, 5)];
    let w = bottleneck_warning(4, &runners).expect("Should warn about multiple issues");
    assert!(w.contains("Request bottleneck: 2 runners"), "{w}");
    assert!(w.contains("Build limit bottleneck: 2 runners"), "{w}");
    assert!(!w.contains("Worker starvation"), "{w}");
}

/// `TestRequestBottleneckWarning` / "healthy_configuration".
#[test]
fn test_request_bottleneck_warning_healthy_configuration() {
    let runners = [entry("runner1", 3, 10), entry("runner2", 2, 5)];
    assert_eq!(bottleneck_warning(6, &runners), None, "Should not warn for healthy configuration");
}

/// `TestRequestBottleneckWarning` / "adequate_concurrent".
#[test]
fn test_request_bottleneck_warning_adequate_concurrent() {
    let runners: Vec<String> = (1..=3).map(|i| entry(&format!("runner{i}"), 2, 0)).collect();
    assert_eq!(bottleneck_warning(3, &runners), None, "Should not warn when concurrent >= runners");
}

// --- TestReloadConfig_EmptyTokenWarning ----------------------------------------------------

/// The number of empty-token warnings for `runners` given as `(name, token)`, `concurrent` 1
/// as in the Go test (executor docker instead of shell: fleetsim simulates docker).
fn empty_token_warnings(runners: &[(&str, &str)]) -> usize {
    let mut text = "concurrent = 1\n".to_owned();
    for (name, token) in runners {
        text.push_str(&format!(
            "[[runners]]\n  name = \"{name}\"\n  url = \"https://gitlab.example.com/\"\n  token = \
             \"{token}\"\n  executor = \"docker\"\n"
        ));
    }
    let loaded = load(&text).unwrap();
    loaded.warnings.iter().filter(|w| w.contains("token is empty or whitespace")).count()
}

/// `TestReloadConfig_EmptyTokenWarning` / "one valid runner".
#[test]
fn test_reload_config_empty_token_warning_one_valid_runner() {
    assert_eq!(empty_token_warnings(&[("valid", "abc123")]), 0);
}

/// `TestReloadConfig_EmptyTokenWarning` / "one empty-token runner".
#[test]
fn test_reload_config_empty_token_warning_one_empty_token_runner() {
    assert_eq!(empty_token_warnings(&[("bad", "")]), 1);
}

/// `TestReloadConfig_EmptyTokenWarning` / "two empty-token runners".
#[test]
fn test_reload_config_empty_token_warning_two_empty_token_runners() {
    assert_eq!(empty_token_warnings(&[("bad1", ""), ("bad2", "   ")]), 2);
}

/// `TestReloadConfig_EmptyTokenWarning` / "mixed valid and invalid runners".
#[test]
fn test_reload_config_empty_token_warning_mixed_valid_and_invalid_runners() {
    assert_eq!(empty_token_warnings(&[("good", "tok"), ("bad", "")]), 1);
}

// --- TestFeedRunner_EmptyToken -------------------------------------------------------------

/// A runner without a token is never fed: with it first and a good runner second (two
/// workers, `check_interval` 3 s, so offers at 0, 1.5, 3, 4.5 s …: the runner without a token
/// at 0, 3, 6 s, the good one at 1.5, 4.5 s), every job is taken by the good runner at its own
/// offers, and the token-less runner's offers hold no worker. The Go test feeds the runner
/// once and asserts nothing was sent to the channel; here its token goes through the config
/// loader and the scenario's runner list.
fn feed_runner_empty_token(token: &str) {
    let loaded = load(&format!(
        "concurrent = 2\n{}",
        runner("empty-token-runner", "").replace("\"glrt-abcdefghijk\"", token)
    ))
    .unwrap();
    let has_token = fleetsim::config::validated::has_token(&loaded.config.runners[0].token);
    assert!(!has_token);
    let blank = RunnerSpec { has_token, ..RunnerSpec::docker("empty-token-runner") };
    let good = RunnerSpec::docker("good");
    let fast = one_process(2, 3000, 0, vec![blank, good]);
    // Tick by tick (every offer handled) and with the fast path (offers that change nothing
    // skipped): the feeder's handling and the fast path's must agree.
    let mut tick = fast.clone();
    tick.skip_idle_offers = false;
    for spec in [tick, fast] {
        // Job 1 waits from 100 ms: the token-less runner's 3 s offer passes it by, the good
        // runner takes it at 1.5 s. Jobs 2 and 3 arrive at 2.9 s and 3.0 s: both workers are
        // free at the 3 s offer (to the token-less runner), yet nothing is taken before 4.5 s.
        let records = run(spec, &[job(1, 100, 1000), job(2, 2900, 1000), job(3, 3000, 1000)]);
        let got: Vec<(u64, u64)> = starts(&records).iter().map(|&(id, at, ..)| (id, at)).collect();
        assert_eq!(got, vec![(1, 1500), (2, 4500), (3, 4500)]);
        assert!(records.iter().all(|r| r.runner.0 == 1), "only the runner with a token runs jobs");
    }
}

/// `TestFeedRunner_EmptyToken` / "empty string".
#[test]
fn test_feed_runner_empty_token_empty_string() {
    feed_runner_empty_token("\"\"");
}

/// `TestFeedRunner_EmptyToken` / "single space".
#[test]
fn test_feed_runner_empty_token_single_space() {
    feed_runner_empty_token("\" \"");
}

/// `TestFeedRunner_EmptyToken` / "multiple spaces".
#[test]
fn test_feed_runner_empty_token_multiple_spaces() {
    feed_runner_empty_token("\"   \"");
}

/// `TestFeedRunner_EmptyToken` / "tab character".
#[test]
fn test_feed_runner_empty_token_tab_character() {
    feed_runner_empty_token("\"\\t\"");
}

/// `TestFeedRunner_EmptyToken` / "newline".
#[test]
fn test_feed_runner_empty_token_newline() {
    feed_runner_empty_token("\"\\n\"");
}

/// `TestFeedRunner_EmptyToken` / "mixed whitespace".
#[test]
fn test_feed_runner_empty_token_mixed_whitespace() {
    feed_runner_empty_token("\" \\t\\n \"");
}

// --- TestProcessRunner_BuildLimit, TestBuildsHelperAcquireBuild* ---------------------------

/// `TestProcessRunner_BuildLimit`: `limit` 2, `request_concurrency` 10, three workers running
/// `processRunner` at once: two builds run, the third worker meets "runner limit met" and
/// requests nothing. Here: three jobs waiting from 0.1 s, `concurrent` 3, the offer at 3 s
/// (with the greedy re-poll) starts two; the third starts at the first offer after a build
/// ended (jobs of 10 s end at 13 s: the 15 s offer).
#[test]
fn test_process_runner_build_limit() {
    let r = RunnerSpec { limit: 2, request_concurrency: 10, ..RunnerSpec::docker("r") };
    let spec = one_process(3, 3000, 0, vec![r]);
    let jobs = [job(1, 100, 10_000), job(2, 100, 10_000), job(3, 100, 10_000)];
    let got: Vec<(u64, u64)> =
        starts(&run(spec, &jobs)).iter().map(|&(id, at, ..)| (id, at)).collect();
    assert_eq!(got, vec![(1, 3000), (2, 3000), (3, 15_000)]);
}

/// `TestBuildsHelperAcquireBuildWithLimit`: `limit` 1 allows one build at a time.
#[test]
fn test_builds_helper_acquire_build_with_limit() {
    let spec = one_process(2, 3000, 0, vec![RunnerSpec { limit: 1, ..RunnerSpec::docker("r") }]);
    let got: Vec<(u64, u64)> = starts(&run(spec, &[job(1, 100, 5000), job(2, 100, 5000)]))
        .iter()
        .map(|&(id, at, ..)| (id, at))
        .collect();
    assert_eq!(got, vec![(1, 3000), (2, 9000)], "allow only one build");
}

/// `TestBuildsHelperAcquireBuildUnlimited`: `limit` 0 is unlimited.
#[test]
fn test_builds_helper_acquire_build_unlimited() {
    let spec = one_process(2, 3000, 0, vec![RunnerSpec { limit: 0, ..RunnerSpec::docker("r") }]);
    let got: Vec<(u64, u64)> = starts(&run(spec, &[job(1, 100, 5000), job(2, 100, 5000)]))
        .iter()
        .map(|&(id, at, ..)| (id, at))
        .collect();
    assert_eq!(got, vec![(1, 3000), (2, 3000)]);
}
