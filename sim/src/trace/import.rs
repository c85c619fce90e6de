//! `sim trace import`: converts GitLab's jobs API JSON into a fleetsim trace.
//!
//! # Input
//!
//! Each input file is one page of `GET /api/v4/projects/:id/jobs` or
//! `GET /api/v4/projects/:id/pipelines/:pipeline_id/jobs`: a JSON array of job objects. Several
//! files (one per page, or one per pipeline) are merged. Of each job only `id`, `status`,
//! `stage`, `name`, `created_at`, `started_at`, `finished_at`, `duration`, `queued_duration`,
//! `tag_list`, `pipeline.id`, `pipeline.project_id` and `retried` are read; every other field
//! (`user`, `commit`, `runner`, `artifacts`, …) is ignored. Times are RFC 3339.
//!
//! # Rules
//!
//! - A job that never started (`started_at` null: created, pending, skipped, manual, or
//!   canceled before a runner took it) is skipped and counted in
//!   [`ImportReport::not_started`]. A job still running (`finished_at` null) is skipped too,
//!   since its `duration` is only the time so far ([`ImportReport::unfinished`]).
//! - `queued_at = started_at − queued_duration`, the moment the job became pending (GitLab
//!   does not expose it); when `queued_duration` is null, `created_at` is used instead. The
//!   trace row's `created_at` is this `queued_at`, as an RFC 3339 time with milliseconds: the
//!   simulator has no stages yet, so the wait for earlier stages and `needs` is left out.
//! - The row's `duration` is the API `duration` minus the `prepare` estimate, floored at 0.
//!   GitLab's `duration` ("time spent running") **includes** executor preparation — machine
//!   boot, image pull, cache restore and upload, artifacts — which the simulator models
//!   itself; the API has no per-stage timings, so `--prepare-estimate` is the user's stated
//!   estimate of that part (default `0s`: nothing removed).
//! - `job_id` is `id`, `pipeline_id` and `project_id` come from `pipeline`, `tags` is
//!   `tag_list` joined with `;`.
//! - The same `id` seen again (a job in two pages, as happens when new jobs shift the pages
//!   while they are fetched) is dropped and counted in [`ImportReport::duplicates`]; the first
//!   copy is kept. Retried jobs (`retried: true`) are kept: they ran and took a runner.
//! - Rows are sorted by (`created_at`, `job_id`), as a trace must be.
//!
//! # Output
//!
//! A CSV with the columns `job_id,pipeline_id,project_id,name,stage,created_at,duration,tags`
//! (see [the trace format](super)); durations are seconds with three decimals.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Deserialize;

use crate::input_error::InputError;

/// The columns of an imported trace, in order.
pub const IMPORT_COLUMNS: [&str; 8] =
    ["job_id", "pipeline_id", "project_id", "name", "stage", "created_at", "duration", "tags"];

/// What an import read and wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Job objects read, over all files (duplicates included).
    pub read: usize,
    /// Rows written to the trace.
    pub written: usize,
    /// Jobs skipped because they never started (`started_at` null).
    pub not_started: usize,
    /// Jobs skipped because they were still running (`finished_at` null).
    pub unfinished: usize,
    /// Jobs dropped because their `id` was seen before.
    pub duplicates: usize,
}

impl ImportReport {
    /// A one-line summary, e.g.
    /// `read 8 jobs: wrote 5, skipped 1 never started, 1 still running, 1 duplicate`.
    pub fn text(&self) -> String {
        let mut s = format!("read {} jobs: wrote {}", self.read, self.written);
        let _ = write!(s, ", skipped {} never started", self.not_started);
        let _ = write!(s, ", {} still running", self.unfinished);
        let _ = write!(
            s,
            ", {} duplicate{}",
            self.duplicates,
            if self.duplicates == 1 { "" } else { "s" }
        );
        s
    }
}

/// The fields of a job object that the import uses (GitLab's `Ci::Job` entity).
#[derive(Debug, Deserialize)]
struct RawJob {
    id: Option<u64>,
    #[allow(dead_code)]
    status: Option<String>,
    stage: Option<String>,
    name: Option<String>,
    created_at: Option<String>,
    started_at: Option<String>,
    finished_at: Option<String>,
    duration: Option<f64>,
    queued_duration: Option<f64>,
    tag_list: Option<Vec<String>>,
    pipeline: Option<RawPipeline>,
    #[allow(dead_code)]
    retried: Option<bool>,
}

/// The job's `pipeline` object.
#[derive(Debug, Deserialize)]
struct RawPipeline {
    id: Option<u64>,
    project_id: Option<u64>,
}

/// One trace row, before sorting.
struct Row {
    queued_at_ms: i64,
    job_id: u64,
    pipeline_id: Option<u64>,
    project_id: Option<u64>,
    name: String,
    stage: String,
    duration_ms: u64,
    tags: String,
}

/// Reads the GitLab jobs JSON files `inputs` and returns the trace CSV text and a report.
/// `prepare_ms` is subtracted from each job's `duration` (floored at 0); see the
/// [module documentation](self) for the rules.
///
/// Errors: a file that cannot be read; malformed JSON or a field of the wrong type (file,
/// line and column from the parser); a job without `id`, or with a time that is not RFC 3339
/// or a negative `duration`/`queued_duration` (file, the job's index in the array and its id,
/// and the key).
pub fn import_jobs(
    inputs: &[PathBuf],
    prepare_ms: u64,
) -> Result<(String, ImportReport), InputError> {
    let mut report = ImportReport::default();
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    for path in inputs {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::file(path, format!("cannot read the jobs file: {e}")))?;
        let jobs: Vec<RawJob> = serde_json::from_str(&text).map_err(|e| {
            InputError::file(
                path,
                format!(
                    "expected a JSON array of GitLab job objects (GET /projects/:id/jobs): {e}"
                ),
            )
            .at(e.line().max(1), e.column().max(1))
        })?;
        for (index, job) in jobs.into_iter().enumerate() {
            report.read += 1;
            if let Some(row) = convert(path, index, job, prepare_ms, &mut seen, &mut report)? {
                rows.push(row);
            }
        }
    }
    rows.sort_by_key(|r| (r.queued_at_ms, r.job_id));
    report.written = rows.len();
    Ok((write_csv(&rows), report))
}

/// Checks one job and turns it into a row, or `None` (counted in `report`) when it is skipped.
fn convert(
    path: &Path,
    index: usize,
    job: RawJob,
    prepare_ms: u64,
    seen: &mut BTreeSet<u64>,
    report: &mut ImportReport,
) -> Result<Option<Row>, InputError> {
    let Some(id) = job.id else {
        return Err(InputError::file(
            path,
            format!("job at index {index} of the array has no `id` (expected an integer)"),
        )
        .key("id"));
    };
    let what = format!("job {id} (index {index})");
    let time = |key: &str, value: &Option<String>| -> Result<Option<Timestamp>, InputError> {
        value
            .as_deref()
            .map(|v| {
                v.parse::<Timestamp>().map_err(|e| {
                    InputError::file(
                        path,
                        format!(
                            "{what}: expected an RFC 3339 time such as \
                             `2026-03-02T09:00:00.000Z`, found `{v}`: {e}"
                        ),
                    )
                    .key(key)
                })
            })
            .transpose()
    };
    let seconds = |key: &str, value: Option<f64>| -> Result<Option<u64>, InputError> {
        match value {
            None => Ok(None),
            Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(seconds_to_ms(s))),
            Some(s) => Err(InputError::file(
                path,
                format!("{what}: expected non-negative seconds, found `{s}`"),
            )
            .key(key)),
        }
    };
    let created_at = time("created_at", &job.created_at)?;
    let started_at = time("started_at", &job.started_at)?;
    let finished_at = time("finished_at", &job.finished_at)?;
    let duration_ms = seconds("duration", job.duration)?;
    let queued_ms = seconds("queued_duration", job.queued_duration)?;

    if !seen.insert(id) {
        report.duplicates += 1;
        return Ok(None);
    }
    let Some(started_at) = started_at else {
        report.not_started += 1;
        return Ok(None);
    };
    if finished_at.is_none() {
        report.unfinished += 1;
        return Ok(None);
    }
    let queued_at_ms = match (queued_ms, created_at) {
        (Some(q), _) => started_at.as_millisecond() - i64::try_from(q).unwrap_or(i64::MAX / 2),
        (None, Some(c)) => c.as_millisecond(),
        (None, None) => {
            return Err(InputError::file(
                path,
                format!(
                    "{what}: has neither `queued_duration` nor `created_at`, so the moment \
                     it was queued is unknown"
                ),
            )
            .key("created_at"));
        }
    };
    let duration_ms = match (duration_ms, finished_at) {
        (Some(d), _) => d,
        // `duration` is null only for jobs that did not start; derive it if a page lacks it.
        (None, Some(f)) => {
            u64::try_from(f.as_millisecond() - started_at.as_millisecond()).unwrap_or(0)
        }
        (None, None) => unreachable!("unfinished jobs are skipped above"),
    };
    let pipeline = job.pipeline.as_ref();
    Ok(Some(Row {
        queued_at_ms,
        job_id: id,
        pipeline_id: pipeline.and_then(|p| p.id),
        project_id: pipeline.and_then(|p| p.project_id),
        name: job.name.unwrap_or_default(),
        stage: job.stage.unwrap_or_default(),
        duration_ms: duration_ms.saturating_sub(prepare_ms),
        tags: job.tag_list.unwrap_or_default().join(";"),
    }))
}

/// Seconds (finite, ≥ 0) to the nearest millisecond.
fn seconds_to_ms(s: f64) -> u64 {
    // Saturating float-to-int conversion; job times are far below u64::MAX ms.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ms = (s * 1000.0).round() as u64;
    ms
}

/// The rows as CSV text with the [`IMPORT_COLUMNS`] header.
fn write_csv(rows: &[Row]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let cell = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    w.write_record(IMPORT_COLUMNS).expect("writing to memory");
    for r in rows {
        let created = Timestamp::from_millisecond(r.queued_at_ms)
            .map(|t| format!("{t:.3}"))
            .unwrap_or_else(|_| r.queued_at_ms.to_string());
        let duration = format!("{}.{:03}", r.duration_ms / 1000, r.duration_ms % 1000);
        w.write_record([
            r.job_id.to_string().as_str(),
            &cell(r.pipeline_id),
            &cell(r.project_id),
            &r.name,
            &r.stage,
            &created,
            &duration,
            &r.tags,
        ])
        .expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("the cells are UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{TraceReader, TraceRecord};

    fn fixtures() -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        vec![dir.join("gitlab-jobs-page1.json"), dir.join("gitlab-jobs-page2.json")]
    }

    /// Hand-computed: 5001 has no `queued_duration`, so its `created_at` (09:00:00.000) is
    /// used; 5002 started 09:00:41.000 after 0.8 s queued; 5003 09:01:30.000 − 2.0 s;
    /// 5004 09:10:12.100 − 12.1 s; 5005 09:12:05.250 − 3.75 s. 5006 (manual) never started,
    /// 5007 is still running, and 5003 is in both pages.
    const EXPECTED: &str = "\
job_id,pipeline_id,project_id,name,stage,created_at,duration,tags
5001,1001,42,compile,build,2026-03-02T09:00:00.000Z,35.679,docker;linux
5002,1001,42,lint,test,2026-03-02T09:00:40.200Z,35.200,
5003,1001,42,lint,test,2026-03-02T09:01:28.000Z,40.000,
5004,1002,42,build,build,2026-03-02T09:10:00.000Z,91.500,docker
5005,1002,42,rspec 1/2,test,2026-03-02T09:12:01.500Z,240.250,docker;linux
";

    #[test]
    fn fixtures_import_to_the_expected_trace() {
        let (csv, report) = import_jobs(&fixtures(), 0).unwrap();
        assert_eq!(csv, EXPECTED);
        assert_eq!(
            report,
            ImportReport { read: 8, written: 5, not_started: 1, unfinished: 1, duplicates: 1 }
        );
        assert_eq!(
            report.text(),
            "read 8 jobs: wrote 5, skipped 1 never started, 1 still running, 1 duplicate"
        );
    }

    #[test]
    fn prepare_estimate_is_subtracted_and_floored_at_zero() {
        let (csv, _) = import_jobs(&fixtures(), 36_000).unwrap();
        let durations: Vec<&str> =
            csv.lines().skip(1).map(|l| l.split(',').nth(6).unwrap()).collect();
        assert_eq!(durations, ["0.000", "0.000", "4.000", "55.500", "204.250"]);
    }

    #[test]
    fn the_trace_reads_back_and_has_stats() {
        let (csv, _) = import_jobs(&fixtures(), 0).unwrap();
        let mut reader = TraceReader::from_reader(csv.as_bytes(), "t.csv").unwrap();
        assert!(reader.warnings().is_empty());
        assert_eq!(reader.origin(), Some("2026-03-02T09:00:00Z".parse().unwrap()));
        let mut rec = TraceRecord::new();
        let mut got = Vec::new();
        while reader.read_next(&mut rec).unwrap() {
            got.push((rec.job_id, rec.pipeline_id, rec.created_at_ms, rec.duration_ms));
        }
        assert_eq!(got[0], (5001, Some(1001), 0, 35_679));
        assert_eq!(got[4], (5005, Some(1002), 721_500, 240_250));
        assert_eq!(got.len(), 5);

        let reader = TraceReader::from_reader(csv.as_bytes(), "t.csv").unwrap();
        let stats = crate::trace::stats::trace_stats(
            reader,
            "2026-01-01T00:00:00Z".parse().unwrap(),
            &jiff::tz::TimeZone::UTC,
        )
        .unwrap();
        assert!(!stats.text().is_empty());
    }

    fn import_text(text: &str) -> Result<(String, ImportReport), InputError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.json");
        std::fs::write(&path, text).unwrap();
        import_jobs(&[path], 0)
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let e = import_text("[\n  {\"id\": 1,\n   \"name\": }\n]").unwrap_err();
        assert!(e.file.ends_with("jobs.json"));
        assert_eq!(e.line, Some(3));
        assert!(e.column.is_some());
        assert!(e.to_string().starts_with(&format!("{}:3:", e.file.display())), "{e}");
        let e = import_text("{\"message\": \"401 Unauthorized\"}").unwrap_err();
        assert!(e.message.contains("JSON array"), "{e}");
    }

    #[test]
    fn a_job_without_id_names_the_key_and_index() {
        let e = import_text("[{\"id\": 1}, {\"name\": \"x\"}]").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("id"));
        assert!(e.message.contains("index 1"), "{e}");
    }

    #[test]
    fn a_bad_time_names_the_job_and_key() {
        let e = import_text(
            "[{\"id\": 9, \"started_at\": \"yesterday\", \"finished_at\": null, \"duration\": 1}]",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("started_at"));
        assert!(e.message.contains("job 9 (index 0)"), "{e}");
        assert!(e.message.contains("`yesterday`"), "{e}");
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let e = import_jobs(&[PathBuf::from("/nonexistent/jobs.json")], 0).unwrap_err();
        assert!(e.message.contains("cannot read"), "{e}");
    }
}
