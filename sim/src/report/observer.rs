//! The report observer: streams finished jobs and the timeline to their files while the run
//! goes, and gathers the pending-time statistics (overall, and inside a job window) and the
//! areas under the level curves. A run that writes no files (a sweep point) has no writers
//! at all: nothing is formatted only to be thrown away.

use std::io::Write;

use fleetsim_core::drive::Observer;
use fleetsim_core::{Command, Fleet, JobRecord, SimTime};

use crate::offload::{ReportThread, TimelineSender};
use crate::report::jobs_csv::JobsCsv;
use crate::report::level_areas::LevelAreas;
use crate::report::pending::PendingStats;
use crate::report::timeline::{Levels, Timeline, TimelineCsv};
use crate::run::JobWindow;

/// The pending-time statistics of the finished jobs: of every job run, and of the jobs
/// queued inside the job window.
pub struct FinishedJobs {
    /// Pending-time statistics of every job run.
    pub pending: PendingStats,
    /// The job window and the pending statistics of the jobs queued inside it.
    pub window: Option<(JobWindow, PendingStats)>,
    /// The wall-clock instant of time 0, to place jobs in the window.
    pub start: jiff::Timestamp,
}

impl FinishedJobs {
    /// Records one finished job run.
    pub fn record(&mut self, r: &JobRecord) {
        self.pending.record(r);
        if let Some((w, stats)) = &mut self.window {
            let queued = self.start + jiff::SignedDuration::from_millis(r.queued.as_ms() as i64);
            if w.set.in_period(queued) {
                stats.record(r);
            }
        }
    }
}

/// Finished jobs recorded ([`FinishedJobs`]) and written to `jobs.csv`.
pub struct WrittenJobs<W: Write> {
    /// The statistics.
    pub stats: FinishedJobs,
    /// `jobs.csv`, a row per finished job run.
    pub csv: JobsCsv<W>,
}

impl<W: Write> WrittenJobs<W> {
    /// Records every one of `records` and writes its row, also after a write failed; the
    /// first error, if any (it fails the run at its end, with the statistics whole).
    pub fn record_all<'a>(
        &mut self,
        records: impl Iterator<Item = &'a JobRecord>,
    ) -> std::io::Result<()> {
        let mut first = Ok(());
        for r in records {
            self.stats.record(r);
            first = first.and(self.csv.write(r));
        }
        first
    }
}

/// A report file's writer.
pub type ReportFile = Box<dyn Write + Send>;

/// What becomes of finished jobs and the timeline, by how the run writes its files.
#[allow(clippy::large_enum_variant)] // one per run, never moved while it runs
pub enum Reports {
    /// No files (a sweep point): the pending-time statistics only, and no timeline.
    Nothing(FinishedJobs),
    /// Written on the engine's thread, line by line (`sim live`).
    Here(WrittenJobs<ReportFile>, Timeline<TimelineCsv<ReportFile>>),
    /// Recorded and formatted on the report thread ([`crate::offload`]), `jobs.csv` and the
    /// timeline's rows alike (`sim run`). The timeline comes first so that it is dropped
    /// first: its last rows go through the thread before the thread is joined.
    Beside(Timeline<TimelineSender>, ReportThread),
}

/// Streams finished jobs and the timeline to their files while the run goes.
pub struct ReportObserver {
    /// The areas under the pending and running curves.
    pub areas: LevelAreas,
    /// The finished jobs and the timeline.
    pub reports: Reports,
    /// The first error writing a report (the run goes on; the error fails it at the end).
    pub error: Option<String>,
}

impl ReportObserver {
    /// An observer that writes `reports`.
    pub fn new(reports: Reports) -> ReportObserver {
        ReportObserver { areas: LevelAreas::default(), reports, error: None }
    }
}

impl Observer for ReportObserver {
    fn after_input(&mut self, now: SimTime, fleet: &Fleet, arrival: bool, commands: &[Command]) {
        let (pending, running) = (fleet.pending(), fleet.running());
        self.areas.observe(now, pending, running);
        let levels = || {
            let m = fleet.machine_totals();
            Levels {
                pending,
                running,
                creating: m.creating,
                idle: m.idle + m.acquired,
                busy: m.used,
                removing: m.removing,
            }
        };
        let finished = commands.iter().filter_map(|c| match c {
            Command::JobFinished(r) => Some(r),
            _ => None,
        });
        let written = match &mut self.reports {
            Reports::Nothing(jobs) => {
                finished.for_each(|r| jobs.record(r));
                Ok(())
            }
            Reports::Here(jobs, timeline) => {
                jobs.record_all(finished).and(timeline.observe(now, levels(), arrival, commands))
            }
            Reports::Beside(timeline, thread) => finished
                .map(|r| thread.push(r))
                .fold(Ok(()), std::io::Result::and)
                .and(timeline.observe(now, levels(), arrival, commands)),
        };
        if let Err(e) = written {
            self.error.get_or_insert(e.to_string());
        }
    }
}
