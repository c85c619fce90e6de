//! Workloads and fleets shared by the criterion benchmarks (`benches/run.rs`) and the
//! instruction-count runner (`examples/instructions.rs`), so both measure the same thing.

use std::hint::black_box;

use fleetsim::cloud::ec2::{BootTime, CloudSpec, MachineType, SimCloud};
use fleetsim::cloud::prices::Market;
use fleetsim::engine::{Engine, ListSource, Observer, RunEnd};
use fleetsim::seeds::SeedTree;
use fleetsim_core::docker_machine::{DockerMachineSpec, IdleSettings};
use fleetsim_core::spec::{ExecutorKind, FleetSpec, Pickup, ProcessSpec, RunnerSpec};
use fleetsim_core::{Command, Fleet, JobId, JobSpec, ProjectId, SimTime, TagSetId};
use rand_distr::{Distribution, Exp, LogNormal};

/// Jobs in the in-memory workloads.
pub const JOBS: u64 = 200_000;

/// Seed-like load: 5 slots, mean job 240 s, arrivals for ρ ≈ 0.8, 4 projects.
pub fn workload(seed: u64) -> Vec<(u64, JobSpec)> {
    let seeds = SeedTree::new(seed);
    let (mut a, mut d) = (seeds.stream("arrivals"), seeds.stream("durations"));
    let durations = LogNormal::new((180.0f64).ln(), 0.75).expect("valid"); // mean ≈ 238 s
    let inter = Exp::new(0.8 * 5.0 / 238.0).expect("valid");
    let mut t = 0.0;
    (1..=JOBS)
        .map(|id| {
            t += inter.sample(&mut a);
            let spec = JobSpec {
                id: JobId(id),
                project: ProjectId(id % 4),
                tags: TagSetId::UNTAGGED,
                duration_ms: (durations.sample(&mut d) * 1000.0) as u64,
                retry: 0,
                work: Default::default(),
            };
            ((t * 1000.0) as u64, spec)
        })
        .collect()
}

/// Counts finished jobs, so the work cannot be optimized away.
#[derive(Default)]
pub struct Count(pub u64);

impl Observer for Count {
    fn after_input(&mut self, _: SimTime, _: &Fleet, _: bool, commands: &[Command]) {
        self.0 += commands.iter().filter(|c| matches!(c, Command::JobFinished(_))).count() as u64;
    }
}

/// The seed's autoscaled fleet in memory ([`Autoscale::new`]: docker+machine; or
/// [`Autoscale::migrated`]: docker-autoscaler): docker+machine, `concurrent = 12`, `limit = 20`,
/// `IdleCount = 1`, `IdleTime = 1800`, on simulated EC2 spot (log-normal boot), with the
/// same job stream as the single-server benchmark; with or without an S3 cache and images.
pub struct Autoscale {
    spec: FleetSpec,
    jobs: Vec<(u64, JobSpec)>,
    cloud: CloudSpec,
    types: Vec<Option<MachineType>>,
}

impl Default for Autoscale {
    fn default() -> Self {
        Self::new()
    }
}

impl Autoscale {
    /// The fleet, the job stream and the cloud.
    pub fn new() -> Autoscale {
        let runner = RunnerSpec {
            limit: 20,
            executor: ExecutorKind::DockerMachine(DockerMachineSpec {
                root: IdleSettings {
                    idle_count: 1,
                    idle_count_min: 0,
                    idle_scale_factor: 0.0,
                    idle_time_ms: 1_800_000,
                },
                sections: Vec::new(),
                max_growth_rate: 0,
                max_builds: 0,
            }),
            ..RunnerSpec::docker("dm")
        };
        let spec = FleetSpec {
            processes: vec![ProcessSpec {
                name: "host-0".into(),
                concurrent: 12,
                check_interval_ms: 3000,
                first_offer_ms: 1234,
                runners: vec![runner],
            }],
            pickup: Pickup::Polling,
            long_poll_ms: 0,
            request_latency_ms: 0,
            cache: Default::default(),
            skip_idle_offers: true,
        };
        let types = vec![Some(MachineType {
            instance_type: "t2.medium".into(),
            region: "ap-northeast-2".into(),
            price_per_hour: 0.0144,
            hazard_per_hour: fleetsim::cloud::prices::hazard_per_hour(0.05),
            slots: 1,
            boot: BootTime::DEFAULT,
        })];
        Autoscale {
            spec,
            jobs: workload(42),
            cloud: CloudSpec { market: Market::Spot, ..CloudSpec::default() },
            types,
        }
    }

    /// The same fleet moved to docker-autoscaler as `sim migrate` maps it: capacity 1,
    /// `idle_count = 1` (preemptive), `idle_time = 30m`, `max_instances = 20`.
    pub fn migrated() -> Autoscale {
        use fleetsim_core::taskscaler::{AutoscalerSpec, Policy, ScaleFactorRule, Throttle};
        let mut a = Autoscale::new();
        let policy = Policy {
            idle_count: 1,
            idle_time_ms: 1_800_000,
            scale_factor: 0.0,
            scale_factor_limit: 0,
            preemptive: true,
        };
        a.spec.processes[0].runners[0].executor = ExecutorKind::DockerAutoscaler(AutoscalerSpec {
            capacity_per_instance: 1,
            max_use_count: 0,
            max_instances: 20,
            acquire_wait_ms: 3 * 15 * 60_000 + 6_000,
            policies: vec![policy],
            default_policy: Policy::default(),
            throttle: Throttle { per_s: Some(100), burst: 20 },
            scale_factor_rule: ScaleFactorRule::Max,
            contention: 0.0,
        });
        if let Some(t) = &mut a.types[0] {
            t.boot = BootTime::INSTANCE_DEFAULT; // a fleeting instance from a prepared image
        }
        a
    }

    /// A fresh fleet and job list. Interning the cache keys and images happens while a trace
    /// is read, so it belongs to the setup, like the job list itself.
    pub fn setup(&self, with_cache: bool) -> (Fleet, Vec<(u64, JobSpec)>) {
        let mut spec = self.spec.clone();
        spec.processes[0].runners[0].cache.distributed = with_cache;
        let mut fleet = Fleet::new(spec);
        let mut jobs = self.jobs.clone();
        if with_cache {
            add_caches(&mut fleet, &mut jobs);
        }
        (fleet, jobs)
    }

    /// Runs the jobs on the fleet with simulated EC2 (`machines.csv` rows formatted, then
    /// dropped).
    pub fn run(&self, mut fleet: Fleet, jobs: Vec<(u64, JobSpec)>) -> RunEnd {
        let mut cloud = SimCloud::new(
            self.cloud.clone(),
            self.types.clone(),
            &["dm".into()],
            SeedTree::new(7),
            std::io::sink(),
        )
        .expect("cloud");
        let mut count = Count::default();
        let end = Engine::new()
            .run_with(&mut fleet, &mut ListSource::new(jobs), &mut count, &mut cloud)
            .expect("run");
        black_box(count.0);
        end
    }
}

/// Gives each job a cache (its project's `main` key, or a branch key falling back to it, for
/// one job in four) and its project's image, as the seed trace has.
pub fn add_caches(fleet: &mut Fleet, jobs: &mut [(u64, JobSpec)]) {
    use fleetsim_core::cache::Policy;
    for (k, (_, job)) in jobs.iter_mut().enumerate() {
        let project = job.project.0;
        let main = format!("p{project}-main");
        let cache = if k % 4 == 0 {
            fleet.declare_cache(&format!("p{project}-branch{}", k % 13), &[main], Policy::PullPush)
        } else {
            fleet.declare_cache(&main, &[] as &[&str], Policy::PullPush)
        };
        job.work = fleetsim_core::JobWork {
            cache: Some(cache),
            cache_size: 300_000_000,
            cache_changed: k % 3 == 0,
            cache_miss_penalty_ms: 120_000,
            image: Some(fleet.intern_image(&format!("image-{project}"))),
            image_size: 500_000_000,
            ..Default::default()
        };
    }
}
