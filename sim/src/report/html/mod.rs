//! `report.html`: one self-contained page per run (no network: inline CSS and inline SVG
//! charts drawn here with `plotters`), from what the run wrote.
//!
//! - From `jobs.csv`: two HDR histograms (pending and queued → script start), so the page
//!   costs the same memory for a thousand jobs or ten million; the CDF is drawn from the
//!   histograms' buckets.
//! - From `timeline.csv`: at most [`MAX_POINTS`] buckets per series, whole numbers of
//!   minutes that double in width (neighbours merged, averages averaged and peaks kept)
//!   whenever there would be more.
//! - `machines.csv` (optional: older runs have none) gives the machine counts by removal
//!   reason.
//!
//! `sim run` gathers the first two while it writes the files ([`write_run_report_streamed`]);
//! [`write_run_report`] reads them back, for folders written earlier (the accumulators are
//! shared, `crate::report::page_stats`, and a test checks that both pages are the same).
//!
//! The summary is read through its JSON form, so the page renders whatever fields it has
//! and shows "—" for the ones it does not. Nothing here reads a clock or iterates a hash map:
//! the same report folder gives a byte-identical page.
//!
//! This file holds the entry points and the CSV readers; `run_page.rs` draws the page and
//! `kit.rs` holds what the report pages share (styles, formats, the chart helpers).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use serde_json::Value;

pub use crate::report::page_stats::MAX_POINTS;
use crate::report::page_stats::{JobStats, TimelineStats};
use crate::report::summary::Summary;

pub mod kit;
mod run_page;

use run_page::render_run_page;

/// Writes `out_dir/report.html` from `summary` and the `jobs.csv`, `timeline.csv` and (when
/// present) `machines.csv` that the run wrote in `out_dir`.
///
/// Errors name the file: a missing or unreadable CSV, a missing column, a value that is not
/// a number, or a failure to write the page.
pub fn write_run_report(out_dir: &Path, summary: &Summary) -> io::Result<()> {
    let value = serde_json::to_value(summary)
        .map_err(|e| io::Error::other(format!("encoding the summary: {e}")))?;
    write_run_report_from_value(out_dir, &value)
}

/// [`write_run_report`] from the summary's JSON form (`summary.json` as a
/// `serde_json::Value`), for report folders written by other versions.
pub fn write_run_report_from_value(out_dir: &Path, summary: &Value) -> io::Result<()> {
    // The two large files are read at once, one on another thread; errors come in the same
    // order as reading one after the other.
    let (jobs, timeline) = std::thread::scope(|scope| {
        let jobs = scope.spawn(|| read_jobs(&out_dir.join("jobs.csv")));
        let timeline = read_timeline(&out_dir.join("timeline.csv"));
        (jobs.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), timeline)
    });
    let (jobs, timeline) = (jobs?, timeline?);
    write_page(out_dir, summary, &jobs, &timeline)
}

/// [`write_run_report`] from what the run gathered while it wrote `jobs.csv` and
/// `timeline.csv` (the same page, without reading them back).
pub fn write_run_report_streamed(
    out_dir: &Path,
    summary: &Summary,
    jobs: &JobStats,
    timeline: &TimelineStats,
) -> io::Result<()> {
    let value = serde_json::to_value(summary)
        .map_err(|e| io::Error::other(format!("encoding the summary: {e}")))?;
    write_page(out_dir, &value, jobs, timeline)
}

/// Reads `machines.csv` (when present) and writes the page.
fn write_page(
    out_dir: &Path,
    summary: &Value,
    jobs: &JobStats,
    timeline: &TimelineStats,
) -> io::Result<()> {
    let machines = read_machines(&out_dir.join("machines.csv"))?;
    let page = render_run_page(summary, jobs, timeline, &machines)?;
    let path = out_dir.join("report.html");
    std::fs::write(&path, page).map_err(|e| named(&path, e))
}

// ---------------------------------------------------------------------------------------
// Reading the CSV files
// ---------------------------------------------------------------------------------------

/// What the page needs from `machines.csv`.
#[derive(Debug, Default)]
struct MachineStats {
    count: u64,
    by_reason: BTreeMap<String, u64>,
    by_type: BTreeMap<String, u64>,
    busy_s: f64,
    billed_s: f64,
}

fn named(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {e}", path.display()))
}

fn named_kind(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// A streaming CSV reader with the header's column positions.
struct Columns {
    reader: csv::Reader<BufReader<File>>,
    header: csv::ByteRecord,
}

impl Columns {
    fn open(path: &Path) -> io::Result<Columns> {
        let file = File::open(path).map_err(|e| named_kind(path, e))?;
        let mut reader =
            csv::ReaderBuilder::new().has_headers(true).from_reader(BufReader::new(file));
        let header = reader.byte_headers().map_err(|e| named(path, e))?.clone();
        Ok(Columns { reader, header })
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name.as_bytes())
    }

    fn need(&self, path: &Path, name: &str) -> io::Result<usize> {
        self.find(name).ok_or_else(|| named(path, format!("no `{name}` column")))
    }
}

fn field<'r>(path: &Path, rec: &'r csv::ByteRecord, i: usize, name: &str) -> io::Result<&'r [u8]> {
    rec.get(i).ok_or_else(|| {
        let line = rec.position().map_or(0, csv::Position::line);
        named(path, format!("line {line}: no `{name}` value"))
    })
}

fn number(path: &Path, rec: &csv::ByteRecord, i: usize, name: &str) -> io::Result<f64> {
    let raw = field(path, rec, i, name)?;
    let parsed = std::str::from_utf8(raw).ok().and_then(|s| s.trim().parse::<f64>().ok());
    match parsed {
        Some(x) if x.is_finite() => Ok(x),
        _ => {
            let line = rec.position().map_or(0, csv::Position::line);
            Err(named(
                path,
                format!(
                    "line {line}: `{name}`: expected a number, found `{}`",
                    String::from_utf8_lossy(raw)
                ),
            ))
        }
    }
}

fn seconds_to_ms(s: f64) -> u64 {
    (s.max(0.0) * 1000.0).round() as u64
}

fn read_jobs(path: &Path) -> io::Result<JobStats> {
    let mut cols = Columns::open(path)?;
    let pending_i = cols.need(path, "pending_s")?;
    let to_script_i = cols.find("to_script_s");
    let failed_i = cols.find("failed");
    let mut stats = JobStats::new()?;
    let mut rec = csv::ByteRecord::new();
    while cols.reader.read_byte_record(&mut rec).map_err(|e| named(path, e))? {
        let pending = seconds_to_ms(number(path, &rec, pending_i, "pending_s")?);
        let failed = match failed_i {
            Some(i) => field(path, &rec, i, "failed")? == b"true",
            None => false,
        };
        let to_script = match (to_script_i, failed) {
            (Some(i), false) => Some(seconds_to_ms(number(path, &rec, i, "to_script_s")?)),
            _ => None,
        };
        stats.add(pending, to_script);
    }
    Ok(stats)
}

fn read_timeline(path: &Path) -> io::Result<TimelineStats> {
    let mut cols = Columns::open(path)?;
    let time_i = cols.need(path, "time_s")?;
    let avg_names = ["pending_avg", "running_avg"];
    let machine_names = [
        "machines_creating_avg",
        "machines_idle_avg",
        "machines_busy_avg",
        "machines_removing_avg",
    ];
    let peak_names = ["pending_max", "running_max"];
    let mut avg_i = Vec::new();
    for name in avg_names {
        avg_i.push((Some(cols.need(path, name)?), name));
    }
    let machine_i: Vec<_> = machine_names.iter().map(|&n| (cols.find(n), n)).collect();
    let has_machine_columns = machine_i.iter().all(|(i, _)| i.is_some());
    avg_i.extend(machine_i);
    let mut peak_i = Vec::new();
    for name in peak_names {
        peak_i.push((cols.need(path, name)?, name));
    }

    let minute_i = cols.find("minute");
    let mut stats = TimelineStats::new(has_machine_columns);
    let mut rec = csv::ByteRecord::new();
    while cols.reader.read_byte_record(&mut rec).map_err(|e| named(path, e))? {
        let minute = match minute_i {
            Some(i) => Some(number(path, &rec, i, "minute")? as u64),
            None => None,
        };
        let time_s = number(path, &rec, time_i, "time_s")?;
        let mut sums = [0.0; 6];
        for (k, &(i, name)) in avg_i.iter().enumerate() {
            if let Some(i) = i {
                sums[k] = number(path, &rec, i, name)?;
            }
        }
        let mut peaks = [0.0; 2];
        for (k, &(i, name)) in peak_i.iter().enumerate() {
            peaks[k] = number(path, &rec, i, name)?;
        }
        stats.add_row(minute, time_s, sums, peaks);
    }
    Ok(stats)
}

fn read_machines(path: &Path) -> io::Result<MachineStats> {
    let mut stats = MachineStats::default();
    if !path.exists() {
        return Ok(stats);
    }
    let mut cols = Columns::open(path)?;
    let reason_i = cols.need(path, "removal_reason")?;
    let type_i = cols.find("instance_type");
    let market_i = cols.find("market");
    let busy_i = cols.find("busy_s");
    let billed_i = cols.find("billed_s");
    let mut rec = csv::ByteRecord::new();
    while cols.reader.read_byte_record(&mut rec).map_err(|e| named(path, e))? {
        stats.count += 1;
        let reason = String::from_utf8_lossy(field(path, &rec, reason_i, "removal_reason")?);
        let reason = if reason.is_empty() { "still running at the end".into() } else { reason };
        *stats.by_reason.entry(reason.into_owned()).or_default() += 1;
        if let Some(i) = type_i {
            let mut kind =
                String::from_utf8_lossy(field(path, &rec, i, "instance_type")?).into_owned();
            if let Some(m) = market_i {
                let market = String::from_utf8_lossy(field(path, &rec, m, "market")?);
                let _ = write!(kind, " ({market})");
            }
            *stats.by_type.entry(kind).or_default() += 1;
        }
        if let Some(i) = busy_i {
            stats.busy_s += number(path, &rec, i, "busy_s")?;
        }
        if let Some(i) = billed_i {
            stats.billed_s += number(path, &rec, i, "billed_s")?;
        }
    }
    Ok(stats)
}

/// Checks that hold for any report page (`report.html`, `compare.html`, `sweep.html`): one
/// HTML document, nothing fetched from the network (no scripts, links, sources or imports),
/// at least `min_svgs` inline SVG charts, none nested. For tests; panics on the first
/// failed check.
pub fn assert_self_contained(html: &str, min_svgs: usize) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..40.min(html.len())]);
    let without_ns = html.replace("http://www.w3.org/2000/svg", "");
    assert!(!without_ns.contains("http://"), "the page references the network");
    assert!(!without_ns.contains("https://"), "the page references the network");
    for banned in ["<script", "<link", "src=", "@import", "url("] {
        assert!(!html.contains(banned), "the page has `{banned}`");
    }
    let opens = html.matches("<svg").count();
    assert!(opens >= min_svgs, "{opens} charts");
    assert_eq!(opens, html.matches("</svg>").count(), "unbalanced <svg>");
    // Every chart is closed before the next opens.
    let mut depth = 0i32;
    let mut rest = html;
    while let Some(i) = rest.find("svg") {
        let before = &rest[..i];
        if before.ends_with("</") {
            depth -= 1;
        } else if before.ends_with('<') {
            depth += 1;
        }
        assert!((0..=1).contains(&depth), "nested or stray svg");
        rest = &rest[i + 3..];
    }
    assert_eq!(depth, 0);
    assert!(html.trim_end().ends_with("</html>"));
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SUMMARY_JSON: &str = r#"{
  "scenario": "tiny <test>",
  "mode": "sim",
  "version": "0.1.0",
  "seed": 7,
  "scenario_sha256": "aa",
  "trace_sha256": "bb",
  "replay": "sim run scenarios/tiny.toml --seed 7",
  "simulated_s": 300.0,
  "jobs": { "total": 4, "finished": 4, "failed": 0, "retried": 0 },
  "pending": { "mean_s": 12.5, "p50_s": 3.0, "p90_s": 40.0, "p95_s": 43.217, "p99_s": 45.0,
    "max_s": 45.0, "share_waited": 1.0, "share_waited_for_capacity": 0.5,
    "wait_capacity_mean_s": 8.0, "wait_machine_mean_s": 3.0, "wait_poll_mean_s": 1.5 },
  "to_script": { "p50_s": 3.0, "p95_s": 50.0, "p99_s": 50.0 },
  "machines": { "max": 2, "created": 2, "creation_failed": 0, "interrupted": 0, "billed_hours": 0.1 },
  "utilization": { "mean_running": 1.2, "mean_pending": 0.4, "slots": 4, "busy_share": 0.3, "mean_run_s": 90.0 },
  "fleet": { "hosts": 1, "concurrent": 4, "runners": 1, "check_interval_s": 3.0, "pickup": "polling", "long_polling_s": 0.0 },
  "cost": { "total_usd": 0.05, "per_month_usd": 432.0, "per_job_usd": 0.0125, "machines_usd": 0.04,
    "idle_share": 0.25, "hosts_usd": 0.01, "host_price_per_hour": 0.12, "host_price_source": "given" }
}
"#;

    fn write_fake_report(dir: &Path) {
        let jobs = format!(
            "{}\n\
             1,1,r,host-0,0,1,false,0.000,0.000,3.000,3.000,60.000,3.000,0.000,2.000,1.000,0.000,3.000,57.000,hit_local,0.000,0.000,0.000,0,0\n\
             2,1,r,host-0,1,1,false,10.000,10.000,55.000,60.000,120.000,45.000,40.000,3.000,2.000,5.000,50.000,65.000,miss_never_uploaded,1.000,0.500,2.000,0,100\n\
             3,2,r,host-0,0,1,false,20.000,20.000,20.000,20.000,200.000,0.000,0.000,0.000,0.000,0.000,0.000,180.000,,0.000,0.000,0.000,0,0\n\
             4,2,r,host-0,1,1,true,30.000,30.000,32.000,32.000,90.000,2.000,0.000,0.000,2.000,0.000,2.000,58.000,hit_remote,0.000,1.000,0.000,100,0\n",
            crate::report::jobs_csv::COLUMNS.join(",")
        );
        let mut timeline = crate::report::timeline::COLUMNS.join(",");
        timeline.push('\n');
        for m in 0..5u32 {
            let _ = writeln!(
                timeline,
                "{m},{},{}.500,2,1.000,2,1,1,1,0.500,0.250,{}.000,0.000",
                m * 60,
                m % 2,
                m % 3
            );
        }
        let machines = format!(
            "{}\n\
             0,r,t2.medium,ap-northeast-2,spot,0.000,30.000,250.000,260.000,too many idle machines,2,200.000,260,0.001\n\
             1,r,t2.medium,ap-northeast-2,spot,10.000,40.000,,300.000,,2,120.000,290,0.002\n",
            crate::cloud::ec2::COLUMNS.join(",")
        );
        std::fs::write(dir.join("jobs.csv"), jobs).unwrap();
        std::fs::write(dir.join("timeline.csv"), timeline).unwrap();
        std::fs::write(dir.join("machines.csv"), machines).unwrap();
        std::fs::write(dir.join("summary.json"), SUMMARY_JSON).unwrap();
    }

    fn summary_value() -> Value {
        serde_json::from_str(SUMMARY_JSON).unwrap()
    }

    #[test]
    fn renders_a_self_contained_page() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        write_run_report_from_value(dir.path(), &summary_value()).unwrap();
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert_self_contained(&html, 5);
        assert!(html.contains("43.2 s"), "the p95 figure");
        assert!(html.contains("tiny &lt;test&gt;"), "the scenario name, escaped");
        assert!(html.contains("sim run scenarios/tiny.toml --seed 7"));
        assert!(html.contains("Machines by state"));
        assert!(html.contains("too many idle machines"));
        assert!(html.contains("still running at the end"));
        // Axis descriptions with units.
        for unit in
            ["seconds", "share of job runs", "minutes since start", "jobs", "machines", "USD"]
        {
            assert!(html.contains(unit), "axis `{unit}`");
        }
        // The cost split: busy $0.03, idle $0.01, hosts $0.01.
        assert!(html.contains("$0.03"));
    }

    #[test]
    fn the_page_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        write_run_report_from_value(dir.path(), &summary_value()).unwrap();
        let first = std::fs::read(dir.path().join("report.html")).unwrap();
        write_run_report_from_value(dir.path(), &summary_value()).unwrap();
        let second = std::fs::read(dir.path().join("report.html")).unwrap();
        assert!(first == second, "two renderings differ");
    }

    #[test]
    fn no_machines_no_machine_chart() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        std::fs::remove_file(dir.path().join("machines.csv")).unwrap();
        let mut timeline = crate::report::timeline::COLUMNS.join(",");
        timeline.push_str("\n0,0,0.000,0,1.000,1,1,1,0,0.000,0.000,0.000,0.000\n");
        std::fs::write(dir.path().join("timeline.csv"), timeline).unwrap();
        let mut s = summary_value();
        s["machines"]["created"] = 0.into();
        write_run_report_from_value(dir.path(), &s).unwrap();
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert_self_contained(&html, 4);
        assert!(!html.contains("Machines by state"));
    }

    #[test]
    fn empty_csvs_still_render() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        let header = |cols: &[&str]| format!("{}\n", cols.join(","));
        std::fs::write(dir.path().join("jobs.csv"), header(&crate::report::jobs_csv::COLUMNS))
            .unwrap();
        std::fs::write(dir.path().join("timeline.csv"), header(&crate::report::timeline::COLUMNS))
            .unwrap();
        std::fs::write(dir.path().join("machines.csv"), header(&crate::cloud::ec2::COLUMNS))
            .unwrap();
        write_run_report_from_value(dir.path(), &summary_value()).unwrap();
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert_self_contained(&html, 4);
        assert!(html.contains("no job runs in jobs.csv"));
    }

    #[test]
    fn histograms_hold_long_waits() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        let jobs = read_jobs(&dir.path().join("jobs.csv")).unwrap();
        assert_eq!(jobs.pending.len(), 4);
        assert_eq!(jobs.to_script.len(), 3, "the failed run is left out");
        let max = jobs.pending.max();
        assert!((44_950..=45_050).contains(&max), "{max}");
        assert!((49_950..=50_050).contains(&jobs.to_script.max()));
        assert_eq!(jobs.pending.value_at_quantile(0.0), 0);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        std::fs::remove_file(dir.path().join("jobs.csv")).unwrap();
        let e = write_run_report_from_value(dir.path(), &summary_value()).unwrap_err();
        assert!(e.to_string().contains("jobs.csv"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);

        write_fake_report(dir.path());
        let bad = format!("{}\nx,1,r\n", crate::report::jobs_csv::COLUMNS.join(","));
        std::fs::write(dir.path().join("jobs.csv"), bad).unwrap();
        let e = write_run_report_from_value(dir.path(), &summary_value()).unwrap_err();
        assert!(e.to_string().contains("jobs.csv"), "{e}");
    }

    #[test]
    fn long_timelines_are_downsampled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.csv");
        let mut text = crate::report::timeline::COLUMNS.join(",");
        text.push('\n');
        let minutes = 10_000u64;
        for m in 0..minutes {
            let pending_max = if m == 7_777 { 99 } else { 1 };
            let _ = writeln!(
                text,
                "{m},{},1.000,{pending_max},2.000,2,0,0,0,0.000,0.000,0.000,0.000",
                m * 60
            );
        }
        std::fs::write(&path, text).unwrap();
        let t = read_timeline(&path).unwrap();
        assert!(t.buckets.len() <= MAX_POINTS && t.buckets.len() >= MAX_POINTS / 2);
        assert_eq!(t.width, 8);
        assert_eq!(t.buckets.iter().map(|b| b.minutes).sum::<u64>(), minutes);
        assert!(t.buckets.iter().all(|b| (b.avg(0) - 1.0).abs() < 1e-12));
        assert_eq!(t.buckets.iter().map(|b| b.peaks[0]).fold(0.0, f64::max), 99.0);
        assert!(!t.any_machine);
    }
}
