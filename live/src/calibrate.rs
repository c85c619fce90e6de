//! A short fixed probe of the Docker engine and the S3 server at hand: what one container
//! operation, one archive move and one S3 request really take, so that `sim run` can give the
//! docker executor's steps their real cost (`sim live calibrate`).
//!
//! Each round does what one job does to the engine ([`fleetsim_core::containers`]): a
//! container created (a shell with stdin open, as the executor's helper and build containers
//! are), three stages run on it, an archive of each probe size copied in and read back
//! (Docker's archive API, as live mode moves caches), the container removed. The S3 part PUTs
//! and GETs objects of each size and fits `time = latency + size / bandwidth` by least
//! squares.
//!
//! The rounds run alone, then two and four side by side (up to the lanes asked for), as
//! `concurrent` jobs would: an engine operation is slower while others run beside it, and the
//! model charges each operation its cost alone times `1 + contention × others`
//! (`fleetsim_core::containers`, "The engine is shared"). [`Probe::contention`] fits that
//! factor to how much longer a round's engine work takes with more lanes.

use std::time::Duration;

use bytes::Bytes;

use crate::LiveError;
use crate::archive;
use crate::clock::Stopwatch;
use crate::docker::{DockerPort, VOLUME_MOUNT};
use crate::report::Latency;
use crate::s3::S3Port;

/// The archive and object sizes probed, bytes.
pub const PROBE_SIZES: [u64; 3] = [100_000, 1_000_000, 8_000_000];

/// What the probe measured, wall-clock µs and bytes per second.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Container create (and inspect).
    pub create: Latency,
    /// One stage: attach, start, an empty script, wait.
    pub stage: Latency,
    /// Container removal.
    pub remove: Latency,
    /// Archive moves: (bytes, µs of one copy in plus one copy out).
    pub archive: Vec<(u64, u64)>,
}

/// Everything the probe measured.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The engine at each lane count, alone (one lane) first.
    pub engine: Vec<(u32, Measured)>,
    /// S3 transfers: (bytes, µs) of PUTs and GETs.
    pub s3: Vec<(u64, u64)>,
}

impl Probe {
    /// The engine with one round at a time: each operation's cost alone.
    pub fn alone(&self) -> &Measured {
        &self.engine[0].1
    }

    /// The engine's contention: how much longer a round's engine work takes per other round
    /// beside it, as a fraction of its time alone. Least squares through the origin of
    /// `time(lanes) / time(1) − 1 = contention × (lanes − 1)`; 0 with one lane only.
    pub fn contention(&self) -> f64 {
        let alone = self.alone().round_us();
        if alone <= 0.0 {
            return 0.0;
        }
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (lanes, m) in &self.engine {
            let x = f64::from(lanes.saturating_sub(1));
            sxy += x * (m.round_us() / alone - 1.0);
            sxx += x * x;
        }
        if sxx > 0.0 { (sxy / sxx).max(0.0) } else { 0.0 }
    }

    /// S3 request latency (µs) and throughput (bytes per second).
    pub fn s3_latency_and_rate(&self) -> (u64, u64) {
        let (latency, per_byte) = fit(&self.s3);
        (latency.max(0.0).round() as u64, rate(per_byte))
    }
}

/// The lane counts probed up to `max`: one, then doubling, and `max` itself (1, 2, 4 for 4).
pub fn lane_counts(max: u32) -> Vec<u32> {
    let mut counts: Vec<u32> =
        std::iter::successors(Some(1u32), |&l| l.checked_mul(2)).take_while(|&l| l < max).collect();
    counts.push(max.max(1));
    counts.dedup();
    counts
}

impl Measured {
    /// One round's engine work, µs (means): a create, three stages, the archive moves of
    /// every probe size, a removal.
    pub fn round_us(&self) -> f64 {
        let archive = if self.archive.is_empty() {
            0.0
        } else {
            self.archive.iter().map(|a| a.1 as f64).sum::<f64>() / self.archive.len() as f64
                * PROBE_SIZES.len() as f64
        };
        self.create.mean_us() as f64
            + 3.0 * self.stage.mean_us() as f64
            + self.remove.mean_us() as f64
            + archive
    }

    /// The archive copy rate, bytes per second (a copy in and a copy out per byte).
    pub fn archive_bytes_per_s(&self) -> u64 {
        let (_, per_byte) = fit(&self.archive);
        rate(per_byte)
    }

    /// One archive copy's fixed cost, µs (half the fitted cost of a copy in and out).
    pub fn archive_latency_us(&self) -> u64 {
        let (latency, _) = fit(&self.archive);
        (latency.max(0.0) / 2.0).round() as u64
    }
}

fn rate(us_per_byte: f64) -> u64 {
    if us_per_byte > 0.0 { (1e6 / us_per_byte).round() as u64 } else { u64::MAX / 2 }
}

/// Least squares of `us = a + b × bytes`: (a, b).
pub fn fit(samples: &[(u64, u64)]) -> (f64, f64) {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return (samples.first().map_or(0.0, |s| s.1 as f64), 0.0);
    }
    let mx = samples.iter().map(|s| s.0 as f64).sum::<f64>() / n;
    let my = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let sxy: f64 = samples.iter().map(|s| (s.0 as f64 - mx) * (s.1 as f64 - my)).sum();
    let sxx: f64 = samples.iter().map(|s| (s.0 as f64 - mx).powi(2)).sum();
    let b = if sxx > 0.0 { (sxy / sxx).max(0.0) } else { 0.0 };
    (my - b * mx, b)
}

/// Runs `rounds` container rounds at each of `lane_counts` (side by side, on a volume of its
/// own), and the S3 probe when `s3` is given (objects under `prefix`, overwritten in place: a
/// probe leaves one object per size). Everything created carries the port's run label; the
/// caller sweeps.
pub async fn probe(
    docker: &DockerPort,
    s3: Option<(&S3Port, &str)>,
    rounds: u32,
    lane_counts: &[u32],
) -> Result<Probe, LiveError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| LiveError::Docker(format!("{what}: {e}"));
    let volume = format!("fleetsim-{}-calibrate", docker.run_id());
    docker.create_volume(&volume).await.map_err(|e| fail("creating the probe volume", &e))?;
    // A warm-up round, not counted: the first container of an image is slower.
    round(docker, &volume, 0, 0, &mut Measured::empty()).await?;
    let mut engine = Vec::new();
    let mut next_round = 1;
    for &lanes in lane_counts {
        let lanes = lanes.max(1);
        let mut m = Measured::empty();
        for _ in 0..rounds.div_ceil(lanes) {
            let mut lanes_m: Vec<Measured> = (0..lanes).map(|_| Measured::empty()).collect();
            let futures = lanes_m
                .iter_mut()
                .enumerate()
                .map(|(l, lm)| round(docker, &volume, next_round, l as u32, lm));
            for result in futures_util::future::join_all(futures).await {
                result?;
            }
            next_round += 1;
            for lm in lanes_m {
                m.merge(lm);
            }
        }
        engine.push((lanes, m));
    }
    let mut s3_samples = Vec::new();
    if let Some((s3, prefix)) = s3 {
        for _ in 0..3 {
            for &size in &PROBE_SIZES {
                let name = format!("{prefix}/calibrate-{size}");
                let data = Bytes::from(vec![7u8; size as usize]);
                let t = Stopwatch::start();
                s3.put(&name, data).await.map_err(|e| LiveError::S3(format!("PUT {name}: {e}")))?;
                s3_samples.push((size, t.micros()));
                let t = Stopwatch::start();
                s3.get(&name).await.map_err(|e| LiveError::S3(format!("GET {name}: {e}")))?;
                s3_samples.push((size, t.micros()));
            }
        }
    }
    let _ = docker.remove_volume(&volume).await;
    Ok(Probe { engine, s3: s3_samples })
}

impl Measured {
    fn empty() -> Measured {
        Measured {
            create: Latency::default(),
            stage: Latency::default(),
            remove: Latency::default(),
            archive: Vec::new(),
        }
    }

    fn merge(&mut self, o: Measured) {
        self.create.add(&o.create);
        self.stage.add(&o.stage);
        self.remove.add(&o.remove);
        self.archive.extend(o.archive);
    }
}

/// One job's worth of engine work, timed into `m`.
async fn round(
    docker: &DockerPort,
    volume: &str,
    r: u32,
    lane: u32,
    m: &mut Measured,
) -> Result<(), LiveError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| LiveError::Docker(format!("{what}: {e}"));
    let name = format!("fleetsim-{}-calibrate-{r}-{lane}", docker.run_id());
    let create_us =
        docker.create_stage_container(&name, volume).await.map_err(|e| fail("creating", &e))?;
    m.create.record_us(create_us);
    for _ in 0..3 {
        let t = Stopwatch::start();
        let exit = docker.run_stage(&name, "true").await.map_err(|e| fail("a stage", &e))?;
        if !exit.ok() {
            return Err(LiveError::Docker(format!(
                "the probe stage on {name} exited {:?}",
                exit.code
            )));
        }
        m.stage.record_us(t.micros());
    }
    for &size in &PROBE_SIZES {
        let path = format!("probe/l{lane}/data.bin");
        let tar = archive::single_file_tar(&path, &vec![3u8; size as usize])
            .map_err(|e| fail("building the probe archive", &e))?;
        let t = Stopwatch::start();
        docker.upload(&name, VOLUME_MOUNT, tar).await.map_err(|e| fail("copying in", &e))?;
        docker
            .download(&name, &format!("{VOLUME_MOUNT}/{path}"))
            .await
            .map_err(|e| fail("copying out", &e))?;
        m.archive.push((size, t.micros()));
    }
    let t = Stopwatch::start();
    docker.remove(&name).await;
    m.remove.record_us(t.micros());
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_latency_and_rate() {
        // 2 ms + 1 µs per 100 bytes.
        let s: Vec<(u64, u64)> =
            [0u64, 100_000, 1_000_000].iter().map(|&b| (b, 2_000 + b / 100)).collect();
        let (a, b) = fit(&s);
        assert!((a - 2_000.0).abs() < 1e-6 && (b - 0.01).abs() < 1e-12, "{a} {b}");
        assert_eq!(rate(b), 100_000_000);
    }

    #[test]
    fn the_probe_runs_alone_then_doubling_up_to_the_lanes_asked_for() {
        assert_eq!(lane_counts(1), vec![1]);
        assert_eq!(lane_counts(2), vec![1, 2]);
        assert_eq!(lane_counts(4), vec![1, 2, 4]);
        assert_eq!(lane_counts(6), vec![1, 2, 4, 6]);
        assert_eq!(lane_counts(0), vec![1]);
    }

    /// Rounds of 1 ms per stage alone, 1.5 ms with two lanes, 2.5 ms with four: each other
    /// round beside one adds half its time alone.
    #[test]
    fn the_contention_is_the_slowdown_per_other_lane() {
        let at = |stage_us: u64| {
            let mut m = Measured::empty();
            m.stage.record_us(stage_us);
            m
        };
        let probe = |engine| Probe { engine, s3: Vec::new() };
        let p = probe(vec![(1, at(1_000)), (2, at(1_500)), (4, at(2_500))]);
        // The histograms keep three significant digits.
        assert!((p.contention() - 0.5).abs() < 1e-3, "{}", p.contention());
        assert_eq!(probe(vec![(1, at(1_000))]).contention(), 0.0, "one lane: none measured");
        let faster = probe(vec![(1, at(1_000)), (2, at(900))]);
        assert_eq!(faster.contention(), 0.0, "never below 0");
    }
}
