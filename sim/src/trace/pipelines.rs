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
//!   that released them (see [the engine's ordering rule](crate::engine)); jobs released by
//!   the same finish come in file order.
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
//! # Times in the records
//!
//! The core learns of a job when it is released, so it sets `JobRecord::queued` (and
//! `created`) to the release. [`Pipelines::ended`] then sets `created` to the pipeline's
//! creation: `created → queued` is the wait for predecessors, `queued → started` stays the
//! pending time.
//!
//! # Memory
//!
//! Only live pipelines are held: a pipeline is read whole (up to the first row of the next
//! one) when its first job is due, and dropped when its last job has finished or been
//! skipped. Pipeline slots and their buffers are reused, so a steady state allocates nothing
//! per job.

use std::path::{Path, PathBuf};

use fleetsim_core::{JobRecord, JobSpec, SimTime};
use indexmap::IndexMap;

use super::{IdSet, TraceRecord};
use crate::input_error::InputError;

/// GitLab's stage of a job that names none.
pub const DEFAULT_STAGE: &str = "test";

/// Where a job of a live pipeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Created, waiting for predecessors.
    Held,
    /// Handed to the core.
    Released,
    /// Finished successfully.
    Done,
    /// Failed, or skipped: its dependants are skipped.
    Failed,
}

/// One job of a live pipeline.
#[derive(Debug, Clone, Copy)]
struct Node {
    spec: JobSpec,
    line: usize,
    stage: u32,
    /// Whether the job has `needs` (then the stage rule does not apply to it).
    has_needs: bool,
    /// Its `needs` in the pipeline's `need_ids` (ids while reading, then indexes).
    needs_at: u32,
    needs_len: u32,
    /// Its dependants through `needs` in the pipeline's `dependants`.
    dependants_at: u32,
    dependants_len: u32,
    /// Predecessors through `needs` not yet finished.
    waiting: u32,
    state: State,
}

/// A pipeline being read or running. Its vectors are kept when the slot is reused.
#[derive(Debug, Default)]
struct Pipeline {
    id: u64,
    created: SimTime,
    /// The line of its first row.
    line: usize,
    jobs: Vec<Node>,
    /// Stage names, in order (while reading).
    stages: Vec<String>,
    /// Index of the first job of each stage, and the job count at the end.
    stage_start: Vec<u32>,
    /// Jobs of each stage not yet done, failed or skipped.
    stage_left: Vec<u32>,
    /// The first stage not yet finished successfully: jobs without `needs` of stages up to
    /// it have been released.
    frontier: u32,
    /// The first stage with a failed or skipped job (`u32::MAX`: none).
    failed_stage: u32,
    /// The `needs` of every job: job ids while reading, job indexes once sealed.
    need_ids: Vec<u64>,
    /// The dependants through `needs` of every job (indexes).
    dependants: Vec<u32>,
    /// Jobs not yet done, failed or skipped.
    unresolved: u32,
}

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

/// The live pipelines of a DAG trace: reads them in, releases their jobs as predecessors
/// finish, and skips the dependants of failed jobs. Knows nothing of files beyond the path
/// its errors name.
#[derive(Debug)]
pub struct Pipelines {
    path: PathBuf,
    slots: Vec<Pipeline>,
    free: Vec<u32>,
    /// The pipeline being read, if any.
    open: Option<u32>,
    /// Pipeline ids met so far (a pipeline may not come back).
    seen: IdSet,
    /// Released jobs of live pipelines: job id → (slot, index).
    released: IndexMap<u64, (u32, u32)>,
    /// Scratch: (job id, index) of the pipeline being sealed, sorted; the walk of a cycle; the
    /// skip work list.
    scratch_ids: Vec<(u64, u32)>,
    scratch: Vec<u32>,
    stack: Vec<u32>,
    skipped: u64,
    live: usize,
}

impl Pipelines {
    /// No pipelines yet; errors name `path`.
    pub fn new(path: impl AsRef<Path>) -> Pipelines {
        Pipelines {
            path: path.as_ref().to_path_buf(),
            slots: Vec::new(),
            free: Vec::new(),
            open: None,
            seen: IdSet::new(),
            released: IndexMap::new(),
            scratch_ids: Vec::new(),
            scratch: Vec::new(),
            stack: Vec::new(),
            skipped: 0,
            live: 0,
        }
    }

    /// Jobs skipped so far because a predecessor failed.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Pipelines read and not yet over.
    pub fn live(&self) -> usize {
        self.live
    }

    fn error(&self, line: usize, key: &str, message: String) -> InputError {
        InputError::file(&self.path, message).at_line(line).key(key)
    }

    /// Starts reading pipeline `record.pipeline_id` with its first row. `has_seen(id)` says
    /// whether a job id occurred earlier in the trace (for the message about `needs` across
    /// pipelines).
    pub fn begin(&mut self, record: &TraceRecord, spec: JobSpec) -> Result<(), InputError> {
        assert!(self.open.is_none(), "a pipeline is already open");
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
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Pipeline::default());
                (self.slots.len() - 1) as u32
            }
        };
        let p = &mut self.slots[slot as usize];
        p.id = id;
        p.created = SimTime(record.created_at_ms);
        p.line = record.line;
        p.jobs.clear();
        p.stage_start.clear();
        p.stage_left.clear();
        p.need_ids.clear();
        p.dependants.clear();
        p.frontier = 0;
        p.failed_stage = u32::MAX;
        p.unresolved = 0;
        // Stage names are kept for reuse: `stage_start.len()` says how many are in use.
        self.open = Some(slot);
        self.live += 1;
        self.add(record, spec)
    }

    /// Whether a pipeline is being read.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Checks the open pipeline as [`seal`](Self::seal) does (needs, stages, cycles), then
    /// forgets it: for readers that only look at a trace (`sim trace stats`) and must refuse
    /// what a run refuses.
    pub fn check_and_forget(&mut self, has_seen: impl Fn(u64) -> bool) -> Result<(), InputError> {
        let slot = self.open.expect("an open pipeline");
        let mut roots = Vec::new();
        self.seal(has_seen, &mut roots)?;
        for (_, spec) in &roots {
            self.released.swap_remove(&spec.id.0);
        }
        self.free.push(slot);
        self.live -= 1;
        Ok(())
    }

    /// Whether `record` continues the open pipeline.
    pub fn continues(&self, record: &TraceRecord) -> bool {
        self.open.is_some_and(|s| record.pipeline_id == Some(self.slots[s as usize].id))
    }

    /// Adds a row of the open pipeline.
    pub fn add(&mut self, record: &TraceRecord, spec: JobSpec) -> Result<(), InputError> {
        let slot = self.open.expect("an open pipeline");
        let p = &self.slots[slot as usize];
        if record.created_at_ms != p.created.as_ms() {
            return Err(self.error(
                record.line,
                "created_at",
                format!(
                    "job {} has created_at {} s but its pipeline {} was created at {} s (line \
                     {}); in a trace with stages or needs, every job of a pipeline is created \
                     with the pipeline",
                    record.job_id,
                    record.created_at_ms as f64 / 1000.0,
                    p.id,
                    p.created.as_ms() as f64 / 1000.0,
                    p.line
                ),
            ));
        }
        let stage_name = if record.stage.is_empty() { DEFAULT_STAGE } else { &record.stage };
        let in_use = p.stage_start.len();
        let current = in_use.checked_sub(1);
        let stage = match current {
            Some(c) if p.stages[c] == stage_name => c,
            _ => {
                if let Some(earlier) = p.stages[..in_use].iter().position(|s| s == stage_name) {
                    return Err(self.error(
                        record.line,
                        "stage",
                        format!(
                            "job {} is in stage `{stage_name}`, which pipeline {} left for stage \
                             `{}` before; list a pipeline's jobs stage by stage (stage order is \
                             the order of first appearance; `{stage_name}` is stage {})",
                            record.job_id,
                            p.id,
                            p.stages[in_use - 1],
                            earlier + 1
                        ),
                    ));
                }
                let p = &mut self.slots[slot as usize];
                if p.stages.len() == in_use {
                    p.stages.push(String::new());
                }
                p.stages[in_use].clear();
                p.stages[in_use].push_str(stage_name);
                p.stage_start.push(p.jobs.len() as u32);
                p.stage_left.push(0);
                in_use
            }
        };
        let p = &mut self.slots[slot as usize];
        let needs_at = p.need_ids.len() as u32;
        for &n in &record.needs {
            if !p.need_ids[needs_at as usize..].contains(&n) {
                p.need_ids.push(n);
            }
        }
        p.jobs.push(Node {
            spec,
            line: record.line,
            stage: stage as u32,
            has_needs: record.needs_given,
            needs_at,
            needs_len: p.need_ids.len() as u32 - needs_at,
            dependants_at: 0,
            dependants_len: 0,
            waiting: 0,
            state: State::Held,
        });
        p.stage_left[stage] += 1;
        p.unresolved += 1;
        Ok(())
    }

    /// Ends reading the open pipeline: resolves and checks its `needs` (unknown ids, later
    /// stages, cycles) and pushes the jobs pending at once onto `roots`, in file order.
    /// `has_seen(id)` tells whether a job id was met earlier in the trace.
    pub fn seal(
        &mut self,
        has_seen: impl Fn(u64) -> bool,
        roots: &mut Vec<(SimTime, JobSpec)>,
    ) -> Result<(), InputError> {
        let slot = self.open.take().expect("an open pipeline");
        let p = &mut self.slots[slot as usize];
        p.stage_start.push(p.jobs.len() as u32);
        // Ids → indexes.
        self.scratch_ids.clear();
        self.scratch_ids.extend(p.jobs.iter().enumerate().map(|(i, j)| (j.spec.id.0, i as u32)));
        self.scratch_ids.sort_unstable();
        for i in 0..p.jobs.len() {
            let job = p.jobs[i];
            for k in job.needs_at..job.needs_at + job.needs_len {
                let need = p.need_ids[k as usize];
                let Ok(at) = self.scratch_ids.binary_search_by_key(&need, |&(id, _)| id) else {
                    let elsewhere = if has_seen(need) {
                        format!("job {need} belongs to another pipeline")
                    } else {
                        format!("no job {need} precedes it in the trace or is in its pipeline")
                    };
                    let message = format!(
                        "job {} needs job {need}, which is not in its pipeline {}: {elsewhere}; \
                         needs must name jobs of the same pipeline",
                        job.spec.id, p.id
                    );
                    return Err(InputError::file(&self.path, message)
                        .at_line(job.line)
                        .key("needs"));
                };
                let n = self.scratch_ids[at].1;
                let dep = p.jobs[n as usize];
                if dep.stage > job.stage {
                    let message = format!(
                        "job {} (stage `{}`) needs job {need} (line {}), which is in the later \
                         stage `{}`; GitLab allows needs on the same or earlier stages only",
                        job.spec.id,
                        p.stages[job.stage as usize],
                        dep.line,
                        p.stages[dep.stage as usize]
                    );
                    return Err(InputError::file(&self.path, message)
                        .at_line(job.line)
                        .key("needs"));
                }
                p.need_ids[k as usize] = u64::from(n);
                p.jobs[n as usize].dependants_len += 1;
            }
            p.jobs[i].waiting = job.needs_len;
        }
        // Dependants in CSR form, in file order of the dependants.
        let mut at = 0;
        for j in &mut p.jobs {
            j.dependants_at = at;
            at += j.dependants_len;
            j.dependants_len = 0;
        }
        p.dependants.clear();
        p.dependants.resize(at as usize, 0);
        for i in 0..p.jobs.len() {
            let job = p.jobs[i];
            for k in job.needs_at..job.needs_at + job.needs_len {
                let n = p.need_ids[k as usize] as usize;
                let d = &mut p.jobs[n];
                p.dependants[(d.dependants_at + d.dependants_len) as usize] = i as u32;
                d.dependants_len += 1;
            }
        }
        check_cycles(p, &mut self.scratch, &mut self.stack, &self.path)?;
        // Release the roots: jobs of the first stage without needs, and jobs with `needs: []`.
        for i in 0..p.jobs.len() {
            let j = p.jobs[i];
            let root = if j.has_needs { j.needs_len == 0 } else { j.stage == 0 };
            if root {
                p.jobs[i].state = State::Released;
                self.released.insert(j.spec.id.0, (slot, i as u32));
                roots.push((p.created, j.spec));
            }
        }
        Ok(())
    }

    /// A job run ended (see [`crate::engine::JobSource::job_ended`]). For a job of a live
    /// pipeline: sets `record.created` to the pipeline's creation and, if this was its last
    /// attempt, releases (pushes onto `out`) the jobs waiting only for it, or skips its
    /// dependants if it failed. Jobs outside pipelines are left alone.
    pub fn ended(&mut self, record: &mut JobRecord, out: &mut Vec<JobSpec>) {
        let Some(&(slot, index)) = self.released.get(&record.id.0) else {
            return;
        };
        let p = &mut self.slots[slot as usize];
        record.created = p.created;
        let spec = p.jobs[index as usize].spec;
        if record.failed && record.attempt <= spec.retry {
            return; // GitLab retries it: not over yet.
        }
        self.released.swap_remove(&record.id.0);
        if record.failed {
            self.fail(slot, index);
        } else {
            self.succeed(slot, index, out);
        }
        let p = &mut self.slots[slot as usize];
        if p.unresolved == 0 {
            self.free.push(slot);
            self.live -= 1;
        }
    }

    fn succeed(&mut self, slot: u32, index: u32, out: &mut Vec<JobSpec>) {
        let p = &mut self.slots[slot as usize];
        let job = p.jobs[index as usize];
        p.jobs[index as usize].state = State::Done;
        p.unresolved -= 1;
        p.stage_left[job.stage as usize] -= 1;
        // Collect releases, then emit them in file order.
        let first = self.scratch.len();
        for k in job.dependants_at..job.dependants_at + job.dependants_len {
            let d = p.dependants[k as usize] as usize;
            let dep = &mut p.jobs[d];
            if dep.state == State::Held {
                dep.waiting -= 1;
                if dep.waiting == 0 {
                    self.scratch.push(d as u32);
                }
            }
        }
        let stages = p.stage_left.len() as u32;
        while p.frontier < stages
            && p.stage_left[p.frontier as usize] == 0
            && p.frontier < p.failed_stage
        {
            p.frontier += 1;
            if p.frontier < stages && p.frontier <= p.failed_stage {
                let (a, b) =
                    (p.stage_start[p.frontier as usize], p.stage_start[p.frontier as usize + 1]);
                for d in a..b {
                    let dep = p.jobs[d as usize];
                    if !dep.has_needs && dep.state == State::Held {
                        self.scratch.push(d);
                    }
                }
            }
        }
        self.scratch[first..].sort_unstable();
        for &d in &self.scratch[first..] {
            let dep = &mut p.jobs[d as usize];
            dep.state = State::Released;
            self.released.insert(dep.spec.id.0, (slot, d));
            out.push(dep.spec);
        }
        self.scratch.truncate(first);
    }

    /// Marks a job failed (or skipped) and skips what depends on it, transitively.
    fn fail(&mut self, slot: u32, index: u32) {
        let p = &mut self.slots[slot as usize];
        self.scratch.clear();
        self.scratch.push(index);
        let mut first = true;
        while let Some(i) = self.scratch.pop() {
            let job = p.jobs[i as usize];
            if !first {
                if job.state != State::Held {
                    continue;
                }
                self.skipped += 1;
            }
            first = false;
            p.jobs[i as usize].state = State::Failed;
            p.unresolved -= 1;
            p.stage_left[job.stage as usize] -= 1;
            for k in job.dependants_at..job.dependants_at + job.dependants_len {
                let d = p.dependants[k as usize];
                if p.jobs[d as usize].state == State::Held {
                    self.scratch.push(d);
                }
            }
            if job.stage < p.failed_stage {
                // Every job without needs in a later stage waits for this one's stage.
                let from = p.stage_start[job.stage as usize + 1];
                let to = p.failed_stage.min(p.stage_left.len() as u32);
                let to = p.stage_start[to as usize];
                p.failed_stage = job.stage;
                for d in from..to {
                    let dep = p.jobs[d as usize];
                    if !dep.has_needs && dep.state == State::Held {
                        self.scratch.push(d);
                    }
                }
            }
        }
    }
}

/// Finds a cycle of `needs` in a sealed pipeline (Kahn's algorithm) and names its jobs.
fn check_cycles(
    p: &Pipeline,
    scratch: &mut Vec<u32>,
    stack: &mut Vec<u32>,
    path: &Path,
) -> Result<(), InputError> {
    // Count the unfinished needs of each job in `scratch` (reused as the in-degree table).
    let n = p.jobs.len();
    scratch.clear();
    scratch.extend(p.jobs.iter().map(|j| j.needs_len));
    stack.clear();
    let mut done = 0;
    stack.extend((0..n as u32).filter(|&i| scratch[i as usize] == 0));
    while let Some(i) = stack.pop() {
        done += 1;
        let j = p.jobs[i as usize];
        for k in j.dependants_at..j.dependants_at + j.dependants_len {
            let d = p.dependants[k as usize] as usize;
            scratch[d] -= 1;
            if scratch[d] == 0 {
                stack.push(d as u32);
            }
        }
    }
    if done == n {
        scratch.clear();
        return Ok(());
    }
    // Walk back along needs that are still unfinished until a job repeats: that is a cycle.
    let mut walk: Vec<u32> = Vec::new();
    let mut i = (0..n).find(|&i| scratch[i] > 0).expect("a job on or after a cycle") as u32;
    let start = loop {
        if let Some(pos) = walk.iter().position(|&w| w == i) {
            break pos;
        }
        walk.push(i);
        let j = p.jobs[i as usize];
        i = (j.needs_at..j.needs_at + j.needs_len)
            .map(|k| p.need_ids[k as usize] as u32)
            .find(|&m| scratch[m as usize] > 0)
            .expect("an unfinished job has an unfinished need");
    };
    let cycle = &walk[start..];
    let mut names: Vec<String> = cycle
        .iter()
        .map(|&c| {
            let j = &p.jobs[c as usize];
            format!("job {} (line {})", j.spec.id, j.line)
        })
        .collect();
    // The walk goes from a job to what it needs; say it in the order "needs".
    names.push(names[0].clone());
    let first = &p.jobs[cycle[0] as usize];
    scratch.clear();
    Err(InputError::file(
        path,
        format!("pipeline {} has a cycle of needs: {}", p.id, names.join(" needs ")),
    )
    .at_line(first.line)
    .key("needs"))
}
