//! GitLab's pending-job queue against the plain rule (issue 15): [`Queue`] files jobs into
//! classes of equal project and tag set, keeps per-runner counts, class heads and lists of
//! active classes, and answers a job request by scanning the shorter of two lists. The
//! reference here keeps one flat list of pending jobs and answers a request of runner `r` as
//! GitLab's `Ci::Queue::BuildQueueService` does (the rule in `queue.rs`): among the pending
//! jobs `r` may take (project in its scope; tags a subset of its tags, or untagged with
//! `run_untagged`), the lowest job id, instance runners first ordering by the project's
//! running jobs on instance runners (fair usage). On random runners and random sequences of
//! new jobs, requests and ending jobs, both must hand out the same jobs, agree on which
//! runners have a job, and every change of that must be reported as a flip.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use fleetsim_core::ids::{JobId, JobKey, ProjectId, RunnerId, TagSetId};
use fleetsim_core::queue::{Filed, Queue, RunnerFilter};
use fleetsim_core::spec::RunnerScope;
use fleetsim_core::tags::TagInterner;
use proptest::prelude::*;

/// The tag sets jobs and runners choose from (index 0: untagged).
const TAG_SETS: [&[&str]; 5] = [&[], &["docker"], &["gpu"], &["docker", "gpu"], &["arm"]];

#[derive(Debug, Clone)]
struct Runner {
    scope: RunnerScope,
    projects: Option<Vec<u64>>,
    tags: usize,
    run_untagged: bool,
}

#[derive(Debug, Clone)]
enum Op {
    /// A job of `project` with tag set `tags`; `late` gives it an id below the newest one
    /// (a retried job keeps its id).
    Push { project: u64, tags: usize, late: bool },
    /// Runner `n` (mod the runners) asks for a job.
    Pick(usize),
    /// The `n`-th running job (mod the running ones) ends.
    End(usize),
}

fn runner() -> impl Strategy<Value = Runner> {
    let scope = prop_oneof![
        Just(RunnerScope::Instance),
        Just(RunnerScope::Group),
        Just(RunnerScope::Project)
    ];
    let projects =
        prop_oneof![2 => Just(None), 1 => prop::collection::vec(1u64..6, 1..3).prop_map(Some)];
    (scope, projects, 0..TAG_SETS.len(), any::<bool>()).prop_map(
        |(scope, projects, tags, run_untagged)| Runner { scope, projects, tags, run_untagged },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..6, 0..TAG_SETS.len(), prop::bool::weighted(0.15))
            .prop_map(|(project, tags, late)| Op::Push { project, tags, late }),
        4 => (0usize..64).prop_map(Op::Pick),
        2 => (0usize..64).prop_map(Op::End),
    ]
}

/// The plain rule over a flat list of pending jobs.
#[derive(Default)]
struct Reference {
    /// (job id, key, project, tag set index)
    pending: Vec<(u64, u32, u64, usize)>,
    running_on_instance: BTreeMap<u64, u32>,
}

impl Reference {
    fn may_take(
        runner: &Runner,
        tags: &TagInterner,
        sets: &[TagSetId],
        project: u64,
        job_tags: usize,
    ) -> bool {
        let in_scope = runner.projects.as_ref().is_none_or(|ps| ps.contains(&project));
        let tags_ok = if job_tags == 0 {
            runner.run_untagged
        } else {
            tags.is_subset(sets[job_tags], sets[runner.tags])
        };
        in_scope && tags_ok
    }

    fn pick(
        &mut self,
        runner: &Runner,
        tags: &TagInterner,
        sets: &[TagSetId],
    ) -> Option<(u64, u32, u64)> {
        let fair = runner.scope == RunnerScope::Instance;
        let best = self
            .pending
            .iter()
            .enumerate()
            .filter(|&(_, &(_, _, p, t))| Self::may_take(runner, tags, sets, p, t))
            .min_by_key(|&(_, &(id, _, p, _))| {
                let running =
                    if fair { self.running_on_instance.get(&p).copied().unwrap_or(0) } else { 0 };
                (running, id)
            })
            .map(|(i, _)| i)?;
        let (id, key, project, _) = self.pending.remove(best);
        if fair {
            *self.running_on_instance.entry(project).or_default() += 1;
        }
        Some((id, key, project))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_queue_hands_out_the_jobs_the_plain_rule_picks(
        runners in prop::collection::vec(runner(), 1..8),
        ops in prop::collection::vec(op(), 0..300),
    ) {
        let mut tags = TagInterner::default();
        let sets: Vec<TagSetId> = TAG_SETS.iter().map(|s| if s.is_empty() { TagSetId::UNTAGGED } else { tags.intern(s) }).collect();
        let filters = runners
            .iter()
            .map(|r| RunnerFilter {
                scope: r.scope,
                projects: r.projects.as_ref().map(|ps| ps.iter().map(|&p| ProjectId(p)).collect()),
                tags: sets[r.tags],
                run_untagged: r.run_untagged,
            })
            .collect();
        let mut queue = Queue::new(filters);
        let mut reference = Reference::default();
        // Running jobs: (runner, key, project, where the queue filed it).
        let mut running: Vec<(usize, u32, u64, Filed)> = Vec::new();
        let mut filed: BTreeMap<u32, Filed> = BTreeMap::new();
        let mut used_ids = BTreeSet::new();
        let mut next_key = 0u32;
        let mut flips = Vec::new();
        let mut had: Vec<bool> = (0..runners.len()).map(|r| queue.has_job_for(RunnerId(r as u16))).collect();
        for op in ops {
            match op {
                Op::Push { project, tags: t, late } => {
                    let newest = used_ids.last().copied().unwrap_or(0);
                    let id = if late && newest > 2 { (1..newest).rev().find(|i| !used_ids.contains(i)) } else { Some(newest + 1) };
                    let Some(id) = id else { continue };
                    used_ids.insert(id);
                    let key = next_key;
                    next_key += 1;
                    let servable = runners.iter().any(|r| Reference::may_take(r, &tags, &sets, project, t));
                    prop_assert_eq!(queue.servable(&tags, ProjectId(project), sets[t]), servable);
                    let f = queue.push(&tags, JobId(id), JobKey(key), ProjectId(project), sets[t]);
                    filed.insert(key, f);
                    reference.pending.push((id, key, project, t));
                }
                Op::Pick(n) => {
                    let r = n % runners.len();
                    let got = queue.pick(RunnerId(r as u16));
                    let want = reference.pick(&runners[r], &tags, &sets);
                    prop_assert_eq!(got.map(|(j, k)| (j.0, k.0)), want.map(|(id, key, _)| (id, key)), "runner {}", r);
                    if let Some((_, key, project)) = want {
                        running.push((r, key, project, filed[&key]));
                    }
                }
                Op::End(n) => {
                    if running.is_empty() {
                        continue;
                    }
                    let (r, _, project, f) = running.remove(n % running.len());
                    queue.job_ended(RunnerId(r as u16), f);
                    if runners[r].scope == RunnerScope::Instance {
                        *reference.running_on_instance.get_mut(&project).unwrap() -= 1;
                    }
                }
            }
            prop_assert_eq!(queue.pending() as usize, reference.pending.len());
            queue.take_flips(&mut flips);
            for (r, runner) in runners.iter().enumerate() {
                let has = queue.has_job_for(RunnerId(r as u16));
                let want = reference.pending.iter().any(|&(_, _, p, t)| Reference::may_take(runner, &tags, &sets, p, t));
                prop_assert_eq!(has, want, "has_job_for runner {}", r);
                if has != had[r] {
                    prop_assert!(flips.contains(&RunnerId(r as u16)), "runner {}'s change was not flipped", r);
                }
                had[r] = has;
            }
            flips.clear();
        }
    }
}
