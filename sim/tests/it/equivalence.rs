//! The fast path (skip feeder offers that change nothing) must give exactly the same job
//! timings as offering every `check_interval / N`, tick by tick.

use fleetsim_core::spec::{FleetSpec, RunnerScope, RunnerSpec};
use proptest::prelude::*;

use crate::common::{TestJob, run};

fn runner_strategy() -> impl Strategy<Value = RunnerSpec> {
    (0u32..3, 1u32..3, any::<bool>(), any::<bool>(), 0usize..3, any::<bool>()).prop_map(
        |(limit, rc, adaptive, strict, tagset, instance)| {
            let mut r = RunnerSpec::docker("r");
            r.limit = limit;
            r.request_concurrency = rc;
            r.adaptive_request_concurrency = adaptive;
            r.strict_check_interval = strict;
            r.scope = if instance { RunnerScope::Instance } else { RunnerScope::Project };
            match tagset {
                0 => {}
                1 => r.tags = vec!["a".into()],
                _ => {
                    r.tags = vec!["a".into(), "b".into()];
                    r.run_untagged = false;
                }
            }
            r
        },
    )
}

fn fleet_strategy() -> impl Strategy<Value = FleetSpec> {
    (
        prop::collection::vec(
            (1u32..4, 500u64..5000, 0u64..5000, prop::collection::vec(runner_strategy(), 1..6)),
            1..3,
        ),
        prop_oneof![Just(0u64), Just(7_000u64)],
        // Request latency off, the default, and any (shorter or longer than the gap between
        // offers: only shorter ones let empty requests be skipped).
        prop_oneof![Just(0u64), Just(300u64), 1u64..3_000],
    )
        .prop_map(|(processes, long_poll_ms, request_latency_ms)| FleetSpec {
            processes: processes
                .into_iter()
                .enumerate()
                .map(|(i, (concurrent, ci, phase, mut runners))| {
                    // Every job must be servable: give the first runner of every process all tags.
                    runners[0].tags = vec!["a".into(), "b".into()];
                    runners[0].run_untagged = true;
                    fleetsim_core::ProcessSpec {
                        name: format!("host-{i}"),
                        concurrent,
                        check_interval_ms: ci,
                        first_offer_ms: phase % ci,
                        runners,
                    }
                })
                .collect(),
            pickup: fleetsim_core::Pickup::Polling,
            long_poll_ms,
            request_latency_ms,
            cache: Default::default(),
            containers: Default::default(),
            emit_every_step: false,
            skip_idle_offers: true,
        })
}

pub fn jobs_strategy() -> impl Strategy<Value = Vec<TestJob>> {
    prop::collection::vec((0u64..20_000, 1u64..30_000, 1u64..4, 0usize..4), 1..40).prop_map(|v| {
        let mut at = 0;
        v.into_iter()
            .enumerate()
            .map(|(i, (gap, duration_ms, project, tags))| {
                at += gap;
                TestJob {
                    id: i as u64 + 1,
                    at_ms: at,
                    duration_ms,
                    project,
                    tags: match tags {
                        0 | 1 => vec![],
                        2 => vec!["a"],
                        _ => vec!["a", "b"],
                    },
                    retry: 1,
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn skipping_idle_offers_changes_no_job_timing(spec in fleet_strategy(), jobs in jobs_strategy()) {
        let fast = run(spec.clone(), &jobs);
        let mut tick = spec;
        tick.skip_idle_offers = false;
        let slow = run(tick, &jobs);
        prop_assert_eq!(fast, slow);
    }
}
