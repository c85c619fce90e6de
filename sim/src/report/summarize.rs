//! The summary of a run: percentiles, utilization, machines and the cost model (hosts,
//! machines from the ledger, the cache's S3 requests and storage or its server), from what
//! the report observer, the fleet's cache and the machine ledger gathered.

use fleetsim_core::cache::{CacheStats, MissReason};

use crate::cloud::ledger::CloudTotals;
use crate::cloud::prices;
use crate::engine::RunEnd;
use crate::report::pending::PendingStats;
use crate::report::summary::{
    CacheSummary, CostSummary, FleetSummary, ImagesSummary, JobsSummary, MachinesSummary,
    PendingSummary, Summary, ToScriptSummary, Utilization, round6,
};
use crate::scenario::Scenario;

/// Areas under the pending and running curves (job·ms).
pub(crate) struct Areas {
    pub(crate) pending: u128,
    pub(crate) running: u128,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn summarize(
    scenario: &Scenario,
    seed: u64,
    replay: &str,
    trace_sha256: Option<String>,
    end: RunEnd,
    pending: &PendingStats,
    areas: Areas,
    machines: &CloudTotals,
    cache: &CacheStats,
) -> Summary {
    let span_ms = end.end.as_ms();
    let per_ms = |area: u128| if span_ms == 0 { 0.0 } else { round6(area as f64 / span_ms as f64) };
    let slots = scenario.config.concurrent * scenario.hosts;
    let mean_running = per_ms(areas.running);
    let price = scenario.host_price_per_hour.unwrap_or(0.0);
    let hosts_usd = if scenario.host_price_per_hour.is_some() {
        f64::from(scenario.hosts) * prices::billed_usd(price, span_ms)
    } else {
        0.0
    };
    let (cache_summary, cache_usd) = cache_summary(scenario, cache, span_ms);
    let total_usd = hosts_usd + machines.cost_usd + cache_usd;
    let days = span_ms as f64 / 86_400_000.0;
    Summary {
        scenario: scenario.name.clone(),
        mode: "sim",
        version: env!("CARGO_PKG_VERSION"),
        seed,
        scenario_sha256: scenario.sha256.clone(),
        trace_sha256,
        replay: replay.to_owned(),
        simulated_s: end.end.as_secs_f64(),
        jobs: JobsSummary {
            total: end.jobs,
            finished: pending.count() - pending.failed(),
            failed: pending.failed(),
            retried: pending.retried(),
            skipped: 0,
        },
        pending: PendingSummary {
            mean_s: pending.mean_s(),
            p50_s: pending.quantile_s(0.50),
            p90_s: pending.quantile_s(0.90),
            p95_s: pending.quantile_s(0.95),
            p99_s: pending.quantile_s(0.99),
            max_s: pending.max_s(),
            share_waited: round6(pending.share_waited()),
            share_waited_for_capacity: round6(pending.share_waited_for_capacity()),
            wait_capacity_mean_s: pending.mean_capacity_s(),
            wait_machine_mean_s: pending.mean_machine_s(),
            wait_poll_mean_s: pending.mean_poll_s(),
        },
        to_script: ToScriptSummary {
            p50_s: pending.to_script_quantile_s(0.50),
            p95_s: pending.to_script_quantile_s(0.95),
            p99_s: pending.to_script_quantile_s(0.99),
        },
        machines: MachinesSummary {
            max: machines.max_alive,
            created: machines.created,
            creation_failed: machines.creation_failed,
            interrupted: machines.interrupted,
            billed_hours: round6(machines.billed_s as f64 / 3600.0),
        },
        utilization: Utilization {
            mean_running,
            mean_pending: per_ms(areas.pending),
            slots,
            busy_share: round6(mean_running / f64::from(slots)),
            mean_run_s: pending.mean_run_s(),
        },
        fleet: FleetSummary {
            hosts: scenario.hosts,
            concurrent: scenario.config.concurrent,
            runners: scenario.config.runners.len(),
            check_interval_s: scenario.config.check_interval_ms as f64 / 1000.0,
            pickup: match scenario.pickup {
                fleetsim_core::Pickup::Polling => "polling",
                fleetsim_core::Pickup::Immediate => "immediate",
            },
            long_polling_s: scenario.long_poll_ms as f64 / 1000.0,
        },
        window: None,
        live: None,
        cache: cache_summary,
        images: ImagesSummary { pulls: cache.image_pulls, bytes: cache.image_bytes },
        cost: CostSummary {
            total_usd: round6(total_usd),
            per_month_usd: if days > 0.0 { round6(total_usd / days * 30.0) } else { 0.0 },
            per_job_usd: if end.jobs > 0 { round6(total_usd / end.jobs as f64) } else { 0.0 },
            machines_usd: round6(machines.cost_usd),
            idle_share: if machines.cost_usd > 0.0 {
                round6(machines.idle_cost_usd / machines.cost_usd)
            } else {
                0.0
            },
            hosts_usd: round6(hosts_usd),
            cache_usd: round6(cache_usd),
            host_price_per_hour: price,
            host_price_source: scenario.host_price_source.clone(),
        },
    }
}

/// The cache figures of a run and what the cache cost: S3 requests and storage at AWS
/// prices, or the MinIO server's machine for the run.
fn cache_summary(scenario: &Scenario, c: &CacheStats, span_ms: u64) -> (CacheSummary, f64) {
    use crate::scenario::{CacheBackend, s3_prices};
    let restores = c.hits + c.misses.iter().sum::<u64>();
    let gb_month = c.storage_byte_ms as f64 / 1e9 / (730.0 * 3_600_000.0);
    let distributed_used = c.gets > 0 || c.puts > 0;
    let cost = match &scenario.cache.backend {
        CacheBackend::S3 => {
            c.gets as f64 / 1000.0 * s3_prices::GET_PER_1000
                + c.puts as f64 / 1000.0 * s3_prices::PUT_PER_1000
                + gb_month * s3_prices::STORAGE_GB_MONTH
        }
        CacheBackend::Server { price_per_hour, .. } if distributed_used => {
            prices::billed_usd(*price_per_hour, span_ms)
        }
        CacheBackend::Server { .. } => 0.0,
    };
    let reasons = MissReason::ALL
        .iter()
        .zip(c.misses)
        .map(|(r, n)| (r.as_str().to_owned(), n))
        .collect::<std::collections::BTreeMap<_, _>>();
    let summary = CacheSummary {
        restores,
        hits: c.hits,
        hit_rate: if restores == 0 { 0.0 } else { round6(c.hits as f64 / restores as f64) },
        miss_reasons: reasons,
        bytes_down: c.bytes_down,
        bytes_up: c.bytes_up,
        get_requests: c.gets,
        put_requests: c.puts,
        uploads_skipped: c.uploads_skipped,
        storage_gb_month: round6(gb_month),
        backend: match &scenario.cache.backend {
            CacheBackend::S3 => "s3".into(),
            CacheBackend::Server { source, .. } => format!("server ({source})"),
        },
        cost_usd: round6(cost),
    };
    (summary, cost)
}
