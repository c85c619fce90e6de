//! GitLab Runner 19.4's `commands/builds_helper_test.go`, the adaptive request concurrency
//! cases (`FF_USE_ADAPTIVE_REQUEST_CONCURRENCY`, on by default in 19.4), against fleetsim's
//! [`Adaptive`] (`(*buildsHelper).acquireRequest` computes the cap, `releaseRequest` applies
//! the AIMD step). The request counter itself (`counter.requests`) lives in the fleet; the
//! `limit` cases (`TestBuildsHelperAcquireBuild*`) and `TestProcessRunner_BuildLimit` are
//! ported end to end in `sim/tests/it/go_multi.rs`.
//!
//! # Not expressible through fleetsim's inputs
//!
//! `TestBuildsHelper_ReleaseRequest_RetriedDoesNotGrowAdaptive`,
//! `..._RetriedAfterWarmupShrinksAdaptiveFast`, `..._RetriedDecreasesFasterThanEmptyResponse`
//! and `..._RetriedIgnoredWhenAdaptiveDisabled` pass `retried = true` (an HTTP-level retry of
//! the job request, ×0.5): fleetsim's GitLab never makes the runner retry a request, so no
//! input reaches that branch.

use fleetsim_core::adaptive::Adaptive;

/// `acquireRequest`'s adaptive cap for `request_concurrency` (0 counts as 1,
/// `GetRequestConcurrency`).
fn cap(a: Adaptive, request_concurrency: u32) -> u32 {
    a.cap(request_concurrency)
}

/// `TestBuildsHelperAcquireRequestWithLimit`: `request_concurrency` 2, but the adaptive limit
/// starts at 0, so one request at a time ("allow only one requests (adaptive limit)"), and an
/// empty response keeps it there.
#[test]
fn test_builds_helper_acquire_request_with_limit() {
    let mut a = Adaptive::default();
    assert_eq!(cap(a, 2), 1);
    a.after_request(false, 2);
    assert_eq!(cap(a, 2), 1);
}

/// `TestBuildsHelperAcquireRequestWithAdaptiveLimit`: after one request that got a job the
/// limit is max(1, 0 × 1.1) = 1: the second simultaneous request is still refused.
#[test]
fn test_builds_helper_acquire_request_with_adaptive_limit() {
    let mut a = Adaptive::default();
    assert_eq!(cap(a, 2), 1);
    a.after_request(true, 2);
    assert_eq!(a.value(), 1.0);
    assert_eq!(cap(a, 2), 1, "a second request while one is out is refused");
    a.after_request(false, 2);
    assert_eq!(cap(a, 2), 1);
}

/// `TestBuildsHelperAcquireRequestWithDefault`: `request_concurrency` 0 allows one request.
#[test]
fn test_builds_helper_acquire_request_with_default() {
    let mut a = Adaptive::default();
    assert_eq!(cap(a, 0), 1, "allow only one request");
    a.after_request(false, 0);
    assert_eq!(cap(a, 0), 1);
}

/// `TestBuildsHelper_ReleaseRequest_AdaptiveGrowsOnCleanSuccess`: 50 requests that each got a
/// job grow the limit to `request_concurrency` 10 (1.1^n reaches 10 at n ≈ 25) and no further.
#[test]
fn test_builds_helper_release_request_adaptive_grows_on_clean_success() {
    let mut a = Adaptive::default();
    for _ in 0..50 {
        a.after_request(true, 10);
    }
    assert!((a.value() - 10.0).abs() < 0.01, "{}", a.value());
    assert_eq!(cap(a, 10), 10);
}
