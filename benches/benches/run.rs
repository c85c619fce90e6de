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
use fleetsim::engine::{Engine, ListSource};
use fleetsim::run::{RunOptions, run_file};
use fleetsim_benches::{Autoscale, Count, FleetScale, JOBS, ScaleExecutor, workload};
use fleetsim_core::Fleet;
use fleetsim_core::spec::{FleetSpec, Pickup};

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

/// The seed's autoscaled fleet ([`Autoscale`]), with and without caches: per job and per
/// input the core handles.
fn engine_autoscale(c: &mut Criterion) {
    let fixture = Autoscale::new();
    let name = |with_cache: bool| {
        if with_cache { "seed_autoscale_spot_s3_cache" } else { "seed_autoscale_spot" }
    };
    // Per job, and per input the core handles (arrivals, step and machine completions,
    // wakeups): a job with an image and a cache has up to four timed steps instead of one, so
    // the second is what handling one event costs with and without the cache model.
    for per_input in [false, true] {
        let mut group = c.benchmark_group(if per_input { "engine_per_input" } else { "engine" });
        group.sample_size(10);
        for with_cache in [false, true] {
            let elements = if per_input {
                let (fleet, jobs) = fixture.setup(with_cache);
                fixture.run(fleet, jobs).inputs
            } else {
                JOBS
            };
            group.throughput(Throughput::Elements(elements));
            group.bench_function(name(with_cache), |b| {
                b.iter_batched(
                    || fixture.setup(with_cache),
                    |(fleet, jobs)| black_box(fixture.run(fleet, jobs)),
                    BatchSize::LargeInput,
                );
            });
        }
        group.finish();
    }
    let migrated = Autoscale::migrated();
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    group.throughput(Throughput::Elements(JOBS));
    group.bench_function("seed_autoscale_migrated", |b| {
        b.iter_batched(
            || migrated.setup(false),
            |(fleet, jobs)| black_box(migrated.run(fleet, jobs)),
            BatchSize::LargeInput,
        );
    });
    group.finish();
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

/// Issue 15's series: the same load (60 % of the fleet, 300,000 jobs) on fleets of 10 to
/// 10,000 single-slot machines, docker+machine and docker-autoscaler ([`FleetScale`]). The
/// time per job should not grow with the fleet. `benches/fleet-scale.sh` prints the same
/// series with peak memory, one process per size.
fn fleet_scale(c: &mut Criterion) {
    const SCALE_JOBS: u64 = 300_000;
    for executor in [ScaleExecutor::DockerMachine, ScaleExecutor::DockerAutoscaler] {
        let mut group = c.benchmark_group(format!("fleet_scale_{}", executor.name()));
        group.throughput(Throughput::Elements(SCALE_JOBS));
        group.sample_size(10);
        for machines in [10, 100, 1_000, 10_000] {
            let fixture = FleetScale::new(executor, machines, SCALE_JOBS);
            group.bench_function(format!("{machines}_machines"), |b| {
                b.iter_batched(
                    || fixture.setup(),
                    |(fleet, jobs)| black_box(fixture.run(fleet, jobs)),
                    BatchSize::LargeInput,
                );
            });
        }
        group.finish();
    }
}

criterion_group!(benches, engine, engine_autoscale, sim_run, sweep_throughput, fleet_scale);
criterion_main!(benches);
