//! The report observer: streams finished jobs and the timeline to their files while the run
//! goes, and gathers the pending-time statistics (overall, and inside a job window).

use fleetsim_core::drive::Observer;
use fleetsim_core::{Command, Fleet, SimTime};

use crate::report::jobs_csv::JobsCsv;
use crate::report::pending::PendingStats;
use crate::report::timeline::{Levels, Timeline};
use crate::run::JobWindow;

/// Streams finished jobs and the timeline to their files while the run goes.
pub struct ReportObserver<W: std::io::Write> {
    /// `jobs.csv`, a row per finished job run.
    pub jobs_csv: JobsCsv<W>,
    /// `timeline.csv`, the fleet's levels over time.
    pub timeline: Timeline<W>,
    /// Pending-time statistics of every job run.
    pub pending: PendingStats,
    /// The job window and the pending statistics of the jobs queued inside it.
    pub window: Option<(JobWindow, PendingStats)>,
    /// The wall-clock instant of time 0, to place jobs in the window.
    pub start: jiff::Timestamp,
    /// The first error writing a report (the run goes on; the error fails it at the end).
    pub error: Option<String>,
}

impl<W: std::io::Write> Observer for ReportObserver<W> {
    fn after_input(&mut self, now: SimTime, fleet: &Fleet, arrival: bool, commands: &[Command]) {
        for c in commands {
            if let Command::JobFinished(r) = c {
                self.pending.record(r);
                if let Some((w, stats)) = &mut self.window {
                    let queued =
                        self.start + jiff::SignedDuration::from_millis(r.queued.as_ms() as i64);
                    if w.set.in_period(queued) {
                        stats.record(r);
                    }
                }
                if let Err(e) = self.jobs_csv.write(r) {
                    self.error.get_or_insert(e.to_string());
                }
            }
        }
        let m = fleet.machine_totals();
        let levels = Levels {
            pending: fleet.pending(),
            running: fleet.running(),
            creating: m.creating,
            idle: m.idle + m.acquired,
            busy: m.used,
            removing: m.removing,
        };
        if let Err(e) = self.timeline.observe(now, levels, arrival, commands) {
            self.error.get_or_insert(e.to_string());
        }
    }
}
