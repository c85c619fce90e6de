//! An exact set of `u64` values kept as disjoint closed intervals.
//!
//! The trace reader uses it to reject duplicate `job_id`s without a set that grows with every
//! row: job ids in a trace are usually consecutive or close to it, so a run of ids costs one
//! map entry however long it is. Memory is proportional to the number of *gaps* between the ids
//! seen, not to the number of ids: `1, 2, 3, …, 1 000 000` is one interval, while every other
//! id (`2, 4, 6, …`) is one interval per id — still exact, never approximate.

use std::collections::BTreeMap;

/// An exact set of `u64` values stored as sorted, disjoint, non-adjacent closed intervals.
///
/// `insert` merges the new id with the interval on its left and/or right, so inserting
/// consecutive ids in either direction keeps a single interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdSet {
    /// `start → end` (both inclusive). Invariant: `start ≤ end`, and between two neighbouring
    /// intervals at least one value is missing (otherwise they would have been merged).
    intervals: BTreeMap<u64, u64>,
}

impl IdSet {
    /// An empty set.
    pub fn new() -> Self {
        IdSet::default()
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u64) -> bool {
        self.intervals.range(..=id).next_back().is_some_and(|(_, &end)| id <= end)
    }

    /// Adds `id`; returns `false` if it was already present (the set is then unchanged).
    pub fn insert(&mut self, id: u64) -> bool {
        let left = self.intervals.range(..=id).next_back().map(|(&start, &end)| (start, end));
        if let Some((_, end)) = left
            && id <= end
        {
            return false;
        }
        // `end < id` here, so `end + 1` cannot overflow.
        let joins_left = left.filter(|&(_, end)| end + 1 == id).map(|(start, _)| start);
        let right_start = id.checked_add(1);
        let right_end = right_start.and_then(|start| self.intervals.get(&start).copied());
        match (joins_left, right_start, right_end) {
            (Some(start), Some(right_start), Some(right_end)) => {
                self.intervals.remove(&right_start);
                self.set_end(start, right_end);
            }
            (Some(start), _, _) => self.set_end(start, id),
            (None, Some(right_start), Some(right_end)) => {
                self.intervals.remove(&right_start);
                self.intervals.insert(id, right_end);
            }
            (None, _, _) => {
                self.intervals.insert(id, id);
            }
        }
        true
    }

    fn set_end(&mut self, start: u64, end: u64) {
        match self.intervals.get_mut(&start) {
            Some(slot) => *slot = end,
            None => unreachable!("interval starting at {start} vanished"),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// How many disjoint intervals the set holds (its memory cost).
    pub fn interval_count(&self) -> usize {
        self.intervals.len()
    }

    /// The intervals `(start, end_inclusive)` in increasing order.
    pub fn intervals(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.intervals.iter().map(|(&start, &end)| (start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn consecutive_ids_in_either_direction_are_one_interval() {
        let mut up = IdSet::new();
        for id in 1..=10_000 {
            assert!(up.insert(id));
        }
        assert_eq!(up.intervals().collect::<Vec<_>>(), vec![(1, 10_000)]);

        let mut down = IdSet::new();
        for id in (1..=10_000).rev() {
            assert!(down.insert(id));
        }
        assert_eq!(down, up);
    }

    #[test]
    fn a_gap_filled_later_merges_both_sides() {
        let mut set = IdSet::new();
        for id in [1, 2, 4, 5] {
            set.insert(id);
        }
        assert_eq!(set.interval_count(), 2);
        assert!(!set.contains(3));
        assert!(set.insert(3));
        assert_eq!(set.intervals().collect::<Vec<_>>(), vec![(1, 5)]);
        assert!(!set.insert(3));
        assert!(!set.insert(1));
        assert!(!set.insert(5));
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut set = IdSet::new();
        assert!(set.insert(u64::MAX));
        assert!(set.insert(u64::MAX - 1));
        assert!(!set.insert(u64::MAX));
        assert!(set.insert(0));
        assert!(set.insert(1));
        assert!(!set.insert(0));
        assert_eq!(set.intervals().collect::<Vec<_>>(), vec![(0, 1), (u64::MAX - 1, u64::MAX)]);
    }

    fn id() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..64, (u64::MAX - 64)..=u64::MAX]
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(ids in proptest::collection::vec(id(), 0..200)) {
            let mut set = IdSet::new();
            let mut model = BTreeSet::new();
            for &id in &ids {
                prop_assert_eq!(set.insert(id), model.insert(id));
            }
            for &id in &ids {
                prop_assert!(set.contains(id));
            }
            for probe in (0u64..70).chain((u64::MAX - 70)..=u64::MAX) {
                prop_assert_eq!(set.contains(probe), model.contains(&probe));
            }
            // The intervals expand to exactly the model, and are disjoint and non-adjacent.
            let mut expanded = Vec::new();
            let mut previous_end: Option<u64> = None;
            for (start, end) in set.intervals() {
                prop_assert!(start <= end);
                if let Some(previous_end) = previous_end {
                    prop_assert!(previous_end.checked_add(1).is_some_and(|next| start > next));
                }
                previous_end = Some(end);
                expanded.extend(start..=end);
            }
            prop_assert_eq!(expanded, model.into_iter().collect::<Vec<_>>());
        }
    }
}
