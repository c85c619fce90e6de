//! `jobs.csv`: one row per finished job, written as jobs finish (never held in memory).
//! Times are seconds since the start of the run with millisecond precision.

use std::fmt::Write as _;
use std::io::Write;

use fleetsim_core::JobRecord;

/// The columns of `jobs.csv`, in order.
pub const COLUMNS: [&str; 13] = [
    "job_id",
    "project_id",
    "runner",
    "host",
    "created_at",
    "queued_at",
    "started_at",
    "script_started_at",
    "finished_at",
    "pending_s",
    "wait_capacity_s",
    "wait_poll_s",
    "run_s",
];

/// Streams finished jobs to CSV.
#[derive(Debug)]
pub struct JobsCsv<W: Write> {
    out: csv::Writer<W>,
    runner_names: Vec<String>,
    host_names: Vec<String>,
    fields: [String; 13],
}

/// Appends `ms` as seconds with three decimals (exact, no float rounding).
pub fn push_secs(buf: &mut String, ms: u64) {
    let _ = write!(buf, "{}.{:03}", ms / 1000, ms % 1000);
}

impl<W: Write> JobsCsv<W> {
    /// A writer with the header written. Runner and host names are indexed by their ids.
    pub fn new(
        out: W,
        runner_names: Vec<String>,
        host_names: Vec<String>,
    ) -> csv::Result<JobsCsv<W>> {
        let mut out = csv::Writer::from_writer(out);
        out.write_record(COLUMNS)?;
        Ok(JobsCsv { out, runner_names, host_names, fields: Default::default() })
    }

    /// Writes one job.
    pub fn write(&mut self, r: &JobRecord) -> csv::Result<()> {
        for f in &mut self.fields {
            f.clear();
        }
        let [
            id,
            project,
            runner,
            host,
            created,
            queued,
            started,
            script,
            finished,
            pending,
            cap,
            poll,
            run,
        ] = &mut self.fields;
        let _ = write!(id, "{}", r.id.0);
        let _ = write!(project, "{}", r.project.0);
        runner.push_str(&self.runner_names[r.runner.0 as usize]);
        host.push_str(&self.host_names[r.host.0 as usize]);
        push_secs(created, r.created.as_ms());
        push_secs(queued, r.queued.as_ms());
        push_secs(started, r.started.as_ms());
        push_secs(script, r.script_started.as_ms());
        push_secs(finished, r.finished.as_ms());
        push_secs(pending, r.pending_ms());
        push_secs(cap, r.wait_capacity_ms);
        push_secs(poll, r.wait_poll_ms);
        push_secs(run, r.finished - r.script_started);
        self.out.write_record(&self.fields)
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        self.out.into_inner().map_err(|e| std::io::Error::other(e.to_string()))
    }
}
