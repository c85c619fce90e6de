//! Runs issue 15's scale fixture once and prints jobs per second, for profiles and quick
//! measurements of one fleet size (the criterion series is `cargo bench --bench run fleet_scale`):
//!
//! ```sh
//! cargo build --release -p fleetsim-benches --example fleet_scale
//! target/release/examples/fleet_scale docker_machine 1000 300000
//! ```
//!
//! Arguments: `docker_machine` or `docker_autoscaler`, the fleet size (machines), the jobs;
//! or `runners`, the number of `[[runners]]` entries (tagged docker runners), the jobs;
//! or `runners_latency`, the same with the scenarios' default 300 ms job request latency.

use std::time::Instant;

use fleetsim_benches::{FleetScale, RunnerScale, ScaleExecutor};

// A benchmark's one job is to read the wall clock, which the simulator itself never does.
#[allow(clippy::disallowed_methods)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let executor = match args.first().map(String::as_str) {
        Some("docker_machine") => Some(ScaleExecutor::DockerMachine),
        Some("docker_autoscaler") => Some(ScaleExecutor::DockerAutoscaler),
        Some("runners" | "runners_latency") => None,
        other => {
            eprintln!(
                "first argument: docker_machine, docker_autoscaler, runners or \
                 runners_latency, got {other:?}"
            );
            std::process::exit(2);
        }
    };
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).map_or(Ok(default), |s| s.parse()).unwrap_or_else(|e| {
            eprintln!("argument {}: expected a positive integer: {e}", i + 1);
            std::process::exit(2);
        })
    };
    let size = u32::try_from(number(1, 1000)).unwrap_or(u32::MAX);
    let jobs = number(2, 300_000);
    let (name, start, end) = match executor {
        Some(executor) => {
            let fixture = FleetScale::new(executor, size, jobs);
            let (fleet, list) = fixture.setup();
            let start = Instant::now();
            (executor.name(), start, fixture.run(fleet, list))
        }
        None => {
            let latency = args.first().map(String::as_str) == Some("runners_latency");
            let fixture = RunnerScale::new(size, jobs);
            let fixture = if latency { fixture.with_request_latency(300) } else { fixture };
            let (fleet, list) = fixture.setup();
            let start = Instant::now();
            let name = if latency { "runners_latency" } else { "runners" };
            (name, start, fixture.run(fleet, list))
        }
    };
    let s = start.elapsed().as_secs_f64();
    println!(
        "{name} size={size} jobs={} inputs={} {:.3} s {:.0} jobs/s",
        end.jobs,
        end.inputs,
        s,
        end.jobs as f64 / s
    );
}
