//! Pipelines on GitLab's side: which job of a pipeline becomes pending when.
//!
//! GitLab creates every job of a pipeline with the pipeline (status `created`) and moves a job
//! to `pending`, where runners can see it, only when its predecessors have finished
//! (`Ci::ProcessPipelineService`, `Ci::PipelineProcessing::AtomicProcessingService`). This
//! module is that state, beside the job queue ([`crate::queue`]): a driver hands it each
//! pipeline whole ([`Pipelines::insert`]), and the one input handler of both drivers
//! ([`crate::drive::Drive`]) tells it every job end, so the jobs released by an end are
//! handed to the fleet at the same instant, right after it.
//!
//! # Rules
//!
//! - **Stages.** Jobs come grouped stage by stage, in stage order. A job **without `needs`**
//!   waits for every job of all earlier stages; the jobs of the first stage are pending at
//!   once.
//! - **With `needs`** a job waits only for the listed jobs (same or earlier stage); an empty
//!   list is GitLab's `needs: []`: pending at once, whatever its stage.
//! - **Release.** A job is released at the instant its last predecessor finishes; jobs released
//!   by one end come in pipeline (file) order.
//! - **Failure.** A job fails when its last attempt fails (no retry left). Its dependants are
//!   *skipped* and never run: the jobs that `need` it and every job without `needs` in a later
//!   stage. A skipped job counts as failed for its own dependants, transitively
//!   (`allow_failure`, `when: always` and manual jobs are not modelled).
//!
//! # Memory
//!
//! Only live pipelines are held, and a pipeline's slot is dropped when its last job has
//! finished or been skipped. Slots and their buffers are reused, so a steady state allocates
//! nothing per job.

use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;

use crate::job::{JobRecord, JobSpec};
use crate::time::SimTime;

/// One job of a pipeline as a driver hands it over, in pipeline (file) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewJob {
    /// The job.
    pub spec: JobSpec,
    /// Its stage's position in the pipeline (0 for the first stage); stages never decrease
    /// along the pipeline's jobs.
    pub stage: u32,
    /// `Some(range)`: the job has `needs`, listed at `range` of the pipeline's need list (as
    /// indexes of jobs in the pipeline); `None`: the stage rule applies.
    pub needs: Option<(u32, u32)>,
}

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
    stage: u32,
    /// Whether the job has `needs` (then the stage rule does not apply to it).
    has_needs: bool,
    /// Its `needs` in the pipeline's `needs` (indexes).
    needs_at: u32,
    needs_len: u32,
    /// Its dependants through `needs` in the pipeline's `dependants`.
    dependants_at: u32,
    dependants_len: u32,
    /// Predecessors through `needs` not yet finished.
    waiting: u32,
    state: State,
}

/// A running pipeline. Its vectors are kept when the slot is reused.
#[derive(Debug, Default)]
struct Pipeline {
    created: SimTime,
    jobs: Vec<Node>,
    /// Index of the first job of each stage, and the job count at the end.
    stage_start: Vec<u32>,
    /// Jobs of each stage not yet done, failed or skipped.
    stage_left: Vec<u32>,
    /// The first stage not yet finished successfully: jobs without `needs` of stages up to it
    /// have been released.
    frontier: u32,
    /// The first stage with a failed or skipped job (`u32::MAX`: none).
    failed_stage: u32,
    /// The `needs` of every job (indexes).
    needs: Vec<u32>,
    /// The dependants through `needs` of every job (indexes).
    dependants: Vec<u32>,
    /// Jobs not yet done, failed or skipped.
    unresolved: u32,
}

/// The live pipelines of a run: releases their jobs as predecessors finish, and skips the
/// dependants of failed jobs.
#[derive(Debug, Default)]
pub struct Pipelines {
    slots: Vec<Pipeline>,
    free: Vec<u32>,
    /// Released jobs of live pipelines: job id → (slot, index).
    released: IndexMap<u64, (u32, u32), FxBuildHasher>,
    /// Scratch: releases being collected, the skip work list, the cycle search.
    scratch: Vec<u32>,
    stack: Vec<u32>,
    skipped: u64,
    live: usize,
}

impl Pipelines {
    /// No pipelines yet.
    pub fn new() -> Pipelines {
        Pipelines::default()
    }

    /// Jobs skipped so far because a predecessor failed.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Pipelines handed over and not yet over (0 once a run has ended).
    pub fn live(&self) -> usize {
        self.live
    }

    /// Takes a pipeline created at `created`: its `jobs` in pipeline order, and the list their
    /// [`NewJob::needs`] ranges point into. Pushes the jobs pending at once onto `roots` (first
    /// stage without `needs`, and `needs: []`), in pipeline order.
    ///
    /// # Errors
    /// A cycle of `needs`: the indexes of its jobs, each needing the next and the last the
    /// first. Nothing is kept then.
    pub fn insert(
        &mut self,
        created: SimTime,
        jobs: &[NewJob],
        needs: &[u32],
        roots: &mut Vec<(SimTime, JobSpec)>,
    ) -> Result<(), Vec<u32>> {
        let slot = self.build(created, jobs, needs);
        if let Some(cycle) = self.cycle(slot) {
            self.free.push(slot);
            return Err(cycle);
        }
        self.live += 1;
        let p = &mut self.slots[slot as usize];
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

    /// Checks a pipeline as [`insert`](Self::insert) does (a cycle of `needs`) without keeping
    /// it: for readers that only look at a trace and must refuse what a run refuses.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn check(&mut self, jobs: &[NewJob], needs: &[u32]) -> Result<(), Vec<u32>> {
        let slot = self.build(SimTime::ZERO, jobs, needs);
        let cycle = self.cycle(slot);
        self.free.push(slot);
        cycle.map_or(Ok(()), Err)
    }

    /// Copies a pipeline into a free slot: nodes, stage table, needs and their dependants.
    fn build(&mut self, created: SimTime, jobs: &[NewJob], needs: &[u32]) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Pipeline::default());
                (self.slots.len() - 1) as u32
            }
        };
        let p = &mut self.slots[slot as usize];
        p.created = created;
        p.jobs.clear();
        p.stage_start.clear();
        p.stage_left.clear();
        p.needs.clear();
        p.needs.extend_from_slice(needs);
        p.dependants.clear();
        p.frontier = 0;
        p.failed_stage = u32::MAX;
        p.unresolved = jobs.len() as u32;
        for (i, j) in jobs.iter().enumerate() {
            let stage = j.stage as usize;
            assert!(stage + 1 >= p.stage_start.len(), "a pipeline's stages go back");
            while p.stage_start.len() <= stage {
                p.stage_start.push(i as u32);
                p.stage_left.push(0);
            }
            p.stage_left[stage] += 1;
            let (needs_at, needs_len) = j.needs.unwrap_or((0, 0));
            p.jobs.push(Node {
                spec: j.spec,
                stage: j.stage,
                has_needs: j.needs.is_some(),
                needs_at,
                needs_len,
                dependants_at: 0,
                dependants_len: 0,
                waiting: needs_len,
                state: State::Held,
            });
        }
        p.stage_start.push(p.jobs.len() as u32);
        // Dependants in CSR form, in pipeline order of the dependants.
        for i in 0..p.jobs.len() {
            let job = p.jobs[i];
            for k in job.needs_at..job.needs_at + job.needs_len {
                p.jobs[p.needs[k as usize] as usize].dependants_len += 1;
            }
        }
        let mut at = 0;
        for j in &mut p.jobs {
            j.dependants_at = at;
            at += j.dependants_len;
            j.dependants_len = 0;
        }
        p.dependants.resize(at as usize, 0);
        for i in 0..p.jobs.len() {
            let job = p.jobs[i];
            for k in job.needs_at..job.needs_at + job.needs_len {
                let n = p.needs[k as usize] as usize;
                let d = &mut p.jobs[n];
                p.dependants[(d.dependants_at + d.dependants_len) as usize] = i as u32;
                d.dependants_len += 1;
            }
        }
        slot
    }

    /// A cycle of `needs` in the pipeline at `slot` (Kahn's algorithm), as job indexes in
    /// "needs" order.
    fn cycle(&mut self, slot: u32) -> Option<Vec<u32>> {
        let p = &self.slots[slot as usize];
        let (scratch, stack) = (&mut self.scratch, &mut self.stack);
        // The unfinished needs of each job (the in-degree table).
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
            return None;
        }
        // Walk along needs that are still unfinished until a job repeats: that is a cycle.
        let mut walk: Vec<u32> = Vec::new();
        let mut i = (0..n).find(|&i| scratch[i] > 0).expect("a job on or after a cycle") as u32;
        let start = loop {
            if let Some(pos) = walk.iter().position(|&w| w == i) {
                break pos;
            }
            walk.push(i);
            let j = p.jobs[i as usize];
            i = (j.needs_at..j.needs_at + j.needs_len)
                .map(|k| p.needs[k as usize])
                .find(|&m| scratch[m as usize] > 0)
                .expect("an unfinished job has an unfinished need");
        };
        scratch.clear();
        walk.drain(..start);
        Some(walk)
    }

    /// A job run ended. For a job of a live pipeline: sets `record.created` to the pipeline's
    /// creation (the core learnt of the job at its release) and, if this was its last
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
        // Collect releases, then emit them in pipeline order.
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
