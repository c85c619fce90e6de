//! `sim trace stats`: what is in a trace, in one streaming pass — jobs per hour of the week,
//! script-time percentiles, pipeline sizes, and the concurrency the trace needs when every
//! job starts the moment it is created (no capacity limit): the lower bound below which no
//! fleet can push pending time, and the size at which one would never queue.
//!
//! In a trace with stages or `needs` ([`super::pipelines`]) a job starts, with unlimited
//! capacity, when its predecessors have finished, not at its pipeline's creation: each
//! pipeline is buffered (its rows are consecutive) and its jobs' start times computed along
//! its DAG before they enter the concurrency count. Stats do not validate the DAG (`sim run`
//! does): an unknown need is ignored and a job on a cycle starts at its creation.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::io::Read;

use hdrhistogram::Histogram;
use jiff::tz::TimeZone;

use super::{TraceReader, TraceRecord};
use crate::input_error::InputError;

/// One row through the run's pipeline checks (see `TraceSource::next_job` in `run.rs`).
fn check_row<R: Read>(
    (p, core): &mut (super::pipelines::PipelineReader, fleetsim_core::pipelines::Pipelines),
    rec: &TraceRecord,
    reader: &TraceReader<R>,
) -> Result<(), InputError> {
    use fleetsim_core::{JobId, JobSpec, JobWork, ProjectId, TagSetId};
    let spec = JobSpec {
        id: JobId(rec.job_id),
        project: ProjectId(rec.project_id),
        tags: TagSetId(0),
        duration_ms: rec.duration_ms,
        retry: rec.retry,
        work: JobWork::default(),
    };
    if p.is_open() && p.continues(rec) {
        return p.add(rec, spec);
    }
    if p.is_open() {
        p.check_and_forget(|id| reader.has_seen(id), core)?;
    }
    match rec.pipeline_id {
        Some(_) => p.begin(rec, spec),
        None => super::pipelines::check_needs_have_a_pipeline(rec, reader.path()),
    }
}

/// The statistics of a trace.
#[derive(Debug, Clone)]
pub struct TraceStats {
    /// Jobs.
    pub jobs: u64,
    /// Distinct pipelines (rows with a `pipeline_id`).
    pub pipelines: u64,
    /// Last `created_at`, in ms from the trace start.
    pub span_ms: u64,
    /// Jobs created in each hour of the week (Monday 00:00 first), in the given zone.
    pub per_hour_of_week: [u64; 168],
    /// Script-time percentiles in seconds: p50, p90, p95, p99 (HDR histogram, 3 significant
    /// digits) and the exact max.
    pub duration_s: [f64; 5],
    /// Mean script time in seconds.
    pub duration_mean_s: f64,
    /// Jobs per pipeline: p50, p90, max.
    pub pipeline_size: [u64; 3],
    /// Most jobs running at once if each started when created (or, in a trace with stages
    /// or needs, when its predecessors ended).
    pub peak_concurrency: u64,
    /// Mean jobs running over the trace span, if each started when created.
    pub mean_concurrency: f64,
}

/// A job of a DAG trace's pipeline, buffered until the pipeline's last row.
struct DagJob {
    pipeline: u64,
    id: u64,
    stage: String,
    needs: Option<Vec<u64>>,
    created_ms: u64,
    duration_ms: u64,
}

/// The unlimited-capacity concurrency count: job intervals wait in `pending` (by start) until
/// no later-read row can start before them, then enter `running` in start order.
#[derive(Default)]
struct Sweep {
    pending: BinaryHeap<Reverse<(u64, u64)>>,
    running: BinaryHeap<Reverse<u64>>,
    peak: u64,
}

impl Sweep {
    /// Counts every pending interval that starts at or before `until` (every job read later
    /// is created, so starts, at or after it).
    fn advance(&mut self, until: u64) {
        while let Some(&Reverse((start, end))) = self.pending.peek() {
            if start > until {
                break;
            }
            self.pending.pop();
            while self.running.peek().is_some_and(|Reverse(e)| *e <= start) {
                self.running.pop();
            }
            self.running.push(Reverse(end));
            self.peak = self.peak.max(self.running.len() as u64);
        }
    }
}

/// Computes the start of every job of the buffered pipeline with unlimited capacity (at its
/// creation, or when its last predecessor ends) and queues the intervals in `sweep`.
fn schedule_pipeline(open: &mut Vec<DagJob>, sweep: &mut Sweep) {
    let n = open.len();
    // Stage index by first appearance.
    let mut stage_of = vec![0usize; n];
    let mut names: Vec<&str> = Vec::new();
    for (i, j) in open.iter().enumerate() {
        stage_of[i] = names.iter().position(|s| *s == j.stage).unwrap_or_else(|| {
            names.push(&j.stage);
            names.len() - 1
        });
    }
    // End times by repeated relaxation in file order: a pipeline is small, and each pass
    // settles at least one more job of an acyclic DAG; a cycle leaves its jobs at creation.
    let mut end: Vec<Option<u64>> = vec![None; n];
    for _ in 0..n {
        let mut changed = false;
        for i in 0..n {
            if end[i].is_some() {
                continue;
            }
            let preds: Vec<usize> = match &open[i].needs {
                Some(ids) => {
                    ids.iter().filter_map(|id| open.iter().position(|j| j.id == *id)).collect()
                }
                None => (0..n).filter(|&k| stage_of[k] < stage_of[i]).collect(),
            };
            if preds.iter().all(|&k| end[k].is_some()) {
                let start =
                    preds.iter().filter_map(|&k| end[k]).max().unwrap_or(0).max(open[i].created_ms);
                end[i] = Some(start + open[i].duration_ms);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    for (i, j) in open.iter().enumerate() {
        let e = end[i].unwrap_or(j.created_ms + j.duration_ms);
        sweep.pending.push(Reverse((e - j.duration_ms, e)));
    }
    open.clear();
}

/// Reads a trace and computes its statistics. `start` is the wall-clock instant of time 0
/// (an RFC 3339 trace brings its own), `zone` the time zone of the hours of the week.
pub fn trace_stats<R: Read>(
    mut reader: TraceReader<R>,
    start: jiff::Timestamp,
    zone: &TimeZone,
) -> Result<TraceStats, InputError> {
    let origin = reader.origin().unwrap_or(start);
    let mut rec = TraceRecord::new();
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 400 * 86_400_000, 3).expect("valid HDR bounds");
    let mut per_hour = [0u64; 168];
    let mut pipelines: BTreeMap<u64, u64> = BTreeMap::new();
    let dag = reader.has_column("stage") || reader.has_column("needs");
    let mut sweep = Sweep::default();
    let mut open: Vec<DagJob> = Vec::new();
    let (mut jobs, mut sum_ms, mut busy_ms, mut span, mut max_ms) =
        (0u64, 0u128, 0u128, 0u64, 0u64);
    // The same pipeline checks as a run (stages, needs, cycles, interleaving), so that
    // `trace stats` refuses what `sim run` refuses.
    let mut check = dag.then(|| {
        (
            super::pipelines::PipelineReader::new(reader.path()),
            fleetsim_core::pipelines::Pipelines::new(),
        )
    });
    while reader.read_next(&mut rec)? {
        if let Some(p) = &mut check {
            check_row(p, &rec, &reader)?;
        }
        jobs += 1;
        let at = rec.created_at_ms;
        span = span.max(at);
        hist.saturating_record(rec.duration_ms);
        max_ms = max_ms.max(rec.duration_ms);
        sum_ms += u128::from(rec.duration_ms);
        busy_ms += u128::from(rec.duration_ms);
        if open.first().is_some_and(|j| Some(j.pipeline) != rec.pipeline_id) {
            schedule_pipeline(&mut open, &mut sweep);
        }
        sweep.advance(at);
        match rec.pipeline_id {
            Some(pipeline) if dag => open.push(DagJob {
                pipeline,
                id: rec.job_id,
                stage: rec.stage.clone(),
                needs: rec.needs_given.then(|| rec.needs.clone()),
                created_ms: at,
                duration_ms: rec.duration_ms,
            }),
            _ => sweep.pending.push(Reverse((at, at + rec.duration_ms))),
        }
        if let Some(p) = rec.pipeline_id {
            *pipelines.entry(p).or_default() += 1;
        }
        let when = origin + jiff::SignedDuration::from_millis(at as i64);
        let local = when.to_zoned(zone.clone());
        let weekday = local.weekday().to_monday_zero_offset() as usize;
        per_hour[weekday * 24 + local.hour() as usize] += 1;
    }
    if let Some((p, core)) = &mut check
        && p.is_open()
    {
        p.check_and_forget(|id| reader.has_seen(id), core)?;
    }
    schedule_pipeline(&mut open, &mut sweep);
    sweep.advance(u64::MAX);
    let peak = sweep.peak;
    let q = |p: f64| if jobs == 0 { 0.0 } else { hist.value_at_quantile(p) as f64 / 1000.0 };
    let mut sizes: Vec<u64> = pipelines.into_values().collect();
    sizes.sort_unstable();
    let size_q =
        |p: f64| sizes.get(((sizes.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0);
    let end = span.max(1);
    Ok(TraceStats {
        jobs,
        pipelines: sizes.len() as u64,
        span_ms: span,
        per_hour_of_week: per_hour,
        duration_s: [q(0.5), q(0.9), q(0.95), q(0.99), max_ms as f64 / 1000.0],
        duration_mean_s: if jobs == 0 {
            0.0
        } else {
            (sum_ms as f64 / jobs as f64).round() / 1000.0
        },
        pipeline_size: [size_q(0.5), size_q(0.9), sizes.last().copied().unwrap_or(0)],
        peak_concurrency: peak,
        mean_concurrency: (busy_ms as f64 / end as f64 * 1000.0).round() / 1000.0,
    })
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

impl TraceStats {
    /// A report for the terminal.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "jobs       {} in {} pipelines over {:.1} days",
            self.jobs,
            self.pipelines,
            self.span_ms as f64 / 86_400_000.0
        );
        let d = self.duration_s;
        let _ = writeln!(
            s,
            "script     mean {:.1} s, p50 {:.1} s, p90 {:.1} s, p95 {:.1} s, p99 {:.1} s, max {:.1} s",
            self.duration_mean_s, d[0], d[1], d[2], d[3], d[4]
        );
        let p = self.pipeline_size;
        let _ =
            writeln!(s, "pipelines  jobs per pipeline: p50 {}, p90 {}, max {}", p[0], p[1], p[2]);
        let _ = writeln!(
            s,
            "capacity   with unlimited capacity at most {} jobs run at once (mean {:.2}): \
             fewer slots than that queue at the peak",
            self.peak_concurrency, self.mean_concurrency
        );
        let _ = writeln!(s, "jobs created per hour of the week:");
        let _ = writeln!(s, "      {}", (0..24).map(|h| format!("{h:>4}")).collect::<String>());
        for (day, name) in DAYS.iter().enumerate() {
            let row: String =
                (0..24).map(|h| format!("{:>4}", self.per_hour_of_week[day * 24 + h])).collect();
            let _ = writeln!(s, "  {name} {row}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_percentiles_pipelines_and_peak() {
        // Monday 2026-03-02 00:00 UTC is time 0. Jobs at 0, 10 and 20 s (pipeline 1, 60 s
        // each: all three overlap) and one at 1 h (pipeline 2).
        let csv =
            "job_id,pipeline_id,created_at,duration\n1,1,0,60\n2,1,10,60\n3,1,20,60\n4,2,3600,30\n";
        let reader = TraceReader::from_reader(csv.as_bytes(), "t.csv").unwrap();
        let start: jiff::Timestamp = "2026-03-02T00:00:00Z".parse().unwrap();
        let st = trace_stats(reader, start, &TimeZone::UTC).unwrap();
        assert_eq!((st.jobs, st.pipelines, st.peak_concurrency), (4, 2, 3));
        assert_eq!(st.per_hour_of_week[0], 3);
        assert_eq!(st.per_hour_of_week[1], 1);
        assert_eq!(st.pipeline_size, [3, 3, 3], "sizes 1 and 3: p50 and p90 round up to 3");
        assert_eq!(st.duration_s[4], 60.0);
        // In Seoul (UTC+9) the same jobs fall in Monday 09:00 and 10:00.
        let reader = TraceReader::from_reader(csv.as_bytes(), "t.csv").unwrap();
        let seoul = crate::periods::load_zone("Asia/Seoul").unwrap();
        let st = trace_stats(reader, start, &seoul).unwrap();
        assert_eq!((st.per_hour_of_week[9], st.per_hour_of_week[10]), (3, 1));
        assert!(st.text().contains("at most 3 jobs run at once"));
    }

    #[test]
    fn a_dag_trace_starts_jobs_when_their_predecessors_end() {
        // Pipeline 1 at 0: build 0→60; test a, b (needs build) 60→90; lint (stage test,
        // `needs: []`) 0→100. Pipeline 2 at 70: one job 70→80. Peak: a, b, lint and
        // pipeline 2's job = 4 at 70 s (all six at once if every job started at creation).
        let csv = "job_id,pipeline_id,stage,needs,created_at,duration
                   1,1,build,,0,60
2,1,test,1,0,30
3,1,test,1,0,30
4,1,test,[],0,100
                   5,2,build,,70,10
";
        let reader = TraceReader::from_reader(csv.as_bytes(), "t.csv").unwrap();
        let st =
            trace_stats(reader, "2026-03-02T00:00:00Z".parse().unwrap(), &TimeZone::UTC).unwrap();
        assert_eq!(st.peak_concurrency, 4);
        // Without needs the test stage waits for the whole build stage.
        let csv = "job_id,pipeline_id,stage,created_at,duration
1,1,build,0,60
2,1,build,0,10
3,1,test,0,5
4,1,test,0,5
";
        let reader = TraceReader::from_reader(csv.as_bytes(), "t.csv").unwrap();
        let st =
            trace_stats(reader, "2026-03-02T00:00:00Z".parse().unwrap(), &TimeZone::UTC).unwrap();
        assert_eq!(st.peak_concurrency, 2);
    }
}
