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
    poisson_jobs(seed, 0.8 * 5.0 / 238.0, JOBS, 4)
}

/// One runner manager (`check_interval` 3 s, first offer at 1.234 s) with these runners,
/// polling GitLab with instant job requests, the fast path on.
fn one_manager(name: &str, concurrent: u32, runners: Vec<RunnerSpec>) -> FleetSpec {
    FleetSpec {
        processes: vec![ProcessSpec {
            name: name.into(),
            concurrent,
            check_interval_ms: 3000,
            first_offer_ms: 1234,
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

/// `n` untagged jobs arriving as a Poisson stream of `per_s` jobs per second, with log-normal
/// durations (median 180 s, mean ≈ 238 s), in projects `id % projects`.
fn poisson_jobs(seed: u64, per_s: f64, n: u64, projects: u64) -> Vec<(u64, JobSpec)> {
    let seeds = SeedTree::new(seed);
    let (mut a, mut d) = (seeds.stream("arrivals"), seeds.stream("durations"));
    let durations = LogNormal::new((180.0f64).ln(), 0.75).expect("valid"); // mean ≈ 238 s
    let inter = Exp::new(per_s).expect("valid");
    let mut t = 0.0;
    (1..=n)
        .map(|id| {
            t += inter.sample(&mut a);
            let spec = JobSpec {
                id: JobId(id),
                project: ProjectId(id % projects),
                tags: TagSetId::UNTAGGED,
                duration_ms: (durations.sample(&mut d) * 1000.0) as u64,
                retry: 0,
                work: Default::default(),
            };
            ((t * 1000.0) as u64, spec)
        })
        .collect()
}

/// Runs `jobs` on `fleet` with simulated EC2 for the runner named `runner` (`machines.csv`
/// rows formatted, then dropped).
fn run_on_cloud(
    mut fleet: Fleet,
    jobs: Vec<(u64, JobSpec)>,
    cloud: CloudSpec,
    types: Vec<Option<MachineType>>,
    runner: &str,
) -> RunEnd {
    let mut cloud =
        SimCloud::new(cloud, types, &[runner.into()], SeedTree::new(7), None::<std::io::Sink>)
            .expect("cloud");
    let mut count = Count::default();
    let end = Engine::new()
        .run_with(&mut fleet, &mut ListSource::new(jobs), &mut count, &mut cloud)
        .expect("run");
    black_box(count.0);
    end
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
        let spec = one_manager("host-0", 12, vec![runner]);
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
    pub fn run(&self, fleet: Fleet, jobs: Vec<(u64, JobSpec)>) -> RunEnd {
        run_on_cloud(fleet, jobs, self.cloud.clone(), self.types.clone(), "dm")
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

/// The executor of a [`FleetScale`] fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleExecutor {
    /// docker+machine: `IdleCount` = 20 % of `limit`, `IdleTime` = 10 min.
    DockerMachine,
    /// docker-autoscaler: one slot per instance, `idle_count` = 20 % of `max_instances`,
    /// `idle_time` = 10 min.
    DockerAutoscaler,
}

impl ScaleExecutor {
    /// The name used in bench ids and the examples' arguments.
    pub fn name(self) -> &'static str {
        match self {
            ScaleExecutor::DockerMachine => "docker_machine",
            ScaleExecutor::DockerAutoscaler => "docker_autoscaler",
        }
    }
}

/// Issue 15's scale fixture: one runner manager whose fleet has `machines` single-slot
/// machines (`limit` = `concurrent` = `machines`), warm pool 20 % of it, a fixed 60 s boot on
/// simulated on-demand EC2, and `jobs` jobs arriving as a Poisson stream at 60 % of the
/// fleet's capacity (log-normal durations, mean ≈ 238 s). The per-job cost of a run should
/// not depend on `machines`.
pub struct FleetScale {
    spec: FleetSpec,
    jobs: Vec<(u64, JobSpec)>,
    types: Vec<Option<MachineType>>,
}

impl FleetScale {
    /// The fixture for `machines` machines and `jobs` jobs (seed 42).
    pub fn new(executor: ScaleExecutor, machines: u32, jobs: u64) -> FleetScale {
        use fleetsim_core::taskscaler::{AutoscalerSpec, Policy, ScaleFactorRule, Throttle};
        let idle = machines / 5;
        let idle_time_ms = 600_000;
        let kind = match executor {
            ScaleExecutor::DockerMachine => ExecutorKind::DockerMachine(DockerMachineSpec {
                root: IdleSettings {
                    idle_count: idle,
                    idle_count_min: 0,
                    idle_scale_factor: 0.0,
                    idle_time_ms,
                },
                sections: Vec::new(),
                max_growth_rate: 0,
                max_builds: 0,
            }),
            ScaleExecutor::DockerAutoscaler => ExecutorKind::DockerAutoscaler(AutoscalerSpec {
                capacity_per_instance: 1,
                max_use_count: 0,
                max_instances: machines,
                acquire_wait_ms: 3 * 15 * 60_000 + 6_000,
                policies: vec![Policy {
                    idle_count: idle,
                    idle_time_ms,
                    scale_factor: 0.0,
                    scale_factor_limit: 0,
                    preemptive: true,
                }],
                default_policy: Policy::default(),
                throttle: Throttle { per_s: Some(100), burst: 20 },
                scale_factor_rule: ScaleFactorRule::Max,
                contention: 0.0,
            }),
        };
        let runner = RunnerSpec { limit: machines, executor: kind, ..RunnerSpec::docker("fleet") };
        let spec = one_manager("manager-0", machines, vec![runner]);
        let types = vec![Some(MachineType {
            instance_type: "t3.medium".into(),
            region: "us-east-1".into(),
            price_per_hour: 0.0416,
            hazard_per_hour: 0.0,
            slots: 1,
            boot: BootTime::Fixed(60_000),
        })];
        let jobs = poisson_jobs(42, 0.6 * f64::from(machines) / 238.0, jobs, 64);
        FleetScale { spec, jobs, types }
    }

    /// A fresh fleet and the job list.
    pub fn setup(&self) -> (Fleet, Vec<(u64, JobSpec)>) {
        (Fleet::new(self.spec.clone()), self.jobs.clone())
    }

    /// Runs the jobs on simulated on-demand EC2 (`machines.csv` rows formatted, then dropped).
    pub fn run(&self, fleet: Fleet, jobs: Vec<(u64, JobSpec)>) -> RunEnd {
        let cloud = CloudSpec {
            boot: BootTime::Fixed(60_000),
            instance_boot: BootTime::Fixed(60_000),
            ..CloudSpec::default()
        };
        run_on_cloud(fleet, jobs, cloud, self.types.clone(), "fleet")
    }
}

/// Issue 15's runner series: one runner manager with `runners` `[[runners]]` entries (docker
/// executor, `limit = 4`, tag `team-<i>`, no untagged jobs), `concurrent` = 4 × `runners`, and
/// `jobs` jobs spread evenly over the teams' tags at 60 % of the capacity. The per-job cost
/// should not depend on the number of runners: the GitLab queue's tag matching and the
/// feeder's offers to every runner included.
pub struct RunnerScale {
    spec: FleetSpec,
    jobs: Vec<(u64, Vec<String>, JobSpec)>,
}

impl RunnerScale {
    /// The fixture for `runners` runners and `jobs` jobs (seed 42).
    pub fn new(runners: u32, jobs: u64) -> RunnerScale {
        let entries = (0..runners)
            .map(|i| RunnerSpec {
                limit: 4,
                tags: vec![format!("team-{i}")],
                run_untagged: false,
                ..RunnerSpec::docker(format!("runner-{i}"))
            })
            .collect();
        let spec = one_manager("manager-0", 4 * runners, entries);
        let jobs = poisson_jobs(42, 0.6 * 4.0 * f64::from(runners) / 238.0, jobs, 64)
            .into_iter()
            .map(|(at, spec)| {
                // Teams in turn: each runner gets its share of the load.
                let team = vec![format!("team-{}", spec.id.0 % u64::from(runners))];
                (at, team, spec)
            })
            .collect();
        RunnerScale { spec, jobs }
    }

    /// The same with every job request taking `ms` to answer (`[gitlab] request_latency`;
    /// scenarios default to 300 ms). With more runners than `check_interval` / `ms` on the
    /// manager, offers come closer together than a request takes, and every request that
    /// goes out counts (no offer can be skipped in bulk).
    pub fn with_request_latency(mut self, ms: u64) -> RunnerScale {
        self.spec.request_latency_ms = ms;
        self
    }

    /// A fresh fleet and the job list, tags interned.
    pub fn setup(&self) -> (Fleet, Vec<(u64, JobSpec)>) {
        let mut fleet = Fleet::new(self.spec.clone());
        let jobs = self
            .jobs
            .iter()
            .map(|(at, tags, job)| {
                let tags = fleet.intern_tags(tags);
                (*at, JobSpec { tags, ..*job })
            })
            .collect();
        (fleet, jobs)
    }

    /// Runs the jobs.
    pub fn run(&self, mut fleet: Fleet, jobs: Vec<(u64, JobSpec)>) -> RunEnd {
        let mut count = Count::default();
        let end =
            Engine::new().run(&mut fleet, &mut ListSource::new(jobs), &mut count).expect("run");
        black_box(count.0);
        end
    }
}
