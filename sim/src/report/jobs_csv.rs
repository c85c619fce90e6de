//! `jobs.csv`: one row per job run (a retried job has a row per attempt), written as jobs
//! end (never held in memory), in the order they end. Times are seconds since the start of
//! the run with millisecond precision.

use std::io::Write;

use fleetsim_core::JobRecord;

use super::csv_line::{CsvLine, escape, write_header};
use super::page_stats::JobStats;

/// The columns of `jobs.csv`, in order.
pub const COLUMNS: [&str; 25] = [
    "job_id",
    "project_id",
    "runner",
    "host",
    "machine",
    "attempt",
    "failed",
    "created_at",
    "queued_at",
    "started_at",
    "script_started_at",
    "finished_at",
    "pending_s",
    "wait_capacity_s",
    "wait_machine_s",
    "wait_poll_s",
    "prepare_s",
    "to_script_s",
    "run_s",
    "cache",
    "pull_s",
    "restore_s",
    "save_s",
    "cache_bytes_down",
    "cache_bytes_up",
];

/// Streams finished jobs to CSV.
#[derive(Debug)]
pub struct JobsCsv<W: Write> {
    out: W,
    runner_names: Vec<Vec<u8>>,
    host_names: Vec<Vec<u8>>,
    line: CsvLine,
    /// What `report.html` needs from the rows, gathered as they go out.
    page: JobStats,
}

impl<W: Write> JobsCsv<W> {
    /// A writer with the header written. Runner and host names are indexed by their ids.
    pub fn new(
        mut out: W,
        runner_names: Vec<String>,
        host_names: Vec<String>,
    ) -> std::io::Result<JobsCsv<W>> {
        write_header(&mut out, &COLUMNS)?;
        Ok(JobsCsv {
            out,
            runner_names: runner_names.iter().map(|n| escape(n)).collect(),
            host_names: host_names.iter().map(|n| escape(n)).collect(),
            line: CsvLine::default(),
            page: JobStats::new()?,
        })
    }

    /// Writes one job.
    pub fn write(&mut self, r: &JobRecord) -> std::io::Result<()> {
        self.line.clear();
        self.line
            .u64(r.id.0)
            .u64(r.project.0)
            .escaped(&self.runner_names[r.runner.0 as usize])
            .escaped(&self.host_names[r.host.0 as usize]);
        match r.machine {
            Some(m) => self.line.u64(u64::from(m.0)),
            None => self.line.escaped(b""),
        };
        self.line
            .u64(u64::from(r.attempt))
            .escaped(if r.failed { b"true" } else { b"false" })
            .milli(r.created.as_ms())
            .milli(r.queued.as_ms())
            .milli(r.started.as_ms())
            .milli(r.script_started.as_ms())
            .milli(r.finished.as_ms())
            .milli(r.pending_ms())
            .milli(r.wait_capacity_ms)
            .milli(r.wait_machine_ms)
            .milli(r.wait_poll_ms)
            .milli(r.script_started - r.started)
            .milli(r.script_started - r.queued)
            .milli(r.finished - r.script_started)
            .escaped(r.cache.label().as_bytes())
            .milli(r.pull_ms)
            .milli(r.restore_ms)
            .milli(r.save_ms)
            .u64(r.bytes_down)
            .u64(r.bytes_up);
        self.page.add(r.pending_ms(), (!r.failed).then(|| r.script_started - r.queued));
        self.line.write_to(&mut self.out)
    }

    /// Flushes; returns the inner writer and what `report.html` needs from the rows.
    pub fn finish(mut self) -> std::io::Result<(W, JobStats)> {
        self.out.flush()?;
        Ok((self.out, self.page))
    }
}
