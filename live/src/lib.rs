//! # fleetsim-live — the fleetsim core against a real Docker engine and a real S3 server
//!
//! Live mode replays a trace as a load test: the very same [`fleetsim_core::Fleet`] as
//! `sim run` decides what happens; this crate carries its commands out for real and feeds
//! the completions back, on the wall clock scaled by `--speed`.
//!
//! ```text
//!   sim live (fleetsim) ── scenario, trace, reports ──┐
//!                                                     ▼
//!   driver::run ─► Fleet::handle ─► StartStep ─► docker (bollard): one container per step
//!        ▲                      │               s3 (object_store): cache.zip objects
//!        │                      └ Create/RemoveMachine ─► docker volumes, scaled creation time
//!        └──── StepDone / MachineReady / MachineRemoved ◄── tokio tasks (JoinSet)
//! ```
//!
//! Modules:
//! - [`clock`] — the only wall-clock read: run time = wall time × speed.
//! - [`docker`] — connecting with a deadline, labelled volumes and containers, the sweep
//!   by label, the minimal busybox image.
//! - [`s3`] — the distributed cache from `[runners.cache]`, GitLab's object names.
//! - [`calibrate`] — the probe behind `sim live calibrate`: container, archive and S3 costs.
//! - [`archive`] — zip archives (GitLab's cache format) and Docker's tar streams; zip-slip
//!   refusal.
//! - [`driver`] — the event loop around `Fleet::handle`.
//! - [`report`] — HDR histograms of real latencies, cache outcomes, errors.
//!
//! Everything a run creates carries the label `fleetsim.run=<run id>` and is removed when
//! the run ends, however it ends; `docker::sweep` with no run id is `sim live cleanup`.

pub mod archive;
pub mod calibrate;
pub mod clock;
pub mod docker;
pub mod driver;
mod port;
pub mod report;
pub mod s3;
mod shared;
mod steps;

/// Why a live run could not start or go on. Each message names what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveError {
    /// Bad input: settings, trace (exit code 2).
    Input(String),
    /// The Docker engine is unreachable or refused something essential (exit code 1).
    Docker(String),
    /// The S3 server is unreachable, refused the credentials, or the bucket is missing
    /// (exit code 1).
    S3(String),
}

impl std::fmt::Display for LiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LiveError::Input(m) => f.write_str(m),
            LiveError::Docker(m) => write!(f, "Docker: {m}"),
            LiveError::S3(m) => write!(f, "S3: {m}"),
        }
    }
}

impl std::error::Error for LiveError {}

/// A run id: `<unix seconds in base 36>` plus a few bits of the process id, short enough for
/// container names and unique enough that two runs on one engine do not collide.
pub fn new_run_id(seed: u64) -> String {
    let pid = u64::from(std::process::id());
    let t = clock::wall_seconds();
    let mut n = (t << 16) ^ (pid & 0xffff) ^ seed.rotate_left(7);
    let mut s = String::new();
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    while n > 0 && s.len() < 10 {
        s.push(DIGITS[(n % 36) as usize] as char);
        n /= 36;
    }
    format!("r{s}")
}
