//! Whole-run benchmarks (fixed seeds): jobs simulated per second.
//!
//! - `engine/seed_single_server_*`: the core and the event engine alone, on a seed-like
//!   workload held in memory (one docker host, `concurrent = 5`, Poisson arrivals at
//!   ρ ≈ 0.8, log-normal durations), with the real polling model (fast path on) and with the
//!   tick-by-tick model for comparison.
//! - `sim_run/seed_single_server`: `sim run` end to end on the committed seed scenario:
//!   scenario and config parsing, the trace CSV streamed in, jobs.csv and timeline.csv
//!   written. `sim_run/generated_week` is the same server on the generated week: the
//!   generator streamed into the run and the pipeline (stage and needs) release.
//!
//! Results and setup: `benches/README.md`.

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fleetsim::engine::{Engine, ListSource, Observer};
use fleetsim::run::{RunOptions, run_file};
use fleetsim::seeds::SeedTree;
use fleetsim_core::spec::{FleetSpec, Pickup};
use fleetsim_core::{Command, Fleet, JobId, JobSpec, ProjectId, SimTime, TagSetId};
use rand_distr::{Distribution, Exp, LogNormal};

const JOBS: u64 = 200_000;

/// Seed-like load: 5 slots, mean job 240 s, arrivals for ρ ≈ 0.8, 4 projects.
fn workload(seed: u64) -> Vec<(u64, JobSpec)> {
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
struct Count(u64);

impl Observer for Count {
    fn after_input(&mut self, _: SimTime, _: &Fleet, _: bool, commands: &[Command]) {
        self.0 += commands.iter().filter(|c| matches!(c, Command::JobFinished(_))).count() as u64;
    }
}

fn engine(c: &mut Criterion) {
    let jobs = workload(42);
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(JOBS));
    group.sample_size(10);
    for (name, skip) in
        [("seed_single_server_fast_path", true), ("seed_single_server_tick_by_tick", false)]
    {
        group.bench_function(name, |b| {
            b.iter_batched(
                || jobs.clone(),
                |jobs| {
                    let mut spec = FleetSpec::single_docker(5, Pickup::Polling);
                    spec.skip_idle_offers = skip;
                    let mut fleet = Fleet::new(spec);
                    let mut count = Count::default();
                    Engine::new()
                        .run(&mut fleet, &mut ListSource::new(jobs), &mut count)
                        .expect("run");
                    black_box(count.0)
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

/// The seed's autoscaled fleet in memory: docker+machine, `concurrent = 12`, `limit = 20`,
/// `IdleCount = 1`, `IdleTime = 1800`, on simulated EC2 spot (log-normal boot), with the
/// same job stream as the single-server benchmark.
fn engine_autoscale(c: &mut Criterion) {
    use fleetsim::cloud::ec2::{CloudSpec, MachineType, SimCloud};
    use fleetsim::cloud::prices::Market;
    use fleetsim_core::docker_machine::{DockerMachineSpec, IdleSettings};
    use fleetsim_core::spec::{ExecutorKind, ProcessSpec, RunnerSpec};

    let jobs = workload(42);
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
        cache: Default::default(),
        skip_idle_offers: true,
    };
    let cloud = CloudSpec { market: Market::Spot, ..CloudSpec::default() };
    let types = vec![Some(MachineType {
        instance_type: "t2.medium".into(),
        region: "ap-northeast-2".into(),
        price_per_hour: 0.0144,
        hazard_per_hour: fleetsim::cloud::prices::hazard_per_hour(0.05),
    })];
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(JOBS));
    group.sample_size(10);
    for with_cache in [false, true] {
        let name = if with_cache { "seed_autoscale_spot_s3_cache" } else { "seed_autoscale_spot" };
        let mut spec = spec.clone();
        spec.processes[0].runners[0].cache.distributed = with_cache;
        group.bench_function(name, |b| {
            b.iter_batched(
                // Interning the cache keys and images happens while the trace is read; it is
                // set up outside the measurement, like the job list itself.
                || {
                    let mut fleet = Fleet::new(spec.clone());
                    let mut jobs = jobs.clone();
                    if with_cache {
                        add_caches(&mut fleet, &mut jobs);
                    }
                    (fleet, jobs)
                },
                |(mut fleet, jobs)| {
                    let mut cloud = SimCloud::new(
                        cloud.clone(),
                        types.clone(),
                        &["dm".into()],
                        SeedTree::new(7),
                        std::io::sink(),
                    )
                    .expect("cloud");
                    let mut count = Count::default();
                    Engine::new()
                        .run_with(&mut fleet, &mut ListSource::new(jobs), &mut count, &mut cloud)
                        .expect("run");
                    black_box(count.0)
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

/// Gives each job a cache (its project's `main` key, or a branch key falling back to it, for
/// one job in four) and its project's image, as the seed trace has.
fn add_caches(fleet: &mut Fleet, jobs: &mut [(u64, JobSpec)]) {
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
        };
    }
}

fn sim_run(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_run");
    group.sample_size(20);
    for name in ["seed-single-server", "seed-autoscale-spot", "generated-week"] {
        let scenario =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"));
        let out = std::env::temp_dir().join(format!("fleetsim-bench-{name}"));
        let opts = RunOptions { out: Some(out), ..RunOptions::default() };
        let jobs = run_file(&scenario, &opts).expect("seed scenario runs").summary.jobs.total;
        group.throughput(Throughput::Elements(jobs));
        group.bench_function(name.replace('-', "_"), |b| {
            b.iter(|| black_box(run_file(&scenario, &opts).expect("run")))
        });
    }
    group.finish();
}

/// `sim sweep` on the seed autoscaled fleet: 8 points (`IdleCount` 0..7), one seed each, no
/// report files, on 1 and on 2 threads.
fn sweep_throughput(c: &mut Criterion) {
    use fleetsim::sweep::grid::{Shard, parse_axis};
    use fleetsim::sweep::{SweepSpec, run_points};

    let scenario =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/seed-autoscale-spot.toml");
    let axes = vec![parse_axis("runners[0].machine.IdleCount=0..7").expect("axis")];
    let points: Vec<_> = fleetsim::sweep::grid::points(&axes).into_iter().enumerate().collect();
    let mut group = c.benchmark_group("sweep");
    group.throughput(Throughput::Elements(points.len() as u64));
    group.sample_size(10);
    for threads in [1, 2] {
        let spec = SweepSpec {
            scenario: scenario.clone(),
            sets: Vec::new(),
            axes: axes.clone(),
            seeds: 1,
            base_seed: None,
            threads,
            shard: Shard::ALL,
            window: None,
        };
        group.bench_function(format!("seed_autoscale_8_points_{threads}_threads"), |b| {
            b.iter(|| black_box(run_points(&spec, &points, false).expect("sweep")))
        });
    }
    group.finish();
}

criterion_group!(benches, engine, engine_autoscale, sim_run, sweep_throughput);
criterion_main!(benches);
