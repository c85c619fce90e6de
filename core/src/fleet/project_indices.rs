//! The docker executor's `ProjectRunnerID`s: per runner process, runner (token) and project,
//! the indexes held by running jobs (they name the job's cache and build volumes).

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use crate::ids::{ProjectId, RunnerId};

/// The indexes held, per (process, runner, project). A hash map, not an ordered one: it is
/// only ever asked about one key, and with hundreds of runners and projects it has tens of
/// thousands of keys (issue 15).
#[derive(Debug, Default)]
pub(super) struct ProjectIndices {
    held: FxHashMap<(usize, RunnerId, ProjectId), Held>,
}

/// The indexes one (process, runner, project) holds: the first 64 as bits (nearly every
/// runner), the rest in a set that stays empty, and allocates nothing, until needed.
#[derive(Debug, Default)]
struct Held {
    low: u64,
    high: BTreeSet<u32>,
}

impl ProjectIndices {
    /// GitLab Runner 19.4 `commands/builds_helper.go` `addBuild`: the lowest
    /// `ProjectRunnerID` that no running job of the same token (runner) and project on this
    /// runner process holds; it is now held.
    pub(super) fn take(&mut self, p: usize, runner: RunnerId, project: ProjectId) -> u32 {
        let held = self.held.entry((p, runner, project)).or_default();
        if held.low != u64::MAX {
            let index = held.low.trailing_ones();
            held.low |= 1 << index;
            return index;
        }
        let index = (64..).find(|i| !held.high.contains(i)).expect("a free index");
        held.high.insert(index);
        index
    }

    /// `removeBuild`: the index is free for the project's next job.
    pub(super) fn release(&mut self, p: usize, runner: RunnerId, project: ProjectId, index: u32) {
        let key = (p, runner, project);
        let Some(held) = self.held.get_mut(&key) else { return };
        if index < 64 {
            held.low &= !(1 << index);
        } else {
            held.high.remove(&index);
        }
        if held.low == 0 && held.high.is_empty() {
            self.held.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitLab Runner 19.4 `commands/builds_helper.go` `addBuild` (no Go test covers it): the
    /// lowest index no other build of the same runner and project holds is handed out, so a
    /// released one is reused first, and other runners, projects and processes count apart.
    #[test]
    fn the_lowest_free_index_is_taken_and_released_ones_are_reused() {
        let mut ix = ProjectIndices::default();
        let (r, q) = (RunnerId(0), ProjectId(7));
        assert_eq!((0..3).map(|_| ix.take(0, r, q)).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(ix.take(0, RunnerId(1), q), 0, "another runner counts apart");
        assert_eq!(ix.take(0, r, ProjectId(8)), 0, "another project counts apart");
        assert_eq!(ix.take(1, r, q), 0, "another process counts apart");
        ix.release(0, r, q, 1);
        assert_eq!(ix.take(0, r, q), 1);
        assert_eq!(ix.take(0, r, q), 3);
    }

    #[test]
    fn indexes_past_64_come_from_the_overflow_set() {
        let mut ix = ProjectIndices::default();
        let (r, q) = (RunnerId(0), ProjectId(1));
        let taken: Vec<u32> = (0..70).map(|_| ix.take(0, r, q)).collect();
        assert_eq!(taken, (0..70).collect::<Vec<_>>());
        ix.release(0, r, q, 65);
        ix.release(0, r, q, 3);
        assert_eq!(ix.take(0, r, q), 3);
        assert_eq!(ix.take(0, r, q), 65);
        for i in 0..70 {
            ix.release(0, r, q, i);
        }
        assert!(ix.held.is_empty(), "an entry with nothing held is dropped");
    }
}
