//! # fleetsim — capacity planning for GitLab CI runner fleets
//!
//! This crate holds everything around the sans-I/O model in `fleetsim-core`: the event
//! engine, the file formats, the simulated cloud, the reports and the `sim` binary.
//!
//! ```text
//!  scenario.toml ─► scenario ─┐                ┌─► report::jobs_csv     (jobs.csv)
//!  config.toml ───► config ───┼─► run ─► engine ┼─► report::timeline     (timeline.csv)
//!  trace.csv ─────► trace ────┘     (Fleet)     └─► report::summary      (summary.json)
//! ```
//!
//! Modules:
//! - [`config`] — GitLab Runner's `config.toml`, read as GitLab Runner reads it.
//! - [`scenario`] — the scenario file and `--set` overrides, validated into a fleet spec.
//! - [`trace`] — the job trace CSV, streamed.
//! - [`engine`] — the `(time, seq)` event loop around `fleetsim_core::drive::Drive`.
//! - [`seeds`] — named random streams derived from one root seed.
//! - [`cloud`] — the simulated cloud: EC2 prices, the simulated EC2 account, the machine
//!   ledger (billing and `machines.csv`, simulated or live).
//! - [`periods`] — autoscaling periods: cron expressions and time zones, the active section.
//! - [`report`] — the report observer, the summary and its cost model, the jobs, timeline
//!   and HTML outputs.
//! - [`run_path`] — the one run path of `sim run` and `sim live`: scenario → fleet →
//!   observer → summary → files.
//! - [`run`] — `sim run`: the run path driven by the engine and the simulated cloud.
//! - [`offload`] — `sim run`'s two helper threads: the trace parsed ahead, the finished jobs
//!   and streamed reports written beside the engine.
//! - [`compare`] — `sim compare`: two reports' `summary.json` side by side (text and HTML).
//! - [`sweep`] — `sim sweep` and `sim merge`: grids of runs in parallel, Pareto front, shards.
//! - [`plan`] — `sim plan`: the cheapest configuration meeting SLOs.
//! - [`queueing`] — Erlang C and M/M/c formulas the tests validate against.
//! - [`input_error`] — the error type naming file, line and key.
//! - [`input_file`] — the gate every input file passes: regular files only, a size limit.
//! - [`redact`] — what is secret in the inputs, and how values are redacted before printing.
//! - [`workload`] — the seeded pipeline generator (`sim trace gen`, `[workload.generate]`).
//! - [`migrate`] — `sim migrate`: a docker+machine config rewritten for docker-autoscaler.
//! - [`live`] — `sim live`: the same fleet against a real Docker engine and S3 server
//!   (driver in `fleetsim-live`), with the same reports.
//! - [`live_calibrate`] — `sim live calibrate`: the engine's and S3 server's costs measured.

pub mod cloud;
pub mod compare;
pub mod config;
pub mod engine;
pub mod event_queue;
pub mod input_error;
pub mod input_file;
pub mod live;
pub mod live_calibrate;
pub mod migrate;
pub mod offload;
pub mod periods;
pub mod plan;
pub mod queueing;
pub mod redact;
pub mod report;
pub mod run;
pub mod run_path;
pub mod scenario;
pub mod seeds;
pub mod sweep;
pub mod trace;
pub mod workload;
