//! Pipelines: the DAG of `stage` and `needs` that decides when a job becomes pending.
//!
//! GitLab creates every job of a pipeline when the pipeline is created (status `created`) and
//! moves a job to `pending` — where runners can see it — only when its predecessors have
//! finished. fleetsim follows that when the trace has a `stage` or a `needs` column (a *DAG
//! trace*); a trace with neither keeps the flat behaviour: every job is pending at its
//! `created_at`.
//!
//! # Rules of a DAG trace
//!
//! - **Pipelines.** The rows with the same `pipeline_id` are one pipeline. They must be
//!   consecutive in the file (the reader streams, and only holds the pipelines still running)
//!   and share one `created_at`, the pipeline's creation. A row without `pipeline_id` is a
//!   job on its own, pending at its `created_at`; it may not have `needs`.
//! - **Stages.** A pipeline's stages are ordered by their first appearance among its rows,
//!   and the rows must be grouped stage by stage (a stage may not come back after a later
//!   one). An empty `stage` cell is GitLab's default stage, `test`.
//! - **Without `needs`** (empty cell) a job waits for *every* job of *all* earlier stages of
//!   its pipeline; the jobs of the first stage are pending at once.
//! - **With `needs`** (`3;4`) a job waits only for the listed jobs, which must be in the same
//!   pipeline and in the same or an earlier stage (as GitLab requires). The cell `[]` is
//!   GitLab's `needs: []`: the job is pending at once, whatever its stage. Repeated ids count
//!   once.
//! - **Release.** A job is released (becomes pending) at the instant its last predecessor
//!   finishes. Released jobs are handed to the core at that instant, right after the finish
//!   that released them (see [the drivers' ordering rule](fleetsim_core::drive)); jobs
//!   released by the same finish come in file order.
//! - **Failure.** A job *fails* when its last attempt fails (its `JobRecord::failed` is true
//!   and no retry is left: no machine could be created, its machine was lost). Its
//!   dependants are *skipped* and never run: the jobs that `need` it and, when it has no
//!   `needs`-free successors yet released, every job without `needs` in a later stage. A
//!   skipped job counts as failed for its own dependants, transitively. Jobs that do not
//!   depend on the failure go on (`allow_failure`, `when: always` and manual jobs are not
//!   modelled).
//! - **Errors** (exit 2, naming the file, the line and the jobs): a pipeline interrupted by
//!   another, a `created_at` differing within a pipeline, a stage coming back, `needs` naming
//!   an unknown job or one of another pipeline, `needs` naming a job of a later stage, and
//!   cycles of `needs` (the jobs of the cycle are listed).
//!
//! # Who does what
//!
//! This module *reads* pipelines: it checks the rows of a pipeline as they stream in and hands
//! the pipeline whole to the core's [`fleetsim_core::pipelines::Pipelines`], GitLab's side,
//! which releases and skips its jobs as they end and sets each record's `created` to the
//! pipeline's creation (`created → queued` is the wait for predecessors, `queued → started`
//! stays the pending time).
//!
//! # Memory
//!
//! Only live pipelines are held: a pipeline is read whole (up to the first row of the next
//! one) when its first job is due, and dropped by the core when its last job has finished or
//! been skipped. The reader's buffers are reused, so a steady state allocates nothing per job.

use std::path::{Path, PathBuf};

use fleetsim_core::pipelines::{NewJob, Pipelines};
use fleetsim_core::{JobSpec, SimTime};

use super::{IdSet, TraceRecord};
use crate::input_error::InputError;

/// GitLab's stage of a job that names none.
pub const DEFAULT_STAGE: &str = "test";

/// A job outside any pipeline may not name `needs`: they name jobs of its own pipeline. The one
/// rule for every reader of a trace (`sim run`'s job source and `sim trace stats`).
pub fn check_needs_have_a_pipeline(record: &TraceRecord, path: &Path) -> Result<(), InputError> {
    if record.pipeline_id.is_none() && !record.needs.is_empty() {
        return Err(InputError::file(
            path,
            format!(
                "job {} has needs but no pipeline_id; needs name jobs of its pipeline",
                record.job_id
            ),
        )
        .at_line(record.line)
        .key("needs"));
    }
    Ok(())
}

/// Reads the pipelines of a DAG trace one at a time and checks them (stages, needs, cycles)
/// before the core takes them. Knows nothing of files beyond the path its errors name.
#[derive(Debug)]
pub struct PipelineReader {
    path: PathBuf,
    /// Whether a pipeline is being read.
    open: bool,
    /// The open pipeline: its id, creation and first line.
    id: u64,
    created: SimTime,
    line: usize,
    /// Its jobs in file order; `needs` ranges point into `need_ids` (then `needs`).
    jobs: Vec<NewJob>,
    /// The line of each job.
    lines: Vec<usize>,
    /// Stage names in order; the first `stages_in_use` belong to the open pipeline (the rest
    /// are kept for reuse).
    stages: Vec<String>,
    stages_in_use: usize,
    /// The `needs` of every job as job ids, then resolved to indexes in `needs`.
    need_ids: Vec<u64>,
    needs: Vec<u32>,
    /// Pipeline ids met so far (a pipeline may not come back).
    seen: IdSet,
    /// Scratch: (job id, index) of the pipeline being sealed, sorted.
    scratch_ids: Vec<(u64, u32)>,
}

impl PipelineReader {
    /// No pipeline yet; errors name `path`.
    pub fn new(path: impl AsRef<Path>) -> PipelineReader {
        PipelineReader {
            path: path.as_ref().to_path_buf(),
            open: false,
            id: 0,
            created: SimTime::ZERO,
            line: 0,
            jobs: Vec::new(),
            lines: Vec::new(),
            stages: Vec::new(),
            stages_in_use: 0,
            need_ids: Vec::new(),
            needs: Vec::new(),
            seen: IdSet::new(),
            scratch_ids: Vec::new(),
        }
    }

    fn error(&self, line: usize, key: &str, message: String) -> InputError {
        InputError::file(&self.path, message).at_line(line).key(key)
    }

    /// Starts reading pipeline `record.pipeline_id` with its first row.
    pub fn begin(&mut self, record: &TraceRecord, spec: JobSpec) -> Result<(), InputError> {
        assert!(!self.open, "a pipeline is already open");
        let id = record.pipeline_id.expect("a pipeline row");
        if self.seen.contains(id) {
            return Err(self.error(
                record.line,
                "pipeline_id",
                format!(
                    "pipeline {id} comes back after other rows; in a trace with stages or needs, \
                     the rows of a pipeline must be consecutive"
                ),
            ));
        }
        self.seen.insert(id);
        self.id = id;
        self.created = SimTime(record.created_at_ms);
        self.line = record.line;
        self.jobs.clear();
        self.lines.clear();
        self.stages_in_use = 0;
        self.need_ids.clear();
        self.open = true;
        self.add(record, spec)
    }

    /// Whether a pipeline is being read.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Whether `record` continues the open pipeline.
    pub fn continues(&self, record: &TraceRecord) -> bool {
        self.open && record.pipeline_id == Some(self.id)
    }

    /// Adds a row of the open pipeline.
    pub fn add(&mut self, record: &TraceRecord, spec: JobSpec) -> Result<(), InputError> {
        assert!(self.open, "an open pipeline");
        if record.created_at_ms != self.created.as_ms() {
            return Err(self.error(
                record.line,
                "created_at",
                format!(
                    "job {} has created_at {} s but its pipeline {} was created at {} s (line \
                     {}); in a trace with stages or needs, every job of a pipeline is created \
                     with the pipeline",
                    record.job_id,
                    record.created_at_ms as f64 / 1000.0,
                    self.id,
                    self.created.as_ms() as f64 / 1000.0,
                    self.line
                ),
            ));
        }
        let stage_name = if record.stage.is_empty() { DEFAULT_STAGE } else { &record.stage };
        let in_use = self.stages_in_use;
        let current = in_use.checked_sub(1);
        let stage = match current {
            Some(c) if self.stages[c] == stage_name => c,
            _ => {
                if let Some(earlier) = self.stages[..in_use].iter().position(|s| s == stage_name) {
                    return Err(self.error(
                        record.line,
                        "stage",
                        format!(
                            "job {} is in stage `{stage_name}`, which pipeline {} left for stage \
                             `{}` before; list a pipeline's jobs stage by stage (stage order is \
                             the order of first appearance; `{stage_name}` is stage {})",
                            record.job_id,
                            self.id,
                            self.stages[in_use - 1],
                            earlier + 1
                        ),
                    ));
                }
                if self.stages.len() == in_use {
                    self.stages.push(String::new());
                }
                self.stages[in_use].clear();
                self.stages[in_use].push_str(stage_name);
                self.stages_in_use += 1;
                in_use
            }
        };
        let needs_at = self.need_ids.len() as u32;
        for &n in &record.needs {
            if !self.need_ids[needs_at as usize..].contains(&n) {
                self.need_ids.push(n);
            }
        }
        let needs_len = self.need_ids.len() as u32 - needs_at;
        self.jobs.push(NewJob {
            spec,
            stage: stage as u32,
            needs: record.needs_given.then_some((needs_at, needs_len)),
        });
        self.lines.push(record.line);
        Ok(())
    }

    /// Ends reading the open pipeline: resolves and checks its `needs` (unknown ids, later
    /// stages, cycles), hands it to `pipelines` and pushes the jobs pending at once onto
    /// `roots`, in file order. `has_seen(id)` tells whether a job id was met earlier in the
    /// trace.
    pub fn seal(
        &mut self,
        has_seen: impl Fn(u64) -> bool,
        pipelines: &mut Pipelines,
        roots: &mut Vec<(SimTime, JobSpec)>,
    ) -> Result<(), InputError> {
        self.resolve(has_seen)?;
        pipelines
            .insert(self.created, &self.jobs, &self.needs, roots)
            .map_err(|cycle| self.cycle_error(&cycle))
    }

    /// Checks the open pipeline as [`seal`](Self::seal) does, then forgets it: for readers
    /// that only look at a trace (`sim trace stats`) and must refuse what a run refuses.
    pub fn check_and_forget(
        &mut self,
        has_seen: impl Fn(u64) -> bool,
        pipelines: &mut Pipelines,
    ) -> Result<(), InputError> {
        self.resolve(has_seen)?;
        pipelines.check(&self.jobs, &self.needs).map_err(|cycle| self.cycle_error(&cycle))
    }

    /// Closes the open pipeline and turns its `needs` into job indexes, refusing needs on
    /// unknown jobs, on jobs of other pipelines and on later stages.
    fn resolve(&mut self, has_seen: impl Fn(u64) -> bool) -> Result<(), InputError> {
        assert!(self.open, "an open pipeline");
        self.open = false;
        self.scratch_ids.clear();
        self.scratch_ids.extend(self.jobs.iter().enumerate().map(|(i, j)| (j.spec.id.0, i as u32)));
        self.scratch_ids.sort_unstable();
        // Each need's job index, at the same position as its id in `need_ids`.
        self.needs.clear();
        self.needs.resize(self.need_ids.len(), u32::MAX);
        for (i, job) in self.jobs.iter().enumerate() {
            let Some((at, len)) = job.needs else { continue };
            for k in at..at + len {
                let need = self.need_ids[k as usize];
                let Ok(found) = self.scratch_ids.binary_search_by_key(&need, |&(id, _)| id) else {
                    let elsewhere = if has_seen(need) {
                        format!("job {need} belongs to another pipeline")
                    } else {
                        format!("no job {need} precedes it in the trace or is in its pipeline")
                    };
                    let message = format!(
                        "job {} needs job {need}, which is not in its pipeline {}: {elsewhere}; \
                         needs must name jobs of the same pipeline",
                        job.spec.id, self.id
                    );
                    return Err(self.error(self.lines[i], "needs", message));
                };
                let n = self.scratch_ids[found].1;
                let dep = self.jobs[n as usize];
                if dep.stage > job.stage {
                    let message = format!(
                        "job {} (stage `{}`) needs job {need} (line {}), which is in the later \
                         stage `{}`; GitLab allows needs on the same or earlier stages only",
                        job.spec.id,
                        self.stages[job.stage as usize],
                        self.lines[n as usize],
                        self.stages[dep.stage as usize]
                    );
                    return Err(self.error(self.lines[i], "needs", message));
                }
                self.needs[k as usize] = n;
            }
        }
        Ok(())
    }

    /// The error for a cycle of `needs` (job indexes, each needing the next).
    fn cycle_error(&self, cycle: &[u32]) -> InputError {
        let mut names: Vec<String> = cycle
            .iter()
            .map(|&c| {
                format!("job {} (line {})", self.jobs[c as usize].spec.id, self.lines[c as usize])
            })
            .collect();
        // The walk goes from a job to what it needs; say it in the order "needs".
        names.push(names[0].clone());
        let first = self.lines[cycle[0] as usize];
        self.error(
            first,
            "needs",
            format!("pipeline {} has a cycle of needs: {}", self.id, names.join(" needs ")),
        )
    }
}
