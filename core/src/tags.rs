//! Interned tags and tag sets, so matching a job against runners compares integers.

use crate::ids::TagSetId;
use indexmap::IndexMap;

/// Interns tag names and sorted sets of them. Set 0 is the empty set (an untagged job).
#[derive(Debug, Clone)]
pub struct TagInterner {
    names: IndexMap<String, u32>,
    sets: IndexMap<Vec<u32>, ()>,
}

impl Default for TagInterner {
    fn default() -> Self {
        let mut sets = IndexMap::new();
        sets.insert(Vec::new(), ());
        TagInterner { names: IndexMap::new(), sets }
    }
}

impl TagInterner {
    /// The id of the set of `tags` (order and duplicates do not matter; names are
    /// compared exactly, as GitLab does after stripping spaces).
    pub fn intern<S: AsRef<str>>(&mut self, tags: &[S]) -> TagSetId {
        if tags.is_empty() {
            return TagSetId::UNTAGGED;
        }
        let mut ids: Vec<u32> = tags
            .iter()
            .map(|t| {
                let t = t.as_ref().trim();
                let next = self.names.len() as u32;
                *self.names.entry(t.to_owned()).or_insert(next)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let (index, _) = self.sets.insert_full(ids, ());
        TagSetId(index as u32)
    }

    /// Whether every tag of `job` is also in `runner` (GitLab: a job runs only on a runner
    /// that has all of its tags).
    pub fn is_subset(&self, job: TagSetId, runner: TagSetId) -> bool {
        let (Some((job, _)), Some((runner, _))) =
            (self.sets.get_index(job.0 as usize), self.sets.get_index(runner.0 as usize))
        else {
            panic!("unknown tag set id");
        };
        job.iter().all(|t| runner.binary_search(t).is_ok())
    }

    /// The tag names of a set, for messages.
    pub fn names(&self, set: TagSetId) -> Vec<&str> {
        let (ids, _) = self.sets.get_index(set.0 as usize).expect("unknown tag set id");
        ids.iter()
            .map(|&i| self.names.get_index(i as usize).expect("interned tag").0.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_order_insensitive_and_subset_checks_work() {
        let mut t = TagInterner::default();
        let a = t.intern(&["docker", "linux"]);
        let b = t.intern(&["linux", "docker", "linux"]);
        assert_eq!(a, b);
        let docker = t.intern(&["docker"]);
        let gpu = t.intern(&["gpu"]);
        assert!(t.is_subset(docker, a));
        assert!(!t.is_subset(a, docker));
        assert!(!t.is_subset(gpu, a));
        assert!(t.is_subset(TagSetId::UNTAGGED, docker));
        assert_eq!(t.names(a), vec!["docker", "linux"]);
    }
}
