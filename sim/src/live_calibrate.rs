//! `sim live calibrate`: measures the Docker engine and the S3 server a scenario would run
//! against ([`fleetsim_live::calibrate::probe`]) and writes the `[calibration]` section that
//! `sim run` reads ([`crate::scenario::calibration`]).

use std::path::Path;

use fleetsim_live::calibrate::{PROBE_SIZES, Probe, lane_counts, probe};
use fleetsim_live::docker::{DockerPort, connect, sweep};

use crate::live::{CONNECT_TIMEOUT, job_image, live_failure, runner_caches};
use crate::run::RunFailure;
use crate::scenario::Scenario;
use crate::scenario::calibration::Calibration;

/// Options of `sim live calibrate`.
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    /// `--docker URL`.
    pub docker: Option<String>,
    /// `--image`: overrides `[runners.docker] image`.
    pub image: Option<String>,
    /// `--rounds`: container rounds measured (a job's worth of engine work each).
    pub rounds: u32,
    /// `--lanes`: the most rounds run side by side; the probe runs them alone, then doubling
    /// up to it (default: `concurrent`, at most 4 — see [`default_lanes`]).
    pub lanes: Option<u32>,
    /// `--speed`: the live speed the calibration is for (written as `speed`).
    pub speed: f64,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        CalibrateOptions { docker: None, image: None, rounds: 24, lanes: None, speed: 1.0 }
    }
}

/// The most job rounds the probe runs side by side by default: `concurrent`, at most four. A
/// container operation is slower while others run (dockerd, containerd and runc share the
/// host's cores; sleeping containers cost nothing, measured), so the probe measures each
/// operation alone and how much the overlap a run can see slows it. Measured on the project's
/// 2-core machine: a stage took 138 ms alone, 204 ms with two lanes, 365 ms with four.
pub fn default_lanes(concurrent: u32) -> u32 {
    concurrent.clamp(1, 4)
}

/// Probes the engine and the first S3 cache of `scenario`'s runners; returns the calibration
/// and the probe's raw measurements. Everything the probe created is removed.
pub async fn calibrate(
    scenario_path: &Path,
    opts: &CalibrateOptions,
) -> Result<(Calibration, Probe), RunFailure> {
    let bad = |what: &str, msg: &str| {
        RunFailure::Input(crate::input_error::InputError::file(what, msg.to_owned()))
    };
    if !(opts.speed > 0.0 && opts.speed.is_finite() && opts.speed <= 1000.0) {
        return Err(bad("--speed", "expected a number > 0 and ≤ 1000"));
    }
    if opts.rounds == 0 || opts.rounds > 1000 {
        return Err(bad("--rounds", "expected 1 to 1000"));
    }
    let scenario = Scenario::load_uncalibrated(scenario_path)?;
    let image = job_image(&scenario, opts.image.as_deref())?;
    let runners = runner_caches(&scenario)?;
    let lanes = opts.lanes.unwrap_or(default_lanes(scenario.config.concurrent));
    if lanes == 0 || lanes > 64 {
        return Err(bad("--lanes", "expected 1 to 64"));
    }
    let docker = connect(opts.docker.as_deref(), CONNECT_TIMEOUT).await.map_err(live_failure)?;
    let run_id = fleetsim_live::new_run_id(0);
    let port = DockerPort::new(docker.clone(), &run_id, &image);
    port.check_image().await.map_err(live_failure)?;
    let s3 = runners.iter().find_map(|r| r.s3.clone());
    if let Some(s3) = &s3 {
        s3.preflight(&run_id).await.map_err(live_failure)?;
    }
    let prefix = format!("fleetsim-calibrate/{run_id}");
    let counts = lane_counts(lanes);
    let measured =
        probe(&port, s3.as_ref().map(|s| (s, prefix.as_str())), opts.rounds, &counts).await;
    // The probe's containers and volume, whatever happened.
    let _ = sweep(&docker, Some(&run_id)).await;
    let p = measured.map_err(live_failure)?;
    let (s3_latency_us, s3_bytes_per_s) = if s3.is_some() {
        p.s3_latency_and_rate()
    } else {
        // No S3 cache to measure: the model's defaults (`[cache]` latency and bandwidth).
        let t = fleetsim_core::cache::Transfer::default();
        (t.remote_latency_ms * 1000, t.remote_bytes_per_s)
    };
    let endpoint = s3
        .as_ref()
        .and_then(|s| s.config().endpoint())
        .unwrap_or_else(|| "no S3 cache (defaults)".into());
    let m = p.alone();
    let calibration = Calibration {
        speed: opts.speed,
        create_us: m.create.mean_us(),
        stage_us: m.stage.mean_us(),
        remove_us: m.remove.mean_us(),
        s3_latency_us,
        s3_bytes_per_s,
        archive_bytes_per_s: m.archive_bytes_per_s(),
        archive_latency_us: m.archive_latency_us(),
        contention: (p.contention() * 1000.0).round() / 1000.0,
        // Live mode runs every machine's containers on this one engine.
        shared_engine: true,
        measured: format!(
            "{} on {}, image {image}, S3 {endpoint}: {} rounds at {counts:?} lanes, sizes {:?} bytes",
            jiff::Timestamp::from_second(fleetsim_live::clock::wall_seconds() as i64)
                .map_or_else(|_| "?".into(), |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()),
            opts.docker.clone().unwrap_or_else(|| "the default Docker engine".into()),
            opts.rounds,
            PROBE_SIZES
        ),
        file: None,
    };
    Ok((calibration, p))
}
