//! Per-minute timeline: time-averaged and peak pending and running jobs, machines by state,
//! and how many jobs were created, started and finished in each minute. Streams rows out as
//! minutes complete. Idle stretches are compressed (see [`Timeline::observe`]): the file grows
//! with what happens, not with the simulated span, so a trace that spans years by mistake
//! cannot fill the disk.
//!
//! The run's exact areas under the pending and running curves are kept apart, in
//! [`crate::report::level_areas`]: a run without files needs them and no rows.

use std::io::Write;

use fleetsim_core::{Command, SimTime, Step};

use super::csv_line::{CsvLine, write_header};
use super::page_stats::TimelineStats;

const MINUTE_MS: u64 = 60_000;

/// The quantities the timeline follows, as they stand after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Levels {
    /// Jobs pending in GitLab.
    pub pending: u32,
    /// Jobs running (GitLab's view: picked up by a runner).
    pub running: u32,
    /// Machines being created.
    pub creating: u32,
    /// Machines idle (or acquired for a request).
    pub idle: u32,
    /// Machines running a job.
    pub busy: u32,
    /// Machines being removed.
    pub removing: u32,
}

impl Levels {
    fn as_array(self) -> [u32; 6] {
        [self.pending, self.running, self.creating, self.idle, self.busy, self.removing]
    }
}

/// Peaks and counts of the minute in progress (the averages come from the areas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MinuteRow {
    /// Most pending jobs at any instant of the minute.
    pub pending_max: u32,
    /// Most running jobs at any instant of the minute.
    pub running_max: u32,
    /// Jobs created in the minute.
    pub created: u32,
    /// Jobs started (picked up) in the minute.
    pub started: u32,
    /// Jobs finished in the minute.
    pub finished: u32,
}

/// Where the timeline's rows go: [`TimelineCsv`] formats them; with the report thread
/// ([`crate::offload`]) they are handed over as values and formatted there, off the engine's
/// thread.
pub trait TimelineRows {
    /// One row of `timeline.csv`.
    fn row(&mut self, minute: u64, values: MinuteValues) -> std::io::Result<()>;
}

/// Accumulates the timeline from the fleet's state after each input.
#[derive(Debug)]
pub struct Timeline<S: TimelineRows> {
    rows: S,
    minute: u64,
    last_at: SimTime,
    levels: Levels,
    /// Areas (level × ms) within the current minute, in `Levels::as_array` order.
    areas: [u64; 6],
    row: MinuteRow,
    /// The values of the last row written, and the minute of a later row identical to it
    /// that is held back (see `flush_minute`).
    written: Option<MinuteValues>,
    held: Option<u64>,
}

/// One row of `timeline.csv` but its `minute` and `time_s`: the averages, in thousandths and
/// in `Levels::as_array` order, and the peaks and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteValues {
    averages: [u64; 6],
    row: MinuteRow,
}

/// The columns of `timeline.csv`.
pub const COLUMNS: [&str; 13] = [
    "minute",
    "time_s",
    "pending_avg",
    "pending_max",
    "running_avg",
    "running_max",
    "created",
    "started",
    "finished",
    "machines_creating_avg",
    "machines_idle_avg",
    "machines_busy_avg",
    "machines_removing_avg",
];

impl<S: TimelineRows> Timeline<S> {
    /// A timeline handing its rows to `rows`.
    pub fn new(rows: S) -> Timeline<S> {
        Timeline {
            rows,
            minute: 0,
            last_at: SimTime::ZERO,
            levels: Levels::default(),
            areas: [0; 6],
            row: MinuteRow::default(),
            written: None,
            held: None,
        }
    }

    /// Records the state after an input at `now` and the commands it caused. `created` says
    /// whether the input was a new job. A stretch of three or more identical minutes before
    /// `now` is written as its first and last rows.
    pub fn observe(
        &mut self,
        now: SimTime,
        levels: Levels,
        created: bool,
        commands: &[Command],
    ) -> std::io::Result<()> {
        self.advance_to(now)?;
        self.levels = levels;
        self.row.pending_max = self.row.pending_max.max(levels.pending);
        self.row.running_max = self.row.running_max.max(levels.running);
        self.row.created += u32::from(created);
        for c in commands {
            match c {
                Command::StartStep { step: Step::Script, .. } => self.row.started += 1,
                Command::StartStep { .. } => {}
                Command::JobFinished(_) => self.row.finished += 1,
                Command::CreateMachine { .. } | Command::RemoveMachine { .. } => {}
            }
        }
        Ok(())
    }

    /// Integrates the current state up to `now`, completing every minute that ends before
    /// it. A stretch of three or more identical minutes (nothing happened: same levels, no
    /// events) is written as its first and last rows; the `minute` column shows the gap and
    /// the minutes in it repeat those rows. An idle month costs two rows, not 43,200, and
    /// is crossed in one step.
    fn advance_to(&mut self, now: SimTime) -> std::io::Result<()> {
        while now.as_ms() >= (self.minute + 1) * MINUTE_MS {
            let end = SimTime((self.minute + 1) * MINUTE_MS);
            self.integrate(end);
            self.flush_minute()?;
            // Minutes `self.minute ..= last` are now all complete and identical.
            let last = now.as_ms() / MINUTE_MS - 1;
            if last >= self.minute + 2 {
                let end = SimTime((self.minute + 1) * MINUTE_MS);
                self.integrate(end);
                self.flush_minute()?;
                self.minute = last;
                self.last_at = SimTime(last * MINUTE_MS);
            }
        }
        self.integrate(now);
        Ok(())
    }

    fn integrate(&mut self, to: SimTime) {
        let dt = to - self.last_at;
        for (area, level) in self.areas.iter_mut().zip(self.levels.as_array()) {
            *area += dt * u64::from(level);
        }
        self.last_at = to;
    }

    /// Completes the minute in progress. A row identical to the one before it (every column
    /// but `minute` and `time_s`) is held back: only the last row of a stretch of identical
    /// minutes is written, when the stretch ends. The file is thus a function of the
    /// simulated history alone, not of how often the engine happened to look at it (an
    /// input that changes nothing, such as an empty job request, must not add rows).
    fn flush_minute(&mut self) -> std::io::Result<()> {
        let values = MinuteValues { averages: self.areas.map(average_thousandths), row: self.row };
        if self.written == Some(values) {
            self.held = Some(self.minute);
        } else {
            self.write_held()?;
            self.rows.row(self.minute, values)?;
            self.written = Some(values);
        }
        self.minute += 1;
        self.areas = [0; 6];
        // A minute starts with the state carried over from the previous one.
        self.row = MinuteRow {
            pending_max: self.levels.pending,
            running_max: self.levels.running,
            ..MinuteRow::default()
        };
        Ok(())
    }

    /// Writes the held-back last row of a stretch of identical minutes, if any.
    fn write_held(&mut self) -> std::io::Result<()> {
        match (self.held.take(), self.written) {
            (Some(minute), Some(values)) => self.rows.row(minute, values),
            _ => Ok(()),
        }
    }

    /// Writes the last (partial) minute; returns where the rows went.
    pub fn finish(mut self, end: SimTime) -> std::io::Result<S> {
        self.advance_to(end)?;
        let events = self.row.created + self.row.started + self.row.finished;
        if self.last_at.as_ms() > self.minute * MINUTE_MS || events > 0 {
            self.flush_minute()?;
        }
        self.write_held()?;
        Ok(self.rows)
    }
}

/// `timeline.csv`'s rows as CSV, and what `report.html` needs from them.
#[derive(Debug)]
pub struct TimelineCsv<W: Write> {
    out: W,
    line: CsvLine,
    /// What `report.html` needs from the rows, gathered as they go out.
    page: TimelineStats,
}

impl<W: Write> TimelineCsv<W> {
    /// Rows written to `out`, after the header.
    pub fn new(mut out: W) -> std::io::Result<TimelineCsv<W>> {
        write_header(&mut out, &COLUMNS)?;
        Ok(TimelineCsv { out, line: CsvLine::default(), page: TimelineStats::new(true) })
    }

    /// Flushes; returns the writer and what `report.html` needs from the rows.
    pub fn finish(mut self) -> std::io::Result<(W, TimelineStats)> {
        self.out.flush()?;
        Ok((self.out, self.page))
    }
}

impl<W: Write> TimelineRows for TimelineCsv<W> {
    fn row(&mut self, minute: u64, values: MinuteValues) -> std::io::Result<()> {
        let MinuteValues { averages: [pending, running, creating, idle, busy, removing], row } =
            values;
        self.line.clear();
        self.line
            .u64(minute)
            .u64(minute * 60)
            .milli(pending)
            .u64(u64::from(row.pending_max))
            .milli(running)
            .u64(u64::from(row.running_max))
            .u64(u64::from(row.created))
            .u64(u64::from(row.started))
            .u64(u64::from(row.finished))
            .milli(creating)
            .milli(idle)
            .milli(busy)
            .milli(removing);
        // As the page's reader takes the row back: thousandths / 1000 is the double that
        // parsing the three-decimal text gives.
        let sums = [pending, running, creating, idle, busy, removing].map(|t| t as f64 / 1000.0);
        let peaks = [f64::from(row.pending_max), f64::from(row.running_max)];
        self.page.add_row(Some(minute), (minute * 60) as f64, sums, peaks);
        self.line.write_to(&mut self.out)
    }
}

/// The average over a minute of a level·ms area, in thousandths (integer arithmetic, rounded
/// half up).
fn average_thousandths(area_ms: u64) -> u64 {
    (area_ms + 30) / 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_are_time_weighted_and_minutes_stream_out() {
        let mut t = Timeline::new(TimelineCsv::new(Vec::new()).unwrap());
        let lv = |pending, running| Levels { pending, running, ..Levels::default() };
        t.observe(SimTime(30_000), lv(2, 0), true, &[]).unwrap(); // 2 pending from 30 s
        t.observe(SimTime(90_000), Levels { busy: 1, ..lv(0, 1) }, false, &[]).unwrap(); // picked up at 90 s
        let out =
            String::from_utf8(t.finish(SimTime(120_000)).unwrap().finish().unwrap().0).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "0,0,1.000,2,0.000,0,1,0,0,0.000,0.000,0.000,0.000");
        assert_eq!(lines[2], "1,60,1.000,2,0.500,1,0,0,0,0.000,0.000,0.500,0.000");
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn identical_minutes_are_written_as_first_and_last_rows() {
        let mut t = Timeline::new(TimelineCsv::new(Vec::new()).unwrap());
        let lv = Levels { pending: 1, ..Levels::default() };
        t.observe(SimTime(0), lv, true, &[]).unwrap();
        // One job pending for 10 days: 14,400 identical minutes.
        let ten_days = 10 * 24 * 60 * MINUTE_MS;
        t.observe(SimTime(ten_days + 30_000), Levels::default(), false, &[]).unwrap();
        let out =
            String::from_utf8(t.finish(SimTime(ten_days + 60_000)).unwrap().finish().unwrap().0)
                .unwrap();
        let minutes: Vec<&str> =
            out.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(minutes, vec!["0", "1", "14399", "14400"]);
        assert!(out.lines().nth(2).unwrap().starts_with("1,60,1.000,1,"));
        assert!(out.lines().nth(3).unwrap().starts_with("14399,863940,1.000,1,"));
        assert!(out.lines().nth(4).unwrap().starts_with("14400,864000,0.500,1,"));
    }

    #[test]
    fn inputs_that_change_nothing_add_no_rows() {
        // The same history (a job pending from 10 s to 5 min 10 s, then 20 idle minutes),
        // observed at its events only, and also every 3 s as a polling fleet's empty job
        // requests would make the engine look at it: the files are the same.
        let lv = Levels { pending: 1, ..Levels::default() };
        let (created, picked, end) = (10_000, 310_000, 25 * MINUTE_MS + 10_000);
        let history = |polls: bool| {
            let mut t = Timeline::new(TimelineCsv::new(Vec::new()).unwrap());
            let mut times = vec![created, picked];
            if polls {
                times.extend((500..end).step_by(3_000));
                times.sort_unstable();
            }
            for now in times {
                let level = if (created..picked).contains(&now) { lv } else { Levels::default() };
                t.observe(SimTime(now), level, now == created, &[]).unwrap();
            }
            String::from_utf8(t.finish(SimTime(end)).unwrap().finish().unwrap().0).unwrap()
        };
        let quiet = history(false);
        assert_eq!(quiet, history(true));
        let minutes: Vec<&str> =
            quiet.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        // Minutes 1–4 are identical (1 pending all along), as are 6–25 (nothing).
        assert_eq!(minutes, vec!["0", "1", "4", "5", "6", "25"]);
    }
}
