//! Runs one benchmark workload once, for instruction counts that do not depend on what else
//! the machine is doing (`valgrind --tool=callgrind` or `perf stat -e instructions`):
//!
//! ```sh
//! cargo build --release -p fleetsim-benches --example instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/instructions autoscale-cache
//! ```
//!
//! Variants: `autoscale`, `autoscale-cache`, `migrated` (the docker-autoscaler fleet), and
//! `setup` / `setup-cache` (the setup alone, to subtract). It prints the jobs and the inputs
//! the core handled.

use fleetsim_benches::Autoscale;

fn main() {
    let variant = std::env::args().nth(1).unwrap_or_default();
    let fixture = if variant == "migrated" { Autoscale::migrated() } else { Autoscale::new() };
    let (with_cache, run) = match variant.as_str() {
        "autoscale" | "migrated" => (false, true),
        "autoscale-cache" => (true, true),
        "setup" => (false, false),
        "setup-cache" => (true, false),
        other => {
            eprintln!(
                "unknown variant {other:?}: autoscale, autoscale-cache, migrated, setup, setup-cache"
            );
            std::process::exit(2);
        }
    };
    let (fleet, jobs) = fixture.setup(with_cache);
    if run {
        let end = fixture.run(fleet, jobs);
        println!("{variant}: {} jobs, {} inputs", end.jobs, end.inputs);
    } else {
        println!("{variant}: {} jobs set up", jobs.len());
    }
}
