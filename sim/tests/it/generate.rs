//! The workload generator: byte-identical output per seed, arrival statistics against the
//! model's rates, a scenario that runs on generated jobs, and bad models (exit 2).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use fleetsim::seeds::SeedTree;
use fleetsim::trace::{TraceReader, TraceRecord};
use fleetsim::workload::generate::{GenModel, Generator, RawGenerate};
use jiff::Timestamp;
use jiff::civil::Weekday;
use sha2::{Digest, Sha256};

const SIM: &str = env!("CARGO_BIN_EXE_sim");

fn sim(dir: &Path, args: &[&str]) -> Output {
    Command::new(SIM).args(args).current_dir(dir).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn same_seed_gives_the_same_bytes_and_a_scenario_runs_those_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (out, seed) in [("a.csv", "9"), ("b.csv", "9"), ("c.csv", "10")] {
        let o = sim(d, &["trace", "gen", "--out", out, "--seed", seed, "--days", "3"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let read = |name: &str| std::fs::read(d.join(name)).unwrap();
    assert_eq!(read("a.csv"), read("b.csv"), "same seed, same bytes");
    assert_ne!(read("a.csv"), read("c.csv"), "another seed, other jobs");
    assert!(read("a.csv").len() > 10_000);

    // A scenario generating the same model with the same seed runs exactly those bytes.
    std::fs::write(
        d.join("config.toml"),
        "concurrent = 4\n[[runners]]\n  name = \"r\"\n  url = \"http://gitlab.example\"\n  token = \"t\"\n  executor = \"docker\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("s.toml"),
        "[scenario]\nname = \"g\"\nseed = 9\n[runner]\nconfig = \"config.toml\"\n[workload]\n[workload.generate]\ndays = 3\n",
    )
    .unwrap();
    let o = sim(d, &["run", "s.toml", "--out", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/summary.json")).unwrap()).unwrap();
    let sha: String = Sha256::digest(read("a.csv")).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(summary["trace_sha256"], sha.as_str());
    let rows = String::from_utf8(read("a.csv")).unwrap().lines().count() as u64 - 1;
    assert_eq!(summary["jobs"]["total"], rows);
    assert_eq!(summary["jobs"]["finished"], rows);
    // The same run on the written file gives the same jobs.csv.
    std::fs::write(
        d.join("f.toml"),
        "[scenario]\nname = \"f\"\nseed = 9\n[runner]\nconfig = \"config.toml\"\n[workload]\ntrace = \"a.csv\"\n",
    )
    .unwrap();
    let o = sim(d, &["run", "f.toml", "--out", "out-f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(d.join("out/jobs.csv")).unwrap(),
        std::fs::read(d.join("out-f/jobs.csv")).unwrap()
    );
}

/// The local calendar category of an instant, decided here independently of the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Office,
    OffHours,
    Weekend,
    Release,
}

fn category(at: Timestamp, zone: &jiff::tz::TimeZone) -> Category {
    let local = at.to_zoned(zone.clone());
    let hour = local.hour();
    match local.weekday() {
        Weekday::Saturday | Weekday::Sunday => Category::Weekend,
        Weekday::Thursday if (14..17).contains(&hour) => Category::Release,
        _ if (9..18).contains(&hour) => Category::Office,
        _ => Category::OffHours,
    }
}

#[test]
fn arrivals_per_hour_match_the_model_rates_across_a_dst_change() {
    // Four weeks in Berlin from Monday 2026-03-09 00:00 local; Europe moves to summer time
    // on 2026-03-29, inside the span. 40 pushes per office hour; factors 0.05 off hours, 0.1
    // weekends, 3 in the Thursday 14-17 release window (which is inside office hours).
    let raw = RawGenerate {
        days: Some(28.0),
        timezone: Some("Europe/Berlin".into()),
        pushes_per_hour: Some(40.0),
        off_hours_factor: Some(0.05),
        weekend_factor: Some(0.1),
        release_factor: Some(3.0),
        ..RawGenerate::default()
    };
    let model = GenModel::from_raw(&raw).unwrap();
    let start: Timestamp = "2026-03-09T00:00:00+01:00".parse().unwrap();
    let zone = fleetsim::periods::load_zone("Europe/Berlin").unwrap();
    let mut text = String::new();
    Generator::new(model, SeedTree::new(2024), start).read_to_string(&mut text).unwrap();

    // Pipelines by category, from their first row.
    let mut counts = [0u64; 4];
    let mut reader = TraceReader::from_reader(text.as_bytes(), "gen").unwrap();
    let mut r = TraceRecord::new();
    let mut last_pipeline = None;
    while reader.read_next(&mut r).unwrap() {
        if r.pipeline_id != last_pipeline {
            last_pipeline = r.pipeline_id;
            let at = start + jiff::SignedDuration::from_millis(r.created_at_ms as i64);
            counts[category(at, &zone) as usize] += 1;
        }
    }
    // Exposure: hours of each category over the span, minute by minute.
    let mut hours = [0f64; 4];
    for minute in 0..28 * 24 * 60 {
        let at = start + jiff::SignedDuration::from_secs(minute * 60);
        hours[category(at, &zone) as usize] += 1.0 / 60.0;
    }
    let rates = [40.0, 2.0, 4.0, 120.0];
    for (k, name) in ["office", "off hours", "weekend", "release"].iter().enumerate() {
        let expected = rates[k] * hours[k];
        let observed = counts[k] as f64;
        let sd = expected.sqrt();
        // 4.5 standard deviations: a wrong factor (even 10 % off in office hours, where
        // sd ≈ 1.2 %) fails, a correct model fails about once in 150 000 runs per category.
        assert!(
            (observed - expected).abs() <= 4.5 * sd,
            "{name}: {observed} pipelines over {:.2} h, expected {expected:.0} ± {sd:.0}",
            hours[k]
        );
        assert!(expected > 400.0, "{name}: too few to test ({expected})");
    }
}

#[test]
fn max_jobs_caps_the_trace_at_a_pipeline_boundary() {
    let raw = RawGenerate { days: Some(30.0), max_jobs: Some(500), ..RawGenerate::default() };
    let model = GenModel::from_raw(&raw).unwrap();
    let start: Timestamp = fleetsim::scenario::DEFAULT_START.parse().unwrap();
    let mut text = String::new();
    let mut g = Generator::new(model, SeedTree::new(1), start);
    g.read_to_string(&mut text).unwrap();
    let rows = text.lines().count() as u64 - 1;
    assert_eq!(rows, g.jobs());
    assert!((495..=500).contains(&rows), "{rows} rows: at most 500, stopped before a pipeline");
}

#[test]
fn bad_models_exit_2_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("m.toml"), "days = 2\npushes_per_hour = \"many\"\n").unwrap();
    let o = sim(d, &["trace", "gen", "--model", "m.toml", "--out", "x.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("m.toml:2"), "{}", stderr(&o));

    std::fs::write(d.join("m.toml"), "[[projects]]\nname = \"p\"\n[[projects.jobs]]\nname = \"a\"\nstage = \"s\"\nmedian = 10\nneeds = [\"b\"]\n").unwrap();
    let o = sim(d, &["trace", "gen", "--model", "m.toml", "--out", "x.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("projects[0].jobs[0].needs"), "{}", stderr(&o));
    assert!(stderr(&o).contains("m.toml:7:"), "the line of `needs`: {}", stderr(&o));

    std::fs::write(
        d.join("config.toml"),
        "concurrent = 1\n[[runners]]\n  name = \"r\"\n  url = \"http://g\"\n  token = \"t\"\n  executor = \"docker\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("s.toml"),
        "[scenario]\nname = \"g\"\n[runner]\nconfig = \"config.toml\"\n[workload]\n[workload.generate]\ntimezone = \"Mars/Base\"\n",
    )
    .unwrap();
    let o = sim(d, &["run", "s.toml", "--out", "out"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    // The line of the key itself, not of the table.
    assert!(err.contains("s.toml:7:12: `workload.generate.timezone`"), "{err}");
    assert!(err.contains("Mars/Base"), "{err}");
}
