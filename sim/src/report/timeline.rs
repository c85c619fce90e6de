//! Per-minute timeline: time-averaged and peak pending and running jobs, and how many jobs
//! were created, started and finished in each minute. Streams rows out as minutes complete.
//!
//! It also keeps the exact area under the pending curve (job·ms), which by Little's law on
//! the sample path equals the sum of every job's pending time: a test checks that.

use std::io::Write;

use super::csv_line::{CsvLine, write_header};

use fleetsim_core::{Command, SimTime};

const MINUTE_MS: u64 = 60_000;

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

/// Accumulates the timeline from the fleet's state after each input.
#[derive(Debug)]
pub struct Timeline<W: Write> {
    out: W,
    minute: u64,
    last_at: SimTime,
    pending: u32,
    running: u32,
    pending_area: u64,
    running_area: u64,
    total_pending_area: u128,
    total_running_area: u128,
    row: MinuteRow,
    line: CsvLine,
}

impl<W: Write> Timeline<W> {
    /// A timeline writing CSV rows to `out`.
    pub fn new(out: W) -> std::io::Result<Timeline<W>> {
        let mut out = out;
        write_header(
            &mut out,
            &[
                "minute",
                "time_s",
                "pending_avg",
                "pending_max",
                "running_avg",
                "running_max",
                "created",
                "started",
                "finished",
            ],
        )?;
        Ok(Timeline {
            out,
            minute: 0,
            last_at: SimTime::ZERO,
            pending: 0,
            running: 0,
            pending_area: 0,
            running_area: 0,
            total_pending_area: 0,
            total_running_area: 0,
            row: MinuteRow::default(),
            line: CsvLine::default(),
        })
    }

    /// Records the state after an input at `now` and the commands it caused. `created` says
    /// whether the input was a new job.
    pub fn observe(
        &mut self,
        now: SimTime,
        pending: u32,
        running: u32,
        created: bool,
        commands: &[Command],
    ) -> std::io::Result<()> {
        self.advance_to(now)?;
        self.pending = pending;
        self.running = running;
        self.row.pending_max = self.row.pending_max.max(pending);
        self.row.running_max = self.row.running_max.max(running);
        self.row.created += u32::from(created);
        for c in commands {
            match c {
                Command::StartStep { .. } => self.row.started += 1,
                Command::JobFinished(_) => self.row.finished += 1,
            }
        }
        Ok(())
    }

    /// Integrates the current state up to `now`, writing every minute that completes.
    fn advance_to(&mut self, now: SimTime) -> std::io::Result<()> {
        while now.as_ms() >= (self.minute + 1) * MINUTE_MS {
            let end = SimTime((self.minute + 1) * MINUTE_MS);
            self.integrate(end);
            self.flush_minute()?;
        }
        self.integrate(now);
        Ok(())
    }

    fn integrate(&mut self, to: SimTime) {
        let dt = to - self.last_at;
        self.pending_area += dt * u64::from(self.pending);
        self.running_area += dt * u64::from(self.running);
        self.total_pending_area += u128::from(dt) * u128::from(self.pending);
        self.total_running_area += u128::from(dt) * u128::from(self.running);
        self.last_at = to;
    }

    fn flush_minute(&mut self) -> std::io::Result<()> {
        let row = self.row;
        self.line.clear();
        self.line
            .u64(self.minute)
            .u64(self.minute * 60)
            .milli(average_thousandths(self.pending_area))
            .u64(u64::from(row.pending_max))
            .milli(average_thousandths(self.running_area))
            .u64(u64::from(row.running_max))
            .u64(u64::from(row.created))
            .u64(u64::from(row.started))
            .u64(u64::from(row.finished));
        self.line.write_to(&mut self.out)?;
        self.minute += 1;
        self.pending_area = 0;
        self.running_area = 0;
        // A minute starts with the state carried over from the previous one.
        self.row = MinuteRow {
            pending_max: self.pending,
            running_max: self.running,
            ..MinuteRow::default()
        };
        Ok(())
    }

    /// The area under the pending curve so far, in job·ms.
    pub fn pending_area_ms(&self) -> u128 {
        self.total_pending_area
    }

    /// The area under the running curve so far, in job·ms.
    pub fn running_area_ms(&self) -> u128 {
        self.total_running_area
    }

    /// Writes the last (partial) minute and flushes.
    pub fn finish(mut self, end: SimTime) -> std::io::Result<W> {
        self.advance_to(end)?;
        let events = self.row.created + self.row.started + self.row.finished;
        if self.last_at.as_ms() > self.minute * MINUTE_MS || events > 0 {
            self.flush_minute()?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The average over a minute of a job·ms area, in thousandths of a job (integer arithmetic,
/// rounded half up).
fn average_thousandths(area_job_ms: u64) -> u64 {
    (area_job_ms + 30) / 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_are_time_weighted_and_minutes_stream_out() {
        let mut t = Timeline::new(Vec::new()).unwrap();
        t.observe(SimTime(30_000), 2, 0, true, &[]).unwrap(); // 2 pending from 30 s
        t.observe(SimTime(90_000), 0, 1, false, &[]).unwrap(); // picked up at 90 s
        assert_eq!(t.pending_area_ms(), 2 * 60_000);
        let out = String::from_utf8(t.finish(SimTime(120_000)).unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "0,0,1.000,2,0.000,0,1,0,0");
        assert_eq!(lines[2], "1,60,1.000,2,0.500,1,0,0,0");
        assert_eq!(lines.len(), 3);
    }
}
