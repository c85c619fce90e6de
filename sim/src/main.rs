//! The `sim` command line. Exit codes: 0 ok, 1 the run failed, 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fleetsim::run::{RunFailure, RunOptions, run_file};

/// fleetsim: how long GitLab CI jobs stay pending, and what the runner fleet costs.
#[derive(Debug, Parser)]
#[command(name = "sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Replay a scenario's trace on a simulated clock and write its reports.
    Run {
        /// The scenario file (scenario.toml).
        scenario: PathBuf,
        /// Root seed (overrides `[scenario] seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Report folder (default: reports/<scenario name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a scenario or config.toml key, e.g. `--set concurrent=8`,
        /// `--set 'runners[0].limit=4'`, `--set gitlab.pickup=immediate`. Repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run { scenario, seed, out, sets } => {
            let opts = RunOptions { seed, out, sets };
            match run_file(&scenario, &opts) {
                Ok(output) => {
                    for w in &output.warnings {
                        eprintln!("warning: {w}");
                    }
                    print!("{}", output.summary.table());
                    println!("reports    {}", output.out_dir.display());
                    ExitCode::SUCCESS
                }
                Err(RunFailure::Input(e)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
                Err(RunFailure::Failed(msg)) => {
                    eprintln!("error: {msg}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
