//! `[calibration]`: what the Docker engine and the S3 server at hand really take, measured by
//! `sim live calibrate` and read by `sim run`. Without it the container steps take no time and
//! the cache transfers use `[cache]`'s values (or their defaults).
//!
//! The measured values are wall-clock times. A live run at `--speed s` turns each wall
//! second into `s` seconds of run time, so a simulation meant to predict that live run sets
//! `speed = s` here: container costs and request latencies are multiplied by it, bandwidths
//! divided by it. A simulation of the real fleet keeps `speed = 1`.

use std::path::{Path, PathBuf};

use fleetsim_core::cache::Transfer;
use fleetsim_core::containers::ContainerCosts;
use serde::Deserialize;
use toml::Spanned;

use crate::input_error::InputError;

/// `[calibration]` as serde reads it: the measured values inline, or `file` naming a file
/// that holds such a section (what `sim live calibrate --out` writes).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCalibration {
    /// A file (relative to the scenario) holding a `[calibration]` section.
    pub file: Option<Spanned<String>>,
    /// The live `--speed` the simulation should predict (default 1).
    pub speed: Option<Spanned<f64>>,
    /// `createContainer`: create and inspect, e.g. `"40ms"`.
    pub container_create: Option<Spanned<String>>,
    /// One stage on a created container: attach, start, an empty script, wait.
    pub container_stage: Option<Spanned<String>>,
    /// Removing a job's containers.
    pub container_remove: Option<Spanned<String>>,
    /// S3 request latency (a GET or PUT of an empty object).
    pub s3_latency: Option<Spanned<String>>,
    /// S3 throughput per transfer, e.g. `"150MB/s"`.
    pub s3_bandwidth: Option<Spanned<String>>,
    /// Moving an archive into or out of a job's container (extracting and archiving).
    pub archive_bandwidth: Option<Spanned<String>>,
    /// The fixed cost of one such move.
    pub archive_latency: Option<Spanned<String>>,
    /// How much longer an engine operation takes per other job's container work beside it,
    /// as a fraction of its cost alone (the container and archive costs above are then an
    /// operation's cost alone). Optional: 0, the costs as given whatever the overlap.
    pub container_contention: Option<Spanned<f64>>,
    /// Whether every container of the run goes to the one engine measured (live mode), not
    /// one engine per autoscaled machine. Optional: false.
    pub shared_engine: Option<bool>,
    /// Where and when it was measured (free text, written by `sim live calibrate`).
    pub measured: Option<String>,
}

/// The file `file = …` names: a `[calibration]` section and nothing else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalibrationFile {
    calibration: RawCalibration,
}

/// A validated calibration, in wall-clock units as measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// The live speed the simulation predicts.
    pub speed: f64,
    /// Container costs, µs of wall time.
    pub create_us: u64,
    /// One stage, µs.
    pub stage_us: u64,
    /// Removal, µs.
    pub remove_us: u64,
    /// S3 request latency, µs.
    pub s3_latency_us: u64,
    /// S3 bytes per wall second.
    pub s3_bytes_per_s: u64,
    /// Archive copy bytes per wall second.
    pub archive_bytes_per_s: u64,
    /// One archive copy's fixed cost, µs.
    pub archive_latency_us: u64,
    /// The engine's contention: an operation's extra cost per other job's container work
    /// beside it, as a fraction of its cost alone.
    pub contention: f64,
    /// Whether every container of the run goes to one engine.
    pub shared_engine: bool,
    /// Where and when it was measured.
    pub measured: String,
    /// The file it was read from, if not inline.
    pub file: Option<PathBuf>,
}

impl Calibration {
    /// The container costs in ms of run time at [`Calibration::speed`].
    pub fn container_costs(&self) -> ContainerCosts {
        let ms = |us: u64| (us as f64 * self.speed / 1000.0).round() as u64;
        ContainerCosts {
            create_ms: ms(self.create_us),
            stage_ms: ms(self.stage_us),
            remove_ms: ms(self.remove_us),
            contention_permille: (self.contention * 1000.0).round() as u32,
            shared_engine: self.shared_engine,
        }
    }

    /// `t` with the cache server and local archive values replaced by the measured ones, in
    /// run time at [`Calibration::speed`].
    pub fn transfer(&self, t: Transfer) -> Transfer {
        let rate = |b: u64| ((b as f64 / self.speed).round() as u64).max(1);
        Transfer {
            remote_bytes_per_s: rate(self.s3_bytes_per_s),
            remote_latency_ms: (self.s3_latency_us as f64 * self.speed / 1000.0).round() as u64,
            local_bytes_per_s: rate(self.archive_bytes_per_s),
            local_latency_ms: (self.archive_latency_us as f64 * self.speed / 1000.0).round() as u64,
            ..t
        }
    }

    /// The section as `sim live calibrate` writes it (values round-trip through
    /// [`calibration_setup`]).
    pub fn to_toml(&self) -> String {
        let d = |us: u64| format!("\"{}us\"", us.max(1));
        let r = |b: u64| format!("\"{}B/s\"", b.max(1));
        format!(
            "[calibration]\n\
             measured = {measured:?}\n\
             # The live --speed a simulation with this section predicts; 1 = the real fleet.\n\
             speed = {speed:?}\n\
             container_create = {create}\n\
             container_stage = {stage}\n\
             container_remove = {remove}\n\
             s3_latency = {lat}\n\
             s3_bandwidth = {s3}\n\
             archive_bandwidth = {archive}\n\
             archive_latency = {archive_lat}\n\
             # Each other job's container work beside an operation adds this share of its\n\
             # cost alone (the costs above); fitted from probes at several lanes.\n\
             container_contention = {contention:?}\n\
             # Every container on the one engine measured (live mode), not one per machine.\n\
             shared_engine = {shared}\n",
            measured = self.measured,
            speed = self.speed,
            create = d(self.create_us),
            stage = d(self.stage_us),
            remove = d(self.remove_us),
            lat = d(self.s3_latency_us),
            s3 = r(self.s3_bytes_per_s),
            archive = r(self.archive_bytes_per_s),
            archive_lat = d(self.archive_latency_us),
            contention = self.contention,
            shared = self.shared_engine,
        )
    }
}

/// Validates `[calibration]` (reading the file it names); `None` when the section is absent.
pub fn calibration_setup(
    raw: &RawCalibration,
    dir: &Path,
    path: &Path,
    text: &str,
) -> Result<Option<Calibration>, InputError> {
    let Some(file) = &raw.file else {
        return inline(raw, path, text, None);
    };
    let err = |msg: String| {
        InputError::file(path, msg).at_offset(text, file.span().start).key("calibration.file")
    };
    let others = raw.speed.is_some()
        || raw.container_create.is_some()
        || raw.container_stage.is_some()
        || raw.container_remove.is_some()
        || raw.s3_latency.is_some()
        || raw.s3_bandwidth.is_some()
        || raw.archive_bandwidth.is_some()
        || raw.archive_latency.is_some()
        || raw.container_contention.is_some()
        || raw.shared_engine.is_some();
    if others {
        return Err(
            err("`file` and measured values in one [calibration] section: give one".into()),
        );
    }
    let f = dir.join(file.get_ref());
    let ftext = std::fs::read_to_string(&f)
        .map_err(|e| err(format!("cannot read the calibration file {}: {e}", f.display())))?;
    let parsed: CalibrationFile = toml::from_str(&ftext).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        InputError::file(&f, e.message().to_owned()).at_offset(&ftext, at)
    })?;
    if parsed.calibration.file.is_some() {
        return Err(err(format!("{}: a calibration file cannot name another", f.display())));
    }
    inline(&parsed.calibration, &f, &ftext, Some(f.clone()))
}

fn inline(
    raw: &RawCalibration,
    path: &Path,
    text: &str,
    file: Option<PathBuf>,
) -> Result<Option<Calibration>, InputError> {
    let err = |span: std::ops::Range<usize>, key: &str, msg: String| {
        InputError::file(path, msg).at_offset(text, span.start).key(key)
    };
    let micros = |v: &Option<Spanned<String>>, key: &str| -> Result<Option<u64>, InputError> {
        let Some(v) = v else { return Ok(None) };
        let t = v.get_ref().trim();
        match parse_micros(t) {
            Some(us) if us <= 3_600_000_000 => Ok(Some(us)),
            _ => Err(err(
                v.span(),
                key,
                format!(
                    "expected a duration such as \"40ms\" or \"850us\" (at most 1h), found {t:?}"
                ),
            )),
        }
    };
    let rate = |v: &Option<Spanned<String>>, key: &str| -> Result<Option<u64>, InputError> {
        let Some(v) = v else { return Ok(None) };
        let t = v.get_ref().trim();
        match t.strip_suffix("/s").map(crate::trace::parse_size_bytes) {
            Some(Ok(b)) if b > 0 => Ok(Some(b)),
            _ => {
                Err(err(v.span(), key, format!("expected a rate such as \"100MB/s\", found {t:?}")))
            }
        }
    };
    let values = [
        (
            "calibration.container_create",
            micros(&raw.container_create, "calibration.container_create")?,
        ),
        (
            "calibration.container_stage",
            micros(&raw.container_stage, "calibration.container_stage")?,
        ),
        (
            "calibration.container_remove",
            micros(&raw.container_remove, "calibration.container_remove")?,
        ),
        ("calibration.s3_latency", micros(&raw.s3_latency, "calibration.s3_latency")?),
        ("calibration.s3_bandwidth", rate(&raw.s3_bandwidth, "calibration.s3_bandwidth")?),
        (
            "calibration.archive_bandwidth",
            rate(&raw.archive_bandwidth, "calibration.archive_bandwidth")?,
        ),
        (
            "calibration.archive_latency",
            micros(&raw.archive_latency, "calibration.archive_latency")?,
        ),
    ];
    let speed = match &raw.speed {
        None => 1.0,
        Some(s) if s.get_ref().is_finite() && *s.get_ref() > 0.0 && *s.get_ref() <= 1000.0 => {
            *s.get_ref()
        }
        Some(s) => {
            return Err(err(
                s.span(),
                "calibration.speed",
                "expected a speed > 0 and ≤ 1000".into(),
            ));
        }
    };
    let contention = match &raw.container_contention {
        None => 0.0,
        Some(c) if c.get_ref().is_finite() && (0.0..=20.0).contains(c.get_ref()) => *c.get_ref(),
        Some(c) => {
            return Err(err(
                c.span(),
                "calibration.container_contention",
                "expected a fraction ≥ 0 and ≤ 20 (0.5: each other job's container work beside an operation makes it 50 % slower)".into(),
            ));
        }
    };
    let optional = raw.container_contention.is_some() || raw.shared_engine.is_some();
    if values.iter().all(|(_, v)| v.is_none()) && raw.speed.is_none() && !optional {
        return Ok(None);
    }
    if let Some((key, _)) = values.iter().find(|(_, v)| v.is_none()) {
        return Err(InputError::file(
            path,
            format!("[calibration] lacks `{}`: a calibration gives every measured value (`sim live calibrate` writes them all)", &key["calibration.".len()..]),
        )
        .key(*key));
    }
    let v = |i: usize| values[i].1.expect("checked above");
    Ok(Some(Calibration {
        speed,
        create_us: v(0),
        stage_us: v(1),
        remove_us: v(2),
        s3_latency_us: v(3),
        s3_bytes_per_s: v(4),
        archive_bytes_per_s: v(5),
        archive_latency_us: v(6),
        contention,
        shared_engine: raw.shared_engine.unwrap_or(false),
        measured: raw.measured.clone().unwrap_or_default(),
        file,
    }))
}

/// `"850us"`, `"40ms"`, `"1.5s"` in µs.
fn parse_micros(t: &str) -> Option<u64> {
    let (num, scale) = if let Some(n) = t.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("µs") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    let x: f64 = num.trim().parse().ok()?;
    (x.is_finite() && x >= 0.0).then(|| (x * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<Calibration>, InputError> {
        #[derive(Deserialize)]
        struct S {
            calibration: RawCalibration,
        }
        let s: S = toml::from_str(text).unwrap();
        calibration_setup(&s.calibration, Path::new("."), Path::new("s.toml"), text)
    }

    fn sample() -> Calibration {
        Calibration {
            speed: 4.0,
            create_us: 41_250,
            stage_us: 310_000,
            remove_us: 52_000,
            s3_latency_us: 3_100,
            s3_bytes_per_s: 150_000_000,
            archive_bytes_per_s: 60_000_000,
            archive_latency_us: 20_400,
            contention: 0.48,
            shared_engine: true,
            measured: "here".into(),
            file: None,
        }
    }

    #[test]
    fn what_calibrate_writes_reads_back() {
        let c = sample();
        assert_eq!(parse(&c.to_toml()).unwrap(), Some(c));
    }

    #[test]
    fn speed_scales_costs_into_run_time() {
        let c = sample();
        let k = c.container_costs();
        assert_eq!((k.create_ms, k.stage_ms, k.remove_ms), (165, 1240, 208));
        assert_eq!((k.contention_permille, k.shared_engine), (480, true), "not scaled by speed");
        let t = c.transfer(Transfer::default());
        assert_eq!(t.remote_latency_ms, 12);
        assert_eq!(t.remote_bytes_per_s, 37_500_000);
        assert_eq!(t.local_bytes_per_s, 15_000_000);
        assert_eq!(t.local_latency_ms, 82);
        assert_eq!(t.registry_latency_ms, Transfer::default().registry_latency_ms);
    }

    #[test]
    fn a_partial_or_bad_section_is_a_clear_error() {
        let e = parse("[calibration]\ncontainer_create = \"40ms\"\n").unwrap_err().to_string();
        assert!(e.contains("lacks `container_stage`"), "{e}");
        let e = parse("[calibration]\ncontainer_create = \"fast\"\n").unwrap_err().to_string();
        assert!(e.contains("s.toml:2:") && e.contains("calibration.container_create"), "{e}");
        let e = parse("[calibration]\nspeed = 0\n").unwrap_err().to_string();
        assert!(e.contains("calibration.speed"), "{e}");
        assert_eq!(parse("[calibration]\n").unwrap(), None);
        let e = parse("[calibration]\ncontainer_contention = -1.0\n").unwrap_err().to_string();
        assert!(e.contains("calibration.container_contention"), "{e}");
    }

    #[test]
    fn a_calibration_written_before_contention_reads_as_none() {
        let old: String = sample()
            .to_toml()
            .lines()
            .filter(|l| {
                !l.contains("contention") && !l.contains("shared_engine") && !l.starts_with("# ")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let c = parse(&old).unwrap().unwrap();
        assert_eq!((c.contention, c.shared_engine), (0.0, false));
        assert_eq!(c.container_costs().contention_permille, 0);
    }
}
