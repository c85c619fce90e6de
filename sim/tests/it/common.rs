//! Helpers shared by the integration tests: build fleets, run job lists, collect records.

use fleetsim::engine::{CollectRecords, Engine, ListSource};
use fleetsim_core::spec::{FleetSpec, Pickup, ProcessSpec, RunnerSpec};
use fleetsim_core::{Fleet, JobId, JobRecord, JobSpec, ProjectId, TagSetId};

/// A job for a list source: `(id, created_ms, duration_ms, project, tags)`.
#[derive(Debug, Clone)]
pub struct TestJob {
    pub id: u64,
    pub at_ms: u64,
    pub duration_ms: u64,
    pub project: u64,
    pub tags: Vec<&'static str>,
}

pub fn job(id: u64, at_ms: u64, duration_ms: u64) -> TestJob {
    TestJob { id, at_ms, duration_ms, project: 1, tags: Vec::new() }
}

/// One process with the given runners.
pub fn one_process(
    concurrent: u32,
    check_interval_ms: u64,
    first_offer_ms: u64,
    runners: Vec<RunnerSpec>,
) -> FleetSpec {
    FleetSpec {
        processes: vec![ProcessSpec {
            name: "host-0".into(),
            concurrent,
            check_interval_ms,
            first_offer_ms,
            runners,
        }],
        pickup: Pickup::Polling,
        long_poll_ms: 0,
        skip_idle_offers: true,
    }
}

/// Runs `jobs` (sorted by arrival) and returns the records sorted by job id.
pub fn run(spec: FleetSpec, jobs: &[TestJob]) -> Vec<JobRecord> {
    let mut fleet = Fleet::new(spec);
    let list: Vec<(u64, JobSpec)> = jobs
        .iter()
        .map(|j| {
            let tags =
                if j.tags.is_empty() { TagSetId::UNTAGGED } else { fleet.intern_tags(&j.tags) };
            (
                j.at_ms,
                JobSpec {
                    id: JobId(j.id),
                    project: ProjectId(j.project),
                    tags,
                    duration_ms: j.duration_ms,
                },
            )
        })
        .collect();
    let mut records = CollectRecords::default();
    Engine::new().run(&mut fleet, &mut ListSource::new(list), &mut records).expect("run ends");
    records.records.sort_by_key(|r| r.id);
    records.records
}

/// `(job id, started ms, wait_capacity ms, wait_poll ms)` of each record.
pub fn starts(records: &[JobRecord]) -> Vec<(u64, u64, u64, u64)> {
    records
        .iter()
        .map(|r| (r.id.0, r.started.as_ms(), r.wait_capacity_ms, r.wait_poll_ms))
        .collect()
}
