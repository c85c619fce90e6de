//! GitLab's side: the pending-job queue and which pending job a runner gets (§1.7).
//!
//! Jobs are grouped into *classes* of equal project and tag set. A class knows, once, which
//! runners may take its jobs (tags ⊆ runner tags, `run_untagged`, project scope), so a job
//! request scans only the few classes that have pending jobs:
//!
//! ```text
//!  JobCreated ─► class(project, tags) ─► jobs ordered by id ─┐
//!                                                           ├─► pick(runner): min key over
//!  runner request ──────────────────────────────────────────┘   eligible non-empty classes
//!      instance runner key = (running jobs of the project on instance runners, job id)
//!      group/project runner key = job id
//! ```

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::ids::{JobId, JobKey, ProjectId, RunnerId, TagSetId};
use crate::spec::RunnerScope;
use crate::tags::TagInterner;

/// 64-bit words in a [`RunnerMask`].
const MASK_WORDS: usize = crate::spec::MAX_RUNNERS / 64;

/// A set of runners as a bit mask (at most [`crate::spec::MAX_RUNNERS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerMask([u64; MASK_WORDS]);

impl Default for RunnerMask {
    fn default() -> Self {
        RunnerMask([0; MASK_WORDS])
    }
}

impl RunnerMask {
    /// The set of these runners.
    pub fn of(runners: impl IntoIterator<Item = RunnerId>) -> RunnerMask {
        let mut mask = RunnerMask::default();
        for r in runners {
            mask.insert(r);
        }
        mask
    }

    /// Adds `r`.
    pub fn insert(&mut self, r: RunnerId) {
        self.0[r.0 as usize / 64] |= 1u64 << (r.0 % 64);
    }

    /// Whether `r` is in the set.
    pub fn contains(&self, r: RunnerId) -> bool {
        self.0[r.0 as usize / 64] & (1u64 << (r.0 % 64)) != 0
    }

    /// Removes `r`.
    pub fn remove(&mut self, r: RunnerId) {
        self.0[r.0 as usize / 64] &= !(1u64 << (r.0 % 64));
    }

    /// The runners in the set with ids in `from..to`, lowest id first (a scan of at most
    /// [`MASK_WORDS`] words, whatever the set holds).
    pub fn range(&self, from: RunnerId, to: RunnerId) -> MaskRange<'_> {
        let (from, to) = (usize::from(from.0), usize::from(to.0).min(64 * MASK_WORDS));
        if from >= to {
            return MaskRange { words: &self.0, next: 0, end: 0, bits: 0, last: 0 };
        }
        let (first, end) = (from / 64, to.div_ceil(64));
        // The bits of the last word below `to` (all of them when `to` ends a word).
        let last = match to % 64 {
            0 => u64::MAX,
            hi => (1u64 << hi) - 1,
        };
        let mut bits = self.0[first] & (u64::MAX << (from % 64));
        if first + 1 == end {
            bits &= last;
        }
        MaskRange { words: &self.0, next: first + 1, end, bits, last }
    }
    /// The runners in both sets.
    pub fn and(&self, other: &RunnerMask) -> RunnerMask {
        RunnerMask(std::array::from_fn(|i| self.0[i] & other.0[i]))
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// The runners in the set, lowest id first.
    pub fn iter(&self) -> MaskRange<'_> {
        self.range(RunnerId(0), RunnerId((64 * MASK_WORDS) as u16))
    }
}

/// The runners of a [`RunnerMask`] in an id range, lowest first ([`RunnerMask::range`]): a
/// plain loop over the words, skipping empty ones (issue 15: the feeder's search walks the
/// ready runners of 500 on every input, and a `flat_map` over words cost several times the
/// instructions).
#[derive(Debug, Clone)]
pub struct MaskRange<'a> {
    words: &'a [u64; MASK_WORDS],
    /// The next word to load.
    next: usize,
    /// One past the last word in the range.
    end: usize,
    /// The bits of the current word (`next - 1`) not yet handed out.
    bits: u64,
    /// The bits of the last word that are in the range.
    last: u64,
}

impl Iterator for MaskRange<'_> {
    type Item = RunnerId;

    fn next(&mut self) -> Option<RunnerId> {
        while self.bits == 0 {
            if self.next >= self.end {
                return None;
            }
            let mut bits = self.words[self.next];
            if self.next + 1 == self.end {
                bits &= self.last;
            }
            self.bits = bits;
            self.next += 1;
        }
        let bit = self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(RunnerId(((self.next - 1) * 64 + bit) as u16))
    }
}

/// The runners whose scope includes `project` (all projects, or a list that has it).
fn scope_mask(runners: &[RunnerFilter], project: ProjectId) -> RunnerMask {
    RunnerMask::of(runners.iter().enumerate().filter_map(|(i, r)| {
        r.projects.as_ref().is_none_or(|ps| ps.contains(&project)).then_some(RunnerId(i as u16))
    }))
}

/// The runners whose tags allow a job tagged `job_tags`: a subset of the runner's tags, or
/// `run_untagged` for an untagged job.
fn tag_mask(runners: &[RunnerFilter], tags: &TagInterner, job_tags: TagSetId) -> RunnerMask {
    RunnerMask::of(runners.iter().enumerate().filter_map(|(i, r)| {
        let ok = if job_tags == TagSetId::UNTAGGED {
            r.run_untagged
        } else {
            tags.is_subset(job_tags, r.tags)
        };
        ok.then_some(RunnerId(i as u16))
    }))
}

/// What GitLab knows about one runner when it picks a job for it.
#[derive(Debug, Clone)]
pub struct RunnerFilter {
    /// Instance, group or project runner.
    pub scope: RunnerScope,
    /// Projects served (`None` = all).
    pub projects: Option<Vec<ProjectId>>,
    /// The runner's tags, interned.
    pub tags: TagSetId,
    /// Whether it takes untagged jobs.
    pub run_untagged: bool,
}

/// What a job request reads of a class, kept apart from the rest in 16 bytes: a request
/// scans many classes, and one cache line then holds four of them instead of a class
/// spanning three (issue 15: at 500 runners the scan's cache misses were a third of all).
#[derive(Debug, Clone, Copy)]
struct ClassHead {
    /// The first pending job (meaningful while the class is active).
    first: JobId,
    /// The interned project.
    project: u32,
    /// Position in `Queue::active` while the class has pending jobs, else [`INACTIVE`].
    active_pos: u32,
}

/// [`ClassHead::active_pos`] of a class without pending jobs.
const INACTIVE: u32 = u32::MAX;

/// The rest of a class.
#[derive(Debug)]
struct Class {
    eligible: RunnerMask,
    /// The same runners as a list, for the per-job bookkeeping.
    runners: Vec<RunnerId>,
    /// Pending jobs ordered by job id (usually appended at the back).
    jobs: VecDeque<(JobId, JobKey)>,
}

#[derive(Debug, Default)]
struct Project {
    /// Jobs of this project running on instance runners (the fair-usage count).
    running_on_instance: u32,
}

/// The pending jobs of the GitLab instance.
#[derive(Debug)]
pub struct Queue {
    runners: Vec<RunnerFilter>,
    /// Per class, what a job request reads.
    heads: Vec<ClassHead>,
    /// Per class, the rest.
    classes: Vec<Class>,
    /// Class by (interned project, tag set). Hash maps (one probe each: with hundreds of
    /// runners there are tens of thousands of classes), never iterated.
    class_index: FxHashMap<(u32, TagSetId), u32>,
    projects: Vec<Project>,
    /// Interned project by id.
    project_index: FxHashMap<ProjectId, u32>,
    /// Classes that have pending jobs, in no particular order (picking takes a minimum).
    active: Vec<u32>,
    /// Per runner: how many pending jobs it may take.
    pending_for_runner: Vec<u32>,
    /// Per job tag set seen: the runners whose tags allow it (the tag half of
    /// [`Queue::eligible`]), so a new class costs a mask intersection, not a walk over the
    /// runners (issue 15: 500 runners × 64 projects are 32,000 classes).
    tag_masks: FxHashMap<TagSetId, RunnerMask>,
    /// Per project seen: the runners whose scope includes it (the scope half).
    scope_masks: FxHashMap<ProjectId, RunnerMask>,
    /// Runners whose "has a pending job it may take" changed since the fleet last asked
    /// ([`Queue::take_flips`]); a runner may appear more than once.
    flips: Vec<RunnerId>,
    /// Per runner: the classes whose jobs it may take (a request scans these or the active
    /// classes, whichever are fewer).
    runner_classes: Vec<Vec<u32>>,
    pending: u32,
}

/// Where a new job was filed; the job keeps it to release its project slot later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filed {
    /// The job's class.
    pub class: u32,
    /// The job's interned project.
    pub project: u32,
}

impl Queue {
    /// A queue for these runners (indexed by `RunnerId`).
    pub fn new(runners: Vec<RunnerFilter>) -> Queue {
        let n = runners.len();
        Queue {
            runners,
            heads: Vec::new(),
            classes: Vec::new(),
            class_index: FxHashMap::default(),
            projects: Vec::new(),
            project_index: FxHashMap::default(),
            active: Vec::new(),
            pending_for_runner: vec![0; n],
            runner_classes: vec![Vec::new(); n],
            flips: Vec::new(),
            tag_masks: FxHashMap::default(),
            scope_masks: FxHashMap::default(),
            pending: 0,
        }
    }

    /// The runners that may ever take a job of this project and tag set: the runner's scope
    /// includes the project, and the job's tags are a subset of the runner's (an untagged
    /// job needs `run_untagged`).
    pub fn eligible(
        &self,
        tags: &TagInterner,
        project: ProjectId,
        job_tags: TagSetId,
    ) -> RunnerMask {
        scope_mask(&self.runners, project).and(&tag_mask(&self.runners, tags, job_tags))
    }

    /// [`Queue::eligible`] from masks kept per project and per tag set.
    fn eligible_memo(
        &mut self,
        tags: &TagInterner,
        project: ProjectId,
        job_tags: TagSetId,
    ) -> RunnerMask {
        let runners = &self.runners;
        let scope = self.scope_masks.entry(project).or_insert_with(|| scope_mask(runners, project));
        let tag =
            self.tag_masks.entry(job_tags).or_insert_with(|| tag_mask(runners, tags, job_tags));
        scope.and(tag)
    }

    /// Whether some runner may ever take a job of this project and tag set (from the job's
    /// class when one exists: no walk over the runners per job).
    pub fn servable(&self, tags: &TagInterner, project: ProjectId, job_tags: TagSetId) -> bool {
        let known =
            self.project_index.get(&project).and_then(|p| self.class_index.get(&(*p, job_tags)));
        match known {
            Some(&c) => !self.classes[c as usize].runners.is_empty(),
            None => !self.eligible(tags, project, job_tags).is_empty(),
        }
    }

    /// Files a job as pending. Returns where it went.
    pub fn push(
        &mut self,
        tags: &TagInterner,
        id: JobId,
        key: JobKey,
        project: ProjectId,
        job_tags: TagSetId,
    ) -> Filed {
        let next_project = self.projects.len() as u32;
        let project_ix = *self.project_index.entry(project).or_insert(next_project);
        if project_ix == next_project {
            self.projects.push(Project::default());
        }
        let class_ix = match self.class_index.get(&(project_ix, job_tags)) {
            Some(&c) => c,
            None => {
                let c = self.classes.len() as u32;
                let eligible = self.eligible_memo(tags, project, job_tags);
                debug_assert_eq!(eligible, self.eligible(tags, project, job_tags));
                let runners: Vec<RunnerId> = eligible.iter().collect();
                for r in &runners {
                    self.runner_classes[r.0 as usize].push(c);
                }
                self.heads.push(ClassHead { first: id, project: project_ix, active_pos: INACTIVE });
                self.classes.push(Class { eligible, runners, jobs: VecDeque::new() });
                self.class_index.insert((project_ix, job_tags), c);
                c
            }
        };
        let class = &mut self.classes[class_ix as usize];
        match class.jobs.back() {
            Some(&(last, _)) if last > id => {
                let at = class.jobs.partition_point(|&(j, _)| j < id);
                class.jobs.insert(at, (id, key));
            }
            _ => class.jobs.push_back((id, key)),
        }
        let head = &mut self.heads[class_ix as usize];
        head.first = class.jobs[0].0;
        if head.active_pos == INACTIVE {
            head.active_pos = self.active.len() as u32;
            self.active.push(class_ix);
        }
        for &r in &class.runners {
            let count = &mut self.pending_for_runner[r.0 as usize];
            *count += 1;
            if *count == 1 {
                self.flips.push(r);
            }
        }
        self.pending += 1;
        Filed { class: class_ix, project: project_ix }
    }

    /// Whether runner `r` could get a job if it asked now.
    pub fn has_job_for(&self, r: RunnerId) -> bool {
        self.pending_for_runner[r.0 as usize] > 0
    }

    /// Moves the runners whose [`Queue::has_job_for`] changed since the last call into `out`.
    pub fn take_flips(&mut self, out: &mut Vec<RunnerId>) {
        out.append(&mut self.flips);
    }

    /// Number of pending jobs.
    pub fn pending(&self) -> u32 {
        self.pending
    }

    /// The runners that may take jobs of a class.
    pub fn class_runners(&self, class: u32) -> &RunnerMask {
        &self.classes[class as usize].eligible
    }

    /// GitLab's answer to a job request of runner `r`: the pending job it gets, removed from
    /// the queue, or `None` (HTTP 204). Instance runners use fair-usage order, others FIFO.
    pub fn pick(&mut self, r: RunnerId) -> Option<(JobId, JobKey)> {
        if !self.has_job_for(r) {
            return None;
        }
        let fair = self.runners[r.0 as usize].scope == RunnerScope::Instance;
        let mut best: Option<(u32, JobId, u32)> = None;
        // The minimum over the active classes this runner may take: scan the active classes,
        // or the runner's own classes (skipping empty ones), whichever list is shorter. Job
        // ids are unique, so the minimum does not depend on the order.
        // The runner's own classes are all eligible; an active one may not be, which is
        // checked last (it reads the class's mask, a cache line more).
        let mine = &self.runner_classes[r.0 as usize];
        let scan_mine = mine.len() < self.active.len();
        let candidates = if scan_mine { mine } else { &self.active };
        for &c in candidates {
            let head = self.heads[c as usize];
            if head.active_pos == INACTIVE {
                continue;
            }
            let running =
                if fair { self.projects[head.project as usize].running_on_instance } else { 0 };
            if best.is_some_and(|(br, bj, _)| (br, bj) < (running, head.first)) {
                continue;
            }
            if scan_mine || self.classes[c as usize].eligible.contains(r) {
                best = Some((running, head.first, c));
            }
        }
        let (_, _, c) = best.expect("pending_for_runner says a job exists");
        let class = &mut self.classes[c as usize];
        let job = class.jobs.pop_front().expect("active class has jobs");
        let head = &mut self.heads[c as usize];
        let project = head.project;
        let emptied = match class.jobs.front() {
            Some(&(next, _)) => {
                head.first = next;
                None
            }
            None => Some(std::mem::replace(&mut head.active_pos, INACTIVE) as usize),
        };
        for &runner in &class.runners {
            let count = &mut self.pending_for_runner[runner.0 as usize];
            *count -= 1;
            if *count == 0 {
                self.flips.push(runner);
            }
        }
        if let Some(pos) = emptied {
            self.active.swap_remove(pos);
            if let Some(&moved) = self.active.get(pos) {
                self.heads[moved as usize].active_pos = pos as u32;
            }
        }
        self.pending -= 1;
        if fair {
            self.projects[project as usize].running_on_instance += 1;
        }
        Some(job)
    }

    /// A job picked by runner `r` ended: release its fair-usage count.
    pub fn job_ended(&mut self, r: RunnerId, filed: Filed) {
        if self.runners[r.0 as usize].scope == RunnerScope::Instance {
            let p = &mut self.projects[filed.project as usize];
            p.running_on_instance =
                p.running_on_instance.checked_sub(1).expect("fair-usage count underflow");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(scope: RunnerScope, tags: TagSetId) -> RunnerFilter {
        RunnerFilter { scope, projects: None, tags, run_untagged: true }
    }

    #[test]
    fn project_runner_is_fifo_by_job_id() {
        let t = TagInterner::default();
        let mut q = Queue::new(vec![filter(RunnerScope::Project, TagSetId::UNTAGGED)]);
        q.push(&t, JobId(5), JobKey(0), ProjectId(1), TagSetId::UNTAGGED);
        q.push(&t, JobId(3), JobKey(1), ProjectId(2), TagSetId::UNTAGGED);
        q.push(&t, JobId(4), JobKey(2), ProjectId(1), TagSetId::UNTAGGED);
        let order: Vec<u64> =
            std::iter::from_fn(|| q.pick(RunnerId(0))).map(|(j, _)| j.0).collect();
        assert_eq!(order, vec![3, 4, 5]);
        assert_eq!(q.pending(), 0);
    }

    #[test]
    fn instance_runner_prefers_projects_with_fewer_running_jobs() {
        // The worked example of GitLab's docs: project 1 has jobs 1, 2, 3 and project 2 has
        // jobs 4, 5, 6 pending. Fair usage hands out 1, 4, 2, 5, 3, 6 while nothing finishes.
        let t = TagInterner::default();
        let mut q = Queue::new(vec![filter(RunnerScope::Instance, TagSetId::UNTAGGED)]);
        for (id, p) in [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)] {
            q.push(&t, JobId(id), JobKey(id as u32), ProjectId(p), TagSetId::UNTAGGED);
        }
        let order: Vec<u64> =
            std::iter::from_fn(|| q.pick(RunnerId(0))).map(|(j, _)| j.0).collect();
        assert_eq!(order, vec![1, 4, 2, 5, 3, 6]);
    }

    #[test]
    fn tags_must_be_a_subset_and_untagged_needs_run_untagged() {
        let mut t = TagInterner::default();
        let docker = t.intern(&["docker"]);
        let gpu = t.intern(&["gpu"]);
        let mut r1 = filter(RunnerScope::Project, docker);
        r1.run_untagged = false;
        let q = Queue::new(vec![r1, filter(RunnerScope::Project, TagSetId::UNTAGGED)]);
        assert_eq!(q.eligible(&t, ProjectId(1), docker), RunnerMask::of([RunnerId(0)]));
        assert_eq!(q.eligible(&t, ProjectId(1), TagSetId::UNTAGGED), RunnerMask::of([RunnerId(1)]));
        assert!(q.eligible(&t, ProjectId(1), gpu).is_empty());
    }

    #[test]
    fn masks_hold_runners_past_the_first_word() {
        let ids = [0u16, 63, 64, 500, 1023].map(RunnerId);
        let mask = RunnerMask::of(ids);
        assert_eq!(mask.iter().collect::<Vec<_>>(), ids);
        assert!(mask.contains(RunnerId(500)) && !mask.contains(RunnerId(501)));
        assert!(RunnerMask::default().is_empty() && !mask.is_empty());
    }

    #[test]
    fn a_mask_range_holds_the_runners_between_its_bounds() {
        let ids = [0u16, 5, 63, 64, 127, 128, 500, 1023].map(RunnerId);
        let mut mask = RunnerMask::of(ids);
        let range = |m: &RunnerMask, a: u16, b: u16| -> Vec<u16> {
            m.range(RunnerId(a), RunnerId(b)).map(|r| r.0).collect()
        };
        assert_eq!(range(&mask, 0, 1024), ids.map(|r| r.0));
        assert_eq!(range(&mask, 5, 64), [5, 63]);
        assert_eq!(range(&mask, 6, 128), [63, 64, 127]);
        assert_eq!(range(&mask, 64, 64), Vec::<u16>::new());
        assert_eq!(range(&mask, 600, 500), Vec::<u16>::new());
        assert_eq!(range(&mask, 129, 1023), [500]);
        mask.remove(RunnerId(500));
        mask.remove(RunnerId(501));
        assert_eq!(range(&mask, 129, 1024), [1023]);
        // Every bound against `contains`, for this mask, a full one and a dense one.
        let full = RunnerMask::of((0..1024).map(RunnerId));
        let dense = RunnerMask::of((0..1024).filter(|i| i % 3 != 1 && i / 64 != 9).map(RunnerId));
        for m in [&mask, &full, &dense] {
            for a in (0..1024).step_by(7) {
                for b in (a..=1024).step_by(61).chain([a + 1, 1024.min(a + 64)]) {
                    let want: Vec<u16> =
                        (a..b.min(1024)).filter(|&r| m.contains(RunnerId(r))).collect();
                    assert_eq!(range(m, a, b), want, "{a}..{b}");
                }
            }
        }
    }

    #[test]
    fn a_class_gets_the_runners_the_plain_rule_gives() {
        // The classes' runner sets come from masks kept per project and per tag set; they
        // must be what `eligible` says for every mix of scope, tags and `run_untagged`.
        let mut t = TagInterner::default();
        let sets = [TagSetId::UNTAGGED, t.intern(&["a"]), t.intern(&["b"]), t.intern(&["a", "b"])];
        let mut runners = Vec::new();
        for (i, &tags) in sets.iter().enumerate() {
            for scope in [None, Some(vec![ProjectId(1)]), Some(vec![ProjectId(2), ProjectId(3)])] {
                let mut r = filter(RunnerScope::Project, tags);
                r.projects = scope;
                r.run_untagged = i % 2 == 0;
                runners.push(r);
            }
        }
        let mut q = Queue::new(runners);
        let mut key = 0;
        for project in (0..5).map(ProjectId) {
            for &tags in &sets {
                key += 1;
                let filed = q.push(&t, JobId(key), JobKey(key as u32), project, tags);
                assert_eq!(*q.class_runners(filed.class), q.eligible(&t, project, tags));
            }
        }
    }

    #[test]
    fn project_scope_limits_eligibility() {
        let t = TagInterner::default();
        let mut r = filter(RunnerScope::Project, TagSetId::UNTAGGED);
        r.projects = Some(vec![ProjectId(7)]);
        let q = Queue::new(vec![r]);
        assert_eq!(q.eligible(&t, ProjectId(7), TagSetId::UNTAGGED), RunnerMask::of([RunnerId(0)]));
        assert!(q.eligible(&t, ProjectId(8), TagSetId::UNTAGGED).is_empty());
    }
}
