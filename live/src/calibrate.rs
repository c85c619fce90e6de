//! A short fixed probe of the Docker engine and the S3 server at hand: what one container
//! operation, one archive move and one S3 request really take, so that `sim run` can give the
//! docker executor's steps their real cost (`sim live calibrate`).
//!
//! Each round does what one job does to the engine ([`fleetsim_core::containers`]): a
//! container created (a shell with stdin open, as the executor's helper and build containers
//! are), three stages run on it, an archive of each probe size copied in and read back
//! (Docker's archive API, as live mode moves caches), the container removed. The S3 part PUTs
//! and GETs objects of each size and fits `time = latency + size / bandwidth` by least
//! squares. `lanes` rounds run side by side, as `concurrent` jobs would.

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
    /// S3 transfers: (bytes, µs) of PUTs and GETs.
    pub s3: Vec<(u64, u64)>,
}

impl Measured {
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

    /// S3 request latency (µs) and throughput (bytes per second).
    pub fn s3_latency_and_rate(&self) -> (u64, u64) {
        let (latency, per_byte) = fit(&self.s3);
        (latency.max(0.0).round() as u64, rate(per_byte))
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

/// Runs `rounds` container rounds in `lanes` parallel lanes on a volume of its own, and the
/// S3 probe when `s3` is given (objects under `prefix`, overwritten in place: a probe leaves
/// one object per size). Everything created carries the port's run label; the caller sweeps.
pub async fn probe(
    docker: &DockerPort,
    s3: Option<(&S3Port, &str)>,
    rounds: u32,
    lanes: u32,
) -> Result<Measured, LiveError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| LiveError::Docker(format!("{what}: {e}"));
    let volume = format!("fleetsim-{}-calibrate", docker.run_id());
    docker.create_volume(&volume).await.map_err(|e| fail("creating the probe volume", &e))?;
    let mut m = Measured {
        create: Latency::default(),
        stage: Latency::default(),
        remove: Latency::default(),
        archive: Vec::new(),
        s3: Vec::new(),
    };
    // A warm-up round, not counted: the first container of an image is slower.
    round(docker, &volume, 0, 0, &mut m.empty()).await?;
    for r in 0..rounds.div_ceil(lanes.max(1)) {
        let mut lanes_m: Vec<Measured> = (0..lanes.max(1)).map(|_| m.empty()).collect();
        let futures = lanes_m
            .iter_mut()
            .enumerate()
            .map(|(l, lm)| round(docker, &volume, r + 1, l as u32, lm));
        for result in futures_util::future::join_all(futures).await {
            result?;
        }
        for lm in lanes_m {
            m.merge(lm);
        }
    }
    if let Some((s3, prefix)) = s3 {
        for _ in 0..3 {
            for &size in &PROBE_SIZES {
                let name = format!("{prefix}/calibrate-{size}");
                let data = Bytes::from(vec![7u8; size as usize]);
                let t = Stopwatch::start();
                s3.put(&name, data).await.map_err(|e| LiveError::S3(format!("PUT {name}: {e}")))?;
                m.s3.push((size, t.micros()));
                let t = Stopwatch::start();
                s3.get(&name).await.map_err(|e| LiveError::S3(format!("GET {name}: {e}")))?;
                m.s3.push((size, t.micros()));
            }
        }
    }
    let _ = docker.remove_volume(&volume).await;
    Ok(m)
}

impl Measured {
    fn empty(&self) -> Measured {
        Measured {
            create: Latency::default(),
            stage: Latency::default(),
            remove: Latency::default(),
            archive: Vec::new(),
            s3: Vec::new(),
        }
    }

    fn merge(&mut self, o: Measured) {
        self.create.add(&o.create);
        self.stage.add(&o.stage);
        self.remove.add(&o.remove);
        self.archive.extend(o.archive);
        self.s3.extend(o.s3);
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
}
