//! `sim sweep`, `sim merge` and the machinery `sim plan` shares: run a grid of scenario
//! variants in parallel, summarize each point over several seeds, and mark the Pareto front
//! of cost against p95 pending time.
//!
//! ```text
//!  --vary axes ─► grid::points ─► shard slice ─► worker threads (each point × seeds, no files)
//!                                                      │ results by point index
//!                                                      ▼
//!                          rows (text, point order) ─► shard-I-of-N.csv ─► sim merge ─┐
//!                                                  └──────────────────────────────────┴► sweep.csv (+ Pareto)
//! ```
//!
//! Determinism: every point is an independent, seeded run, and results are written in point
//! order, so `sweep.csv` is the same whatever the number of threads or shards.

pub mod grid;
pub mod pareto;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

use crate::input_error::InputError;
use crate::report::summary::Summary;
use crate::run::{JobWindow, RunFailure, RunOptions, run_file};
use grid::{Axis, Shard};

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    /// The scenario file.
    pub scenario: PathBuf,
    /// `--set` overrides applied to every point.
    pub sets: Vec<String>,
    /// The varied keys.
    pub axes: Vec<Axis>,
    /// Seeds per point: the scenario's seed (or `base_seed`), +1, +2, …
    pub seeds: u32,
    /// Overrides the scenario's seed as the first seed.
    pub base_seed: Option<u64>,
    /// Worker threads.
    pub threads: usize,
    /// The slice of the grid to run.
    pub shard: Shard,
    /// Also summarize jobs queued inside this window.
    pub window: Option<JobWindow>,
}

/// One point's results, averaged over its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct PointResult {
    /// Index of the point in the whole grid.
    pub point: usize,
    /// The varied `(key, value)` pairs.
    pub values: Vec<(String, String)>,
    /// Seeds run.
    pub seeds: u32,
    /// Mean over seeds of the median pending time.
    pub p50_s: f64,
    /// Mean over seeds of the p95 pending time.
    pub p95_s: f64,
    /// Lowest p95 over the seeds.
    pub p95_min_s: f64,
    /// Highest p95 over the seeds.
    pub p95_max_s: f64,
    /// Mean over seeds of the p99 pending time.
    pub p99_s: f64,
    /// Mean over seeds of the mean pending time.
    pub mean_s: f64,
    /// Mean over seeds of the p95 of queued → script start.
    pub to_script_p95_s: f64,
    /// Mean over seeds of the p95 pending time inside the window (if any).
    pub window_p95_s: Option<f64>,
    /// Mean over seeds of the cost per 30 days.
    pub cost_per_month_usd: f64,
    /// Mean over seeds of the cost per job.
    pub cost_per_job_usd: f64,
    /// Most machines alive at once (max over seeds).
    pub machines_max: u64,
    /// Mean machines created.
    pub machines_created: f64,
    /// Mean failed job runs.
    pub jobs_failed: f64,
    /// Mean cache hit rate.
    pub cache_hit_rate: f64,
}

/// Why a sweep failed.
#[derive(Debug)]
pub enum SweepFailure {
    /// Bad input (exit code 2): the scenario, a `--vary` or `--set` value.
    Input(InputError),
    /// A point's run failed (exit code 1), with the command that replays it.
    Failed(String),
}

impl From<InputError> for SweepFailure {
    fn from(e: InputError) -> Self {
        SweepFailure::Input(e)
    }
}

/// Runs one point (all its seeds) without writing reports.
pub fn run_point(
    spec: &SweepSpec,
    point: usize,
    values: &[(String, String)],
) -> Result<PointResult, SweepFailure> {
    let mut sets = spec.sets.clone();
    sets.extend(values.iter().map(|(k, v)| format!("{k}={v}")));
    let mut summaries: Vec<Summary> = Vec::with_capacity(spec.seeds as usize);
    for k in 0..spec.seeds {
        let base = match spec.base_seed {
            Some(s) => s,
            None => crate::scenario::Scenario::load(&spec.scenario, &sets)?.seed,
        };
        let opts = RunOptions {
            seed: Some(base + u64::from(k)),
            out: None,
            sets: sets.clone(),
            write_reports: false,
            window: spec.window.clone(),
        };
        match run_file(&spec.scenario, &opts) {
            Ok(out) => summaries.push(out.summary),
            Err(RunFailure::Input(e)) => return Err(SweepFailure::Input(e)),
            Err(RunFailure::Failed(msg)) => {
                return Err(SweepFailure::Failed(format!("point {point}: {msg}")));
            }
        }
    }
    Ok(aggregate(point, values, &summaries))
}

fn aggregate(point: usize, values: &[(String, String)], s: &[Summary]) -> PointResult {
    let n = s.len() as f64;
    let mean = |f: &dyn Fn(&Summary) -> f64| round6(s.iter().map(f).sum::<f64>() / n);
    let p95: Vec<f64> = s.iter().map(|x| x.pending.p95_s).collect();
    PointResult {
        point,
        values: values.to_vec(),
        seeds: s.len() as u32,
        p50_s: mean(&|x| x.pending.p50_s),
        p95_s: mean(&|x| x.pending.p95_s),
        p95_min_s: p95.iter().copied().fold(f64::INFINITY, f64::min),
        p95_max_s: p95.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        p99_s: mean(&|x| x.pending.p99_s),
        mean_s: mean(&|x| x.pending.mean_s),
        to_script_p95_s: mean(&|x| x.to_script.p95_s),
        window_p95_s: s[0]
            .window
            .as_ref()
            .map(|_| mean(&|x| x.window.as_ref().map_or(0.0, |w| w.pending_p95_s))),
        cost_per_month_usd: mean(&|x| x.cost.per_month_usd),
        cost_per_job_usd: mean(&|x| x.cost.per_job_usd),
        machines_max: s.iter().map(|x| x.machines.max).max().unwrap_or(0),
        machines_created: mean(&|x| x.machines.created as f64),
        jobs_failed: mean(&|x| x.jobs.failed as f64),
        cache_hit_rate: mean(&|x| x.cache.hit_rate),
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Runs `points` (indexes into the grid) on `threads` workers with a progress bar; results
/// come back in the order of `points`. Stops at the first failure.
pub fn run_points(
    spec: &SweepSpec,
    points: &[(usize, Vec<(String, String)>)],
    progress: bool,
) -> Result<Vec<PointResult>, SweepFailure> {
    let bar = if progress { ProgressBar::new(points.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} points  {elapsed_precise} elapsed, ~{eta} left",
        )
        .expect("valid template"),
    );
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<PointResult, SweepFailure>>>> =
        Mutex::new((0..points.len()).map(|_| None).collect());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..spec.threads.max(1) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= points.len() || failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let (point, values) = &points[k];
                    let r = run_point(spec, *point, values);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().expect("no worker panicked")[k] = Some(r);
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let results = results.into_inner().expect("no worker panicked");
    let mut out = Vec::with_capacity(points.len());
    for r in results {
        match r {
            Some(Ok(p)) => out.push(p),
            Some(Err(e)) => return Err(e),
            None => {} // skipped after a failure elsewhere; that failure is returned
        }
    }
    if out.len() < points.len() {
        unreachable!("a point was skipped without a failure");
    }
    Ok(out)
}

/// The columns of `sweep.csv` after the varied keys.
pub const METRIC_COLUMNS: [&str; 16] = [
    "seeds",
    "pending_p50_s",
    "pending_p95_s",
    "pending_p95_min_s",
    "pending_p95_max_s",
    "pending_p99_s",
    "pending_mean_s",
    "to_script_p95_s",
    "window_pending_p95_s",
    "cost_per_month_usd",
    "cost_per_job_usd",
    "machines_max",
    "machines_created",
    "jobs_failed",
    "cache_hit_rate",
    "pareto",
];

/// The rows of a sweep or shard file, as text: a header, then one row per point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepTable {
    /// `point`, the varied keys, then [`METRIC_COLUMNS`].
    pub header: Vec<String>,
    /// Rows in point order.
    pub rows: Vec<Vec<String>>,
}

impl SweepTable {
    /// The table of some results (the Pareto column left empty).
    pub fn from_results(axes: &[Axis], results: &[PointResult]) -> SweepTable {
        let mut header = vec!["point".to_owned()];
        header.extend(axes.iter().map(|a| a.key.clone()));
        header.extend(METRIC_COLUMNS.iter().map(|c| (*c).to_owned()));
        let rows = results
            .iter()
            .map(|r| {
                let mut row = vec![r.point.to_string()];
                // Values of a credential key are never written (crate::redact::axis_value).
                row.extend(r.values.iter().map(|(k, v)| {
                    let index = axes
                        .iter()
                        .find(|a| &a.key == k)
                        .and_then(|a| a.values.iter().position(|x| x == v))
                        .unwrap_or(0);
                    crate::redact::axis_value(k, index, v)
                }));
                row.extend([
                    r.seeds.to_string(),
                    r.p50_s.to_string(),
                    r.p95_s.to_string(),
                    r.p95_min_s.to_string(),
                    r.p95_max_s.to_string(),
                    r.p99_s.to_string(),
                    r.mean_s.to_string(),
                    r.to_script_p95_s.to_string(),
                    r.window_p95_s.map_or(String::new(), |w| w.to_string()),
                    r.cost_per_month_usd.to_string(),
                    r.cost_per_job_usd.to_string(),
                    r.machines_max.to_string(),
                    r.machines_created.to_string(),
                    r.jobs_failed.to_string(),
                    r.cache_hit_rate.to_string(),
                    String::new(),
                ]);
                row
            })
            .collect();
        SweepTable { header, rows }
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Marks the Pareto front of `cost_per_month_usd` against the p95 pending time (the
    /// window's when present) in the `pareto` column.
    pub fn mark_pareto(&mut self) -> Result<(), String> {
        let cost = self.column("cost_per_month_usd").ok_or("no cost_per_month_usd column")?;
        let p95 = self.column("pending_p95_s").ok_or("no pending_p95_s column")?;
        let window = self.column("window_pending_p95_s");
        let flag = self.column("pareto").ok_or("no pareto column")?;
        let num = |row: &Vec<String>, c: usize| {
            row[c].parse::<f64>().map_err(|_| format!("bad number {:?}", row[c]))
        };
        let mut points = Vec::with_capacity(self.rows.len());
        for row in &self.rows {
            let latency = match window.filter(|&w| !row[w].is_empty()) {
                Some(w) => num(row, w)?,
                None => num(row, p95)?,
            };
            points.push((num(row, cost)?, latency));
        }
        let front = pareto::front(&points);
        for (row, on) in self.rows.iter_mut().zip(front) {
            row[flag] = on.to_string();
        }
        Ok(())
    }

    /// Writes the table as CSV.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let mut w = csv::Writer::from_path(path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        w.write_record(&self.header).map_err(|e| e.to_string())?;
        for r in &self.rows {
            w.write_record(r).map_err(|e| e.to_string())?;
        }
        w.flush().map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Reads a table written by [`SweepTable::write`].
    pub fn read(path: &Path) -> Result<SweepTable, InputError> {
        let text = crate::input_file::read_text(path, "the shard file")?;
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = r
            .headers()
            .map_err(|e| InputError::file(path, e.to_string()).at_line(1))?
            .iter()
            .map(str::to_owned)
            .collect();
        if header.first().map(String::as_str) != Some("point")
            || !header.ends_with(&["pareto".to_owned()])
        {
            return Err(InputError::file(
                path,
                "not a sweep or shard file (expected `point`, …, `pareto` columns)",
            )
            .at_line(1));
        }
        let first_metric = header.len().saturating_sub(METRIC_COLUMNS.len());
        if first_metric == 0 || header[first_metric..] != METRIC_COLUMNS {
            return Err(InputError::file(
                path,
                format!(
                    "not a sweep or shard file: the last columns must be {}",
                    METRIC_COLUMNS.join(",")
                ),
            )
            .at_line(1));
        }
        let mut rows = Vec::new();
        for (k, rec) in r.records().enumerate() {
            let line = k + 2;
            let rec = rec.map_err(|e| InputError::file(path, e.to_string()).at_line(line))?;
            let row: Vec<String> = rec.iter().map(str::to_owned).collect();
            check_row(path, line, &header, first_metric, &row)?;
            rows.push(row);
        }
        Ok(SweepTable { header, rows })
    }

    /// Joins shard tables into the table a single run gives: same header, rows in point
    /// order, each point exactly once.
    pub fn merge(paths: &[PathBuf]) -> Result<SweepTable, InputError> {
        check_shard_set(paths)?;
        let Some(first_path) = paths.first() else {
            return Err(InputError::file("sim merge", "no shard files given"));
        };
        let mut all = SweepTable::read(first_path)?;
        // Where each row came from (file and line), for the messages.
        let mut origins: Vec<(&PathBuf, usize)> =
            (0..all.rows.len()).map(|k| (first_path, k + 2)).collect();
        for path in &paths[1..] {
            let t = SweepTable::read(path)?;
            if t.header != all.header {
                return Err(InputError::file(
                    path,
                    format!("its columns differ from {}", first_path.display()),
                )
                .at_line(1));
            }
            origins.extend((0..t.rows.len()).map(|k| (path, k + 2)));
            all.rows.extend(t.rows);
        }
        // Every point is checked to be an integer by `read`.
        let mut order: Vec<usize> = (0..all.rows.len()).collect();
        order.sort_by_key(|&k| (all.rows[k][0].parse::<u64>().unwrap_or(u64::MAX), k));
        let rows: Vec<Vec<String>> = order.iter().map(|&k| all.rows[k].clone()).collect();
        let origins: Vec<(&PathBuf, usize)> = order.iter().map(|&k| origins[k]).collect();
        all.rows = rows;
        for (k, w) in all.rows.windows(2).enumerate() {
            if w[0][0] == w[1][0] {
                let (first, first_line) = origins[k];
                let (path, line) = origins[k + 1];
                return Err(InputError::file(
                    path,
                    format!(
                        "point {} appears twice (also in {} line {first_line})",
                        w[0][0],
                        first.display()
                    ),
                )
                .at_line(line)
                .key("point"));
            }
        }
        if let Some(last) = all.rows.last() {
            let expected = last[0].parse::<usize>().unwrap_or(0) + 1;
            if expected != all.rows.len() {
                let (path, line) = origins[all.rows.len() - 1];
                return Err(InputError::file(
                    path,
                    format!(
                        "point {} is the highest, but the {} files given hold {} points: a \
                         shard is missing",
                        expected - 1,
                        paths.len(),
                        all.rows.len()
                    ),
                )
                .at_line(line)
                .key("point"));
            }
        }
        Ok(all)
    }
}

/// Checks one row of a sweep or shard file: `point` a non-negative integer, every metric a
/// finite number ≥ 0 (the window column may be empty, `pareto` empty, `true` or `false`).
fn check_row(
    path: &Path,
    line: usize,
    header: &[String],
    first_metric: usize,
    row: &[String],
) -> Result<(), InputError> {
    let bad = |c: usize, what: &str| {
        InputError::file(path, format!("expected {what}, found `{}`", row[c]))
            .at_line(line)
            .key(header[c].clone())
    };
    if row[0].parse::<u64>().is_err() {
        return Err(bad(0, "a point number (an integer ≥ 0)"));
    }
    for c in first_metric..header.len() {
        let ok = match header[c].as_str() {
            "pareto" => matches!(row[c].as_str(), "" | "true" | "false"),
            "window_pending_p95_s" if row[c].is_empty() => true,
            _ => row[c].parse::<f64>().is_ok_and(|x| x.is_finite() && x >= 0.0),
        };
        if !ok {
            return Err(bad(
                c,
                if header[c] == "pareto" {
                    "true, false or empty"
                } else {
                    "a finite number ≥ 0"
                },
            ));
        }
    }
    Ok(())
}

/// `shard-I-of-N.csv` → `(I, N)`.
fn shard_of_name(path: &Path) -> Option<(u32, u32)> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("shard-")?.strip_suffix(".csv")?;
    let (i, n) = rest.split_once("-of-")?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// When the files are named as `sim sweep --shard` names them, checks that they are shards
/// 1 to N of one N, each once: the rows alone cannot show that the last points are missing.
fn check_shard_set(paths: &[PathBuf]) -> Result<(), InputError> {
    let named: Vec<(&PathBuf, (u32, u32))> =
        paths.iter().filter_map(|p| shard_of_name(p).map(|s| (p, s))).collect();
    if named.len() != paths.len() || named.is_empty() {
        return Ok(()); // renamed files: only the row checks apply
    }
    let n = named[0].1.1;
    if let Some((p, (_, other))) = named.iter().find(|(_, (_, m))| *m != n) {
        return Err(InputError::file(
            p,
            format!("is a shard of {other}, but {} is a shard of {n}", named[0].0.display()),
        ));
    }
    let mut have: Vec<u32> = named.iter().map(|(_, (i, _))| *i).collect();
    have.sort_unstable();
    let missing: Vec<String> =
        (1..=n).filter(|i| have.binary_search(i).is_err()).map(|i| format!("{i}/{n}")).collect();
    if !missing.is_empty() {
        return Err(InputError::file(
            named[0].0,
            format!(
                "is a shard of {n}, and shard {} is missing: a sweep of {n} shards needs all of them",
                missing.join(", ")
            ),
        ));
    }
    let mut seen: Vec<u32> = Vec::new();
    for (p, (i, _)) in &named {
        if seen.contains(i) {
            return Err(InputError::file(p, format!("shard {i}/{n} is given twice")));
        }
        seen.push(*i);
    }
    Ok(())
}

/// Runs a sweep (or one shard of it) and writes `sweep.csv` (or `shard-I-of-N.csv`) in
/// `out_dir`. Returns the path written and the results.
pub fn sweep(
    spec: &SweepSpec,
    out_dir: &Path,
    progress: bool,
) -> Result<(PathBuf, Vec<PointResult>), SweepFailure> {
    let all = grid::points(&spec.axes);
    let mine: Vec<(usize, Vec<(String, String)>)> =
        all.into_iter().enumerate().filter(|(k, _)| spec.shard.owns(*k)).collect();
    let results = run_points(spec, &mine, progress)?;
    let mut table = SweepTable::from_results(&spec.axes, &results);
    std::fs::create_dir_all(out_dir)
        .map_err(|e| SweepFailure::Failed(format!("cannot create {}: {e}", out_dir.display())))?;
    let path = if spec.shard == Shard::ALL {
        table.mark_pareto().map_err(SweepFailure::Failed)?;
        out_dir.join("sweep.csv")
    } else {
        out_dir.join(format!("shard-{}-of-{}.csv", spec.shard.index, spec.shard.count))
    };
    table.write(&path).map_err(SweepFailure::Failed)?;
    Ok((path, results))
}
