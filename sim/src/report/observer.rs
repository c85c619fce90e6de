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
use crate::report::timeline::{Levels, MinuteValues, Timeline, TimelineCsv, TimelineRows};
use crate::run::JobWindow;

/// What is done with each finished job: its `jobs.csv` row and the pending-time statistics.
pub struct FinishedJobs<W: Write> {
    /// `jobs.csv`, a row per finished job run (`None`: no files are written).
    pub jobs_csv: Option<JobsCsv<W>>,
    /// Pending-time statistics of every job run.
    pub pending: PendingStats,
    /// The job window and the pending statistics of the jobs queued inside it.
    pub window: Option<(JobWindow, PendingStats)>,
    /// The wall-clock instant of time 0, to place jobs in the window.
    pub start: jiff::Timestamp,
}

impl<W: Write> FinishedJobs<W> {
    /// Records one finished job run.
    pub fn record(&mut self, r: &JobRecord) -> std::io::Result<()> {
        self.pending.record(r);
        if let Some((w, stats)) = &mut self.window {
            let queued = self.start + jiff::SignedDuration::from_millis(r.queued.as_ms() as i64);
            if w.set.in_period(queued) {
                stats.record(r);
            }
        }
        match &mut self.jobs_csv {
            Some(csv) => csv.write(r),
            None => Ok(()),
        }
    }
}

/// Where finished jobs go: recorded at once, or handed to the report thread.
#[allow(clippy::large_enum_variant)] // one per run, never moved while it runs
pub enum JobsOut {
    /// On the engine's thread.
    Here(FinishedJobs<Box<dyn Write + Send>>),
    /// On the report thread ([`crate::offload`]), which also writes `timeline.csv`.
    Beside(ReportThread),
}

/// Where the timeline's rows go: formatted and written at once, or handed to the report thread
/// (which formats them beside the engine).
pub enum TimelineOut {
    /// On the engine's thread.
    Here(TimelineCsv<Box<dyn Write + Send>>),
    /// To the report thread ([`crate::offload`]).
    Beside(TimelineSender),
}

impl TimelineRows for TimelineOut {
    fn row(&mut self, minute: u64, values: MinuteValues) -> std::io::Result<()> {
        match self {
            TimelineOut::Here(csv) => csv.row(minute, values),
            TimelineOut::Beside(sender) => sender.row(minute, values),
        }
    }
}

/// Streams finished jobs and the timeline to their files while the run goes.
pub struct ReportObserver {
    /// The areas under the pending and running curves.
    pub areas: LevelAreas,
    /// `timeline.csv`, the fleet's levels over time (`None`: no files are written). (Declared
    /// before `jobs`, so that it is dropped first: with the report thread, its rows go
    /// through that thread.)
    pub timeline: Option<Timeline<TimelineOut>>,
    /// The finished jobs.
    pub jobs: JobsOut,
    /// The first error writing a report (the run goes on; the error fails it at the end).
    pub error: Option<String>,
}

impl Observer for ReportObserver {
    fn after_input(&mut self, now: SimTime, fleet: &Fleet, arrival: bool, commands: &[Command]) {
        for c in commands {
            if let Command::JobFinished(r) = c {
                match &mut self.jobs {
                    JobsOut::Here(jobs) => {
                        if let Err(e) = jobs.record(r) {
                            self.error.get_or_insert(e.to_string());
                        }
                    }
                    JobsOut::Beside(thread) => thread.push(r),
                }
            }
        }
        let (pending, running) = (fleet.pending(), fleet.running());
        self.areas.observe(now, pending, running);
        let Some(timeline) = &mut self.timeline else { return };
        let m = fleet.machine_totals();
        let levels = Levels {
            pending,
            running,
            creating: m.creating,
            idle: m.idle + m.acquired,
            busy: m.used,
            removing: m.removing,
        };
        if let Err(e) = timeline.observe(now, levels, arrival, commands) {
            self.error.get_or_insert(e.to_string());
        }
    }
}
