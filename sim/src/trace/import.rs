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
//! - **Pipelines.** The trace is a [DAG trace](super::pipelines): each row's `created_at` is
//!   its pipeline's creation — `pipeline.created_at` where the API gives it (the earliest
//!   value among the pipeline's jobs), else the earliest job `created_at` of the pipeline
//!   (GitLab creates a pipeline's jobs with it) — and the simulator releases each stage when
//!   the earlier ones have finished, so queueing delays later stages as it does in GitLab.
//!   Times are RFC 3339 with milliseconds.
//! - **Stage order.** The API does not give the position of a stage. GitLab creates a
//!   pipeline's jobs stage by stage, so ids grow with the stage: stages are ordered by the
//!   smallest job id in each. Rows come pipeline by pipeline (by creation, then pipeline
//!   id), stage by stage, then by job id, as a DAG trace must be.
//! - **Needs** are not in the REST job entity, so none are written: every job waits for the
//!   earlier stages of its pipeline. Add a `needs` column by hand (from `.gitlab-ci.yml`) to
//!   replay a DAG.
//! - `queued_at = started_at − queued_duration` (when `queued_duration` is null,
//!   `created_at`) is still computed: it orders and places jobs *without* a `pipeline`, which
//!   become rows without `pipeline_id`, pending at that `queued_at` as in a flat trace.
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
//! - A retried job and its retry are both kept (both took a runner); the next stage waits
//!   for both, which the real pipeline also did, since the retry ran after the failure.
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
use crate::trace::record::{MAX_TRACE_MS, MAX_TRACE_YEARS};

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
    created_at: Option<String>,
}

/// One trace row, before sorting.
struct Row {
    queued_at_ms: i64,
    /// The job's `created_at`, or `pipeline.created_at` if earlier (ms).
    created_ms: Option<i64>,
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
        let text = crate::input_file::read_text(path, "the jobs file")?;
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
    order_by_pipeline(&mut rows);
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
                crate::trace::record::parse_instant(v).map_err(|e| {
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
            // The trace reader's bound (10 years), checked here so that no import writes a
            // trace the reader then refuses.
            Some(s) if s.is_finite() && s >= 0.0 && s * 1000.0 <= MAX_TRACE_MS as f64 => {
                Ok(Some(seconds_to_ms(s)))
            }
            Some(s) if s.is_finite() && s >= 0.0 => Err(InputError::file(
                path,
                format!(
                    "{what}: `{s}` seconds is more than {MAX_TRACE_YEARS} years, the longest \
                     time fleetsim simulates"
                ),
            )
            .key(key)),
            Some(s) => Err(InputError::file(
                path,
                format!("{what}: expected non-negative seconds, found `{s}`"),
            )
            .key(key)),
        }
    };
    let created_at = time("created_at", &job.created_at)?;
    let pipeline_created =
        time("pipeline.created_at", &job.pipeline.as_ref().and_then(|p| p.created_at.clone()))?;
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
        (Some(q), _) => {
            let queued = started_at.as_millisecond() - i64::try_from(q).unwrap_or(i64::MAX / 2);
            // started_at − queued_duration before 1970 cannot be a real queue time.
            if queued < 0 {
                return Err(InputError::file(
                    path,
                    format!(
                        "{what}: started_at − queued_duration falls before 1970; \
                         queued_duration is too large"
                    ),
                )
                .key("queued_duration"));
            }
            queued
        }
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
    let created_ms = match (pipeline_created, created_at) {
        (Some(p), Some(c)) => Some(p.as_millisecond().min(c.as_millisecond())),
        (p, c) => p.or(c).map(|t| t.as_millisecond()),
    };
    Ok(Some(Row {
        queued_at_ms,
        created_ms,
        job_id: id,
        pipeline_id: pipeline.and_then(|p| p.id),
        project_id: pipeline.and_then(|p| p.project_id),
        name: job.name.unwrap_or_default(),
        stage: job.stage.unwrap_or_default(),
        duration_ms: duration_ms.saturating_sub(prepare_ms),
        tags: job.tag_list.unwrap_or_default().join(";"),
    }))
}

/// Gives every row of a pipeline the pipeline's creation and sorts the rows pipeline by
/// pipeline, stage by stage (stages by their smallest job id), then by job id. Rows without
/// a pipeline keep their `queued_at` and sort among the pipelines by it.
fn order_by_pipeline(rows: &mut [Row]) {
    use std::collections::BTreeMap;
    // Pipeline → (creation, stage → smallest job id).
    let mut pipelines: BTreeMap<u64, (i64, BTreeMap<&str, u64>)> = BTreeMap::new();
    for r in rows.iter() {
        if let Some(p) = r.pipeline_id {
            let created = r.created_ms.unwrap_or(r.queued_at_ms);
            let entry = pipelines.entry(p).or_insert((created, BTreeMap::new()));
            entry.0 = entry.0.min(created);
            let first = entry.1.entry(r.stage.as_str()).or_insert(r.job_id);
            *first = (*first).min(r.job_id);
        }
    }
    let keys: Vec<(i64, u64, u64)> = rows
        .iter()
        .map(|r| match r.pipeline_id {
            Some(p) => {
                let (created, stages) = &pipelines[&p];
                (*created, p, stages[r.stage.as_str()])
            }
            None => (r.queued_at_ms, 0, 0),
        })
        .collect();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (keys[i], rows[i].job_id));
    let created: Vec<i64> = order.iter().map(|&i| keys[i].0).collect();
    // Apply the permutation, then write the pipeline creation into `queued_at_ms`, which is
    // what the CSV prints as `created_at`.
    let mut sorted: Vec<Row> = order.iter().map(|&i| rows[i].take()).collect();
    for (row, created) in sorted.iter_mut().zip(created) {
        row.queued_at_ms = created;
    }
    for (slot, row) in rows.iter_mut().zip(sorted) {
        *slot = row;
    }
}

impl Row {
    /// Moves the row out, leaving an empty one.
    fn take(&mut self) -> Row {
        Row {
            queued_at_ms: self.queued_at_ms,
            created_ms: self.created_ms,
            job_id: self.job_id,
            pipeline_id: self.pipeline_id,
            project_id: self.project_id,
            name: std::mem::take(&mut self.name),
            stage: std::mem::take(&mut self.stage),
            duration_ms: self.duration_ms,
            tags: std::mem::take(&mut self.tags),
        }
    }
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

    /// Hand-computed: both pipelines give `pipeline.created_at` (1001 at 09:00:00.000, 1002
    /// at 09:10:00.000), which every row of the pipeline takes; stage `build` has the
    /// smallest id in each, so it comes first. Durations are the API's. 5006 (manual) never
    /// started, 5007 is still running, and 5003 is in both pages.
    const EXPECTED: &str = "\
job_id,pipeline_id,project_id,name,stage,created_at,duration,tags
5001,1001,42,compile,build,2026-03-02T09:00:00.000Z,35.679,docker;linux
5002,1001,42,lint,test,2026-03-02T09:00:00.000Z,35.200,
5003,1001,42,lint,test,2026-03-02T09:00:00.000Z,40.000,
5004,1002,42,build,build,2026-03-02T09:10:00.000Z,91.500,docker
5005,1002,42,rspec 1/2,test,2026-03-02T09:10:00.000Z,240.250,docker;linux
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
        assert_eq!(got[4], (5005, Some(1002), 600_000, 240_250));
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
    fn stages_are_ordered_by_their_smallest_job_id_and_jobs_without_pipeline_keep_queued_at() {
        // Pipeline 7 (no pipeline.created_at: the earliest job created_at, 10:00:00) lists
        // its `test` job first and with the later queue time, but `build` has the smaller
        // id. Job 3 has no pipeline: it is placed at its queued_at, 10:00:30 − 5 s.
        let job = |id: u64, stage: &str, created: &str, started: &str, pipeline: &str| {
            format!(
                r#"{{"id": {id}, "stage": "{stage}", "name": "{stage}", "created_at": "{created}",
                "started_at": "{started}", "finished_at": "2026-03-02T11:00:00Z", "duration": 10,
                "queued_duration": 5, "pipeline": {pipeline}}}"#
            )
        };
        let p7 = r#"{"id": 7, "project_id": 1}"#;
        let text = format!(
            "[{}, {}, {}]",
            job(2, "test", "2026-03-02T10:00:01Z", "2026-03-02T10:05:00Z", p7),
            job(1, "build", "2026-03-02T10:00:00Z", "2026-03-02T10:00:10Z", p7),
            job(3, "lint", "2026-03-02T10:00:00Z", "2026-03-02T10:00:30Z", "null"),
        );
        let (csv, _) = import_text(&text).unwrap();
        assert_eq!(
            csv,
            "job_id,pipeline_id,project_id,name,stage,created_at,duration,tags
1,7,1,build,build,2026-03-02T10:00:00.000Z,10.000,
2,7,1,test,test,2026-03-02T10:00:00.000Z,10.000,
3,,,lint,lint,2026-03-02T10:00:25.000Z,10.000,
"
        );
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
