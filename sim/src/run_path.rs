//! The one run path of `sim run` and `sim live`: scenario → fleet (with its periods) → job
//! source → report observer → summary → files. The two commands differ only in the loop that
//! drives the fleet (the simulated engine, or the live driver), in how machines are billed into
//! the ledger (the simulated cloud, or the live machines' lives) and in an optional summary
//! section.
//!
//! ```text
//!   RunPath::prepare ─► fleet, source, observer ─► (the mode's loop) ─► RunPath::finish
//!     Scenario::build      TraceSource           jobs.csv, timeline.csv     summary.json
//!     open_workload        ReportObserver        (streamed)                 report.html
//! ```

use std::fs::File;
use std::io::{self, BufWriter, LineWriter, Read, Write};
use std::path::{Path, PathBuf};

use fleetsim_core::Fleet;

use crate::cloud::ec2::MachineType;
use crate::cloud::ledger::CloudTotals;
use crate::engine::RunEnd;
use crate::offload::{ReportThread, ReportsDone};
use crate::report::jobs_csv::JobsCsv;
use crate::report::observer::{FinishedJobs, ReportFile, ReportObserver, Reports, WrittenJobs};
use crate::report::page_stats::{JobStats, TimelineStats};
use crate::report::pending::PendingStats;
use crate::report::summarize::{Areas, summarize};
use crate::report::summary::{Summary, WindowSummary};
use crate::report::timeline::{Timeline, TimelineCsv};
use crate::run::{JobWindow, RunFailure};
use crate::scenario::Scenario;
use crate::seeds::SeedTree;
use crate::trace::source::{CacheKeys, TraceSource};
use crate::workload::open::{WorkloadHash, open_workload};

/// How report files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writing {
    /// Not at all (a sweep only wants the summary).
    Nothing,
    /// Buffered: fastest (`sim run`). The trace is parsed, and the streamed reports are
    /// written, on two more threads beside the engine ([`crate::offload`]).
    Buffered,
    /// Line by line: an interrupted or killed run keeps every row written so far (`sim live`).
    Lines,
}

/// A run being prepared or under way: everything both modes share.
pub struct RunPath {
    /// The fleet, with its autoscaling periods.
    pub fleet: Fleet,
    /// Runner processes (hosts) of the fleet.
    pub processes: usize,
    /// The machine type of each runner (`None` without autoscaling).
    pub machine_types: Vec<Option<MachineType>>,
    /// The job source over the scenario's workload.
    pub source: TraceSource<Box<dyn Read + Send>>,
    /// The report observer.
    pub observer: ReportObserver,
    /// Warnings met so far.
    pub warnings: Vec<String>,
    /// Where the report files go.
    pub files: ReportFiles,
    /// The run's seed.
    pub seed: u64,
    /// The tree of random streams.
    pub seeds: SeedTree,
    workload_hash: WorkloadHash,
}

/// The report folder of a run and how its files are written.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    /// The folder.
    pub out_dir: PathBuf,
    /// How.
    pub writing: Writing,
}

impl ReportFiles {
    /// A report file of the run, `None` when the run writes no files (a sweep point).
    pub fn create(&self, name: &str) -> Result<Option<ReportFile>, RunFailure> {
        match self.writing {
            Writing::Nothing => Ok(None),
            Writing::Buffered | Writing::Lines => self.open(name).map(Some),
        }
    }

    /// Creates report file `name`, buffered or line by line as the run writes; every error
    /// writing it names it.
    fn open(&self, name: &str) -> Result<ReportFile, RunFailure> {
        let path = self.out_dir.join(name);
        let file = File::create(&path)
            .map_err(|e| RunFailure::Failed(format!("cannot write {}: {e}", path.display())))?;
        let file = NamedFile { path, file };
        Ok(match self.writing {
            Writing::Lines => Box::new(LineWriter::new(file)),
            Writing::Nothing | Writing::Buffered => Box::new(BufWriter::new(file)),
        })
    }
}

/// A report file whose write errors say which file failed ("disk full" alone does not
/// tell a user of three streamed files which one).
struct NamedFile {
    path: PathBuf,
    file: File,
}

impl NamedFile {
    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.path.display()))
    }
}

impl Write for NamedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf).map_err(|e| self.named(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush().map_err(|e| self.named(e))
    }
}

impl RunPath {
    /// Builds the fleet, opens the workload and the report files in `out_dir`.
    pub fn prepare(
        scenario: &Scenario,
        seed: u64,
        out_dir: PathBuf,
        writing: Writing,
        window: Option<JobWindow>,
    ) -> Result<RunPath, RunFailure> {
        let seeds = SeedTree::new(seed);
        let build = scenario.build(seeds)?;
        let processes = build.spec.processes.len();
        let mut fleet = Fleet::new(build.spec);
        for (runner, periods) in build.periods {
            fleet.set_periods(runner, Box::new(periods));
        }
        let (reader, workload_hash) = open_workload(scenario, seeds, writing != Writing::Nothing)?;
        let mut warnings = scenario.warnings.clone();
        warnings.extend(reader.warnings().iter().cloned());
        let files = ReportFiles { out_dir, writing };
        if writing != Writing::Nothing {
            std::fs::create_dir_all(&files.out_dir).map_err(|e| {
                RunFailure::Failed(format!("cannot create {}: {e}", files.out_dir.display()))
            })?;
        }
        let stats = FinishedJobs {
            pending: PendingStats::default(),
            window: window.map(|w| (w, PendingStats::default())),
            start: scenario.start,
        };
        let written = |stats| -> Result<_, RunFailure> {
            let jobs = files.open("jobs.csv")?;
            let csv = JobsCsv::new(jobs, scenario.runner_names(), scenario.host_names());
            let jobs = WrittenJobs { stats, csv: csv.map_err(io_error)? };
            let timeline = TimelineCsv::new(files.open("timeline.csv")?).map_err(io_error)?;
            Ok((jobs, timeline))
        };
        let reports = match writing {
            Writing::Nothing => Reports::Nothing(stats),
            Writing::Buffered => {
                let (jobs, timeline) = written(stats)?;
                let mut thread = ReportThread::start(jobs, timeline);
                Reports::Beside(Timeline::new(thread.timeline_sender()), thread)
            }
            Writing::Lines => {
                let (jobs, timeline) = written(stats)?;
                Reports::Here(jobs, Timeline::new(timeline))
            }
        };
        let observer = ReportObserver::new(reports);
        let (keys, keys_warning) = CacheKeys::for_scenario(scenario);
        warnings.extend(keys_warning);
        let source = if writing == Writing::Buffered {
            TraceSource::read_ahead(reader, keys)
        } else {
            TraceSource::new(reader, keys)
        };
        Ok(RunPath {
            fleet,
            processes,
            machine_types: build.machine_types,
            source,
            observer,
            warnings,
            files,
            seed,
            seeds,
            workload_hash,
        })
    }

    /// Ends the run: closes the streamed reports, summarizes (with the ledger's `machines`),
    /// lets `section` add the mode's part, and writes `summary.json` and `report.html`.
    pub fn finish(
        mut self,
        scenario: &Scenario,
        replay: &str,
        end: RunEnd,
        machines: &CloudTotals,
        section: impl FnOnce(&mut Summary),
    ) -> Result<(Summary, Vec<String>), RunFailure> {
        let warnings = {
            let mut w = std::mem::take(&mut self.warnings);
            w.extend(self.source.cache_keys().warning());
            w
        };
        drop(self.source);
        let trace_sha256 = self.workload_hash.finish()?;
        let ReportObserver { areas, reports, error } = self.observer;
        let areas = Areas { pending: areas.pending_ms(), running: areas.running_ms() };
        let failed = |e: String| RunFailure::Failed(format!("writing reports: {e}"));
        // The finished jobs, and what the page needs when files are written.
        let (jobs, page) = match reports {
            Reports::Nothing(jobs) => {
                if let Some(e) = error {
                    return Err(failed(e));
                }
                (jobs, None)
            }
            Reports::Here(jobs, timeline) => {
                if let Some(e) = error {
                    return Err(failed(e));
                }
                let (_, job_page) = jobs.csv.finish().map_err(io_error)?;
                let rows = timeline.finish(end.end).map_err(io_error)?;
                let (_, timeline_page) = rows.finish().map_err(io_error)?;
                (jobs.stats, Some((job_page, timeline_page)))
            }
            Reports::Beside(timeline, thread) => {
                // The last timeline rows go to the report thread; the timeline's sender is
                // dropped here, before the thread is joined.
                let last_rows = timeline.finish(end.end).map(drop);
                let ReportsDone { jobs, timeline: rows, error: thread_error } = thread.finish();
                if let Some(e) = error.or(thread_error.map(|e| e.to_string())) {
                    return Err(failed(e));
                }
                last_rows.map_err(io_error)?;
                let (_, job_page) = jobs.csv.finish().map_err(io_error)?;
                let (_, timeline_page) = rows.finish().map_err(io_error)?;
                (jobs.stats, Some((job_page, timeline_page)))
            }
        };
        let (pending, window) = (jobs.pending, jobs.window);
        let cache_stats = self.fleet.finish_cache(end.end);
        let skipped = end.skipped;
        let mut summary = summarize(
            scenario,
            self.seed,
            replay,
            trace_sha256,
            end,
            &pending,
            areas,
            machines,
            &cache_stats,
        );
        summary.jobs.total += skipped;
        summary.jobs.skipped = skipped;
        summary.window = window.map(|(w, stats)| WindowSummary {
            window: w.text,
            jobs: stats.count(),
            pending_mean_s: stats.mean_s(),
            pending_p50_s: stats.quantile_s(0.50),
            pending_p95_s: stats.quantile_s(0.95),
            pending_p99_s: stats.quantile_s(0.99),
            to_script_p95_s: stats.to_script_quantile_s(0.95),
        });
        section(&mut summary);
        if let Some((jobs, timeline)) = page {
            write_summary(&self.files.out_dir, &summary, &jobs, &timeline)?;
        }
        Ok((summary, warnings))
    }
}

/// `summary.json` and `report.html` in `out_dir` (the page from what the run gathered while
/// it wrote `jobs.csv` and `timeline.csv`).
fn write_summary(
    out_dir: &Path,
    summary: &Summary,
    jobs: &JobStats,
    timeline: &TimelineStats,
) -> Result<(), RunFailure> {
    let mut json = serde_json::to_string_pretty(summary)
        .map_err(|e| RunFailure::Failed(format!("encoding summary.json: {e}")))?;
    json.push('\n');
    std::fs::write(out_dir.join("summary.json"), json)
        .map_err(|e| RunFailure::Failed(format!("writing summary.json: {e}")))?;
    crate::report::html::write_run_report_streamed(out_dir, summary, jobs, timeline)
        .map_err(|e| RunFailure::Failed(format!("writing report.html: {e}")))
}

/// A failure writing a report.
pub fn io_error(e: std::io::Error) -> RunFailure {
    RunFailure::Failed(format!("writing reports: {e}"))
}
