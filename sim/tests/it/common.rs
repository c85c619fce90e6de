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
    pub retry: u32,
}

pub fn job(id: u64, at_ms: u64, duration_ms: u64) -> TestJob {
    TestJob { id, at_ms, duration_ms, project: 1, tags: Vec::new(), retry: 0 }
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
        request_latency_ms: 0,
        cache: Default::default(),
        containers: Default::default(),
        emit_every_step: false,
        skip_idle_offers: true,
    }
}

/// The engine's job list for `jobs`, with their tags interned in `fleet`.
pub fn job_specs(fleet: &mut Fleet, jobs: &[TestJob]) -> Vec<(u64, JobSpec)> {
    jobs.iter()
        .map(|j| {
            let tags =
                if j.tags.is_empty() { TagSetId::UNTAGGED } else { fleet.intern_tags(&j.tags) };
            let spec = JobSpec {
                id: JobId(j.id),
                project: ProjectId(j.project),
                tags,
                duration_ms: j.duration_ms,
                retry: j.retry,
                work: Default::default(),
            };
            (j.at_ms, spec)
        })
        .collect()
}

/// Simulated EC2 where each of `runners` runners has t2.medium machines in us-east-1 at
/// $0.0464/h, with `hazard` interruptions per hour, writing machines.csv to memory.
pub fn t2_medium_cloud(
    spec: fleetsim::cloud::ec2::CloudSpec,
    runners: usize,
    hazard: f64,
    seed: u64,
) -> fleetsim::cloud::ec2::SimCloud<Vec<u8>> {
    use fleetsim::cloud::ec2::{MachineType, SimCloud};
    let machine = MachineType {
        instance_type: "t2.medium".into(),
        region: "us-east-1".into(),
        price_per_hour: 0.0464,
        hazard_per_hour: hazard,
        slots: 1,
        boot: spec.boot, // tests give every runner their cloud's one boot time
    };
    let names: Vec<String> = (0..runners).map(|i| format!("r{i}")).collect();
    SimCloud::new(
        spec,
        vec![Some(machine); runners],
        &names,
        fleetsim::seeds::SeedTree::new(seed),
        Some(Vec::new()),
    )
    .unwrap()
}

/// Runs `jobs` (sorted by arrival) and returns the records sorted by job id.
pub fn run(spec: FleetSpec, jobs: &[TestJob]) -> Vec<JobRecord> {
    let mut fleet = Fleet::new(spec);
    let list = job_specs(&mut fleet, jobs);
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

/// A docker+machine runner with the given idle settings and caps.
pub fn machine_runner(
    idle_count: u32,
    idle_time_s: u64,
    limit: u32,
    max_growth_rate: u32,
    max_builds: u32,
) -> RunnerSpec {
    use fleetsim_core::docker_machine::{DockerMachineSpec, IdleSettings};
    RunnerSpec {
        limit,
        executor: fleetsim_core::ExecutorKind::DockerMachine(DockerMachineSpec {
            root: IdleSettings {
                idle_count,
                idle_count_min: 0,
                idle_scale_factor: 0.0,
                idle_time_ms: idle_time_s * 1000,
            },
            sections: Vec::new(),
            max_growth_rate,
            max_builds,
        }),
        ..RunnerSpec::docker("dm")
    }
}

/// The outcome of a run with simulated EC2.
pub struct MachineRun {
    pub records: Vec<JobRecord>,
    pub machines_csv: String,
    pub totals: fleetsim::cloud::ec2::CloudTotals,
}

/// Runs `jobs` on `spec` with simulated EC2 (`cloud`), every runner using t2.medium
/// on-demand in us-east-1 unless `cloud.market` is spot. `periods` are given to runner 0.
pub fn run_machines(
    spec: FleetSpec,
    jobs: &[TestJob],
    cloud: fleetsim::cloud::ec2::CloudSpec,
    periods: Option<Box<dyn fleetsim_core::periods::PeriodSchedule>>,
    seed: u64,
) -> MachineRun {
    let n = spec.processes.iter().map(|p| p.runners.len()).sum::<usize>();
    let hazard = if cloud.market == fleetsim::cloud::prices::Market::Spot {
        fleetsim::cloud::prices::hazard_per_hour(cloud.interruption_per_month.unwrap_or(0.05))
    } else {
        0.0
    };
    let mut fleet = Fleet::new(spec);
    if let Some(p) = periods {
        fleet.set_periods(fleetsim_core::RunnerId(0), p);
    }
    let list = job_specs(&mut fleet, jobs);
    let mut cloud = t2_medium_cloud(cloud, n, hazard, seed);
    let mut records = CollectRecords::default();
    let end = Engine::new()
        .run_with(&mut fleet, &mut ListSource::new(list), &mut records, &mut cloud)
        .expect("run ends");
    let (csv, totals) = cloud.finish(end.end).unwrap();
    records.records.sort_by_key(|r| (r.id, r.attempt));
    MachineRun {
        records: records.records,
        machines_csv: String::from_utf8(csv.unwrap()).unwrap(),
        totals,
    }
}

/// Fixed boot time, no failures, on demand.
pub fn fixed_cloud(boot_s: u64) -> fleetsim::cloud::ec2::CloudSpec {
    fleetsim::cloud::ec2::CloudSpec {
        boot: fleetsim::cloud::ec2::BootTime::Fixed(boot_s * 1000),
        removal_ms: 5000,
        ..Default::default()
    }
}

/// `machines.csv` rows as maps from column to value.
pub fn machine_rows(csv: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            headers
                .iter()
                .zip(rec.unwrap().iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}
