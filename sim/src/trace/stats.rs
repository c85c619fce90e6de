//! `sim trace stats`: what is in a trace, in one streaming pass — jobs per hour of the week,
//! script-time percentiles, pipeline sizes, and the concurrency the trace needs when every
//! job starts the moment it is created (no capacity limit): the lower bound below which no
//! fleet can push pending time, and the size at which one would never queue.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::io::Read;

use hdrhistogram::Histogram;
use jiff::tz::TimeZone;

use super::{TraceReader, TraceRecord};
use crate::input_error::InputError;

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
    /// Most jobs running at once if each started when created.
    pub peak_concurrency: u64,
    /// Mean jobs running over the trace span, if each started when created.
    pub mean_concurrency: f64,
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
    let mut running: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
    let (mut jobs, mut sum_ms, mut busy_ms, mut peak, mut span, mut max_ms) =
        (0u64, 0u128, 0u128, 0u64, 0u64, 0u64);
    while reader.read_next(&mut rec)? {
        jobs += 1;
        let at = rec.created_at_ms;
        span = span.max(at);
        hist.saturating_record(rec.duration_ms);
        max_ms = max_ms.max(rec.duration_ms);
        sum_ms += u128::from(rec.duration_ms);
        busy_ms += u128::from(rec.duration_ms);
        while running.peek().is_some_and(|Reverse(end)| *end <= at) {
            running.pop();
        }
        running.push(Reverse(at + rec.duration_ms));
        peak = peak.max(running.len() as u64);
        if let Some(p) = rec.pipeline_id {
            *pipelines.entry(p).or_default() += 1;
        }
        let when = origin + jiff::SignedDuration::from_millis(at as i64);
        let local = when.to_zoned(zone.clone());
        let weekday = local.weekday().to_monday_zero_offset() as usize;
        per_hour[weekday * 24 + local.hour() as usize] += 1;
    }
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
}
