//! Machine slots and two small trees over them, for the pools' removal rules: machines get
//! slots in id order ([`Slots`]), a Fenwick tree of counts finds the k-th counted slot, and
//! a min-tree of idle clocks finds the slots whose clock is at or below a threshold. Each
//! answers in O(log n), where walking every machine (as GitLab Runner's `updateMachines`
//! and taskscaler do) costs O(n).

use crate::ids::MachineId;
use crate::time::SimTime;

/// The latest idle clock that has run out at `now` after `idle_ms`, if any can have: GitLab
/// Runner's `time.Since(Used) > IdleTime` (docker+machine) and taskscaler's idle time, at
/// millisecond resolution `now - clock >= idle_ms` (see `should_remove_idle`). An idle time of
/// 0 has every clock run out.
pub(crate) fn expired_up_to(now: SimTime, idle_ms: u64) -> Option<u64> {
    if idle_ms == 0 { Some(u64::MAX) } else { now.0.checked_sub(idle_ms) }
}

/// Slot numbers for machines, in id order (the fleet hands out increasing ids), with room
/// for a fixed number; forgotten machines leave holes until the owner rebuilds.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    /// Slot → machine (`None`: forgotten); its length is the next free slot.
    ids: Vec<Option<MachineId>>,
    /// Slots the trees hold (a power of two).
    capacity: usize,
    /// The highest id ever given a slot: a new machine must come after it.
    last_id: Option<MachineId>,
}

impl Slots {
    /// Room for `capacity` slots (a power of two).
    pub(crate) fn new(capacity: usize) -> Slots {
        debug_assert!(capacity.is_power_of_two());
        Slots { ids: Vec::with_capacity(capacity), capacity, last_id: None }
    }

    /// The capacity to rebuild with for `machines` machines: twice as many, at least 16.
    pub(crate) fn capacity_for(machines: usize) -> usize {
        (2 * machines).max(16).next_power_of_two()
    }

    /// The next slot for machine `id`, or `None` when the owner must rebuild: the slots
    /// are used up, or `id` is not above every id given a slot so far.
    pub(crate) fn push(&mut self, id: MachineId) -> Option<usize> {
        if self.last_id.is_some_and(|last| last >= id) || self.ids.len() == self.capacity {
            return None;
        }
        self.ids.push(Some(id));
        self.last_id = Some(id);
        Some(self.ids.len() - 1)
    }

    /// Frees a slot (it stays a hole).
    pub(crate) fn remove(&mut self, slot: usize) {
        self.ids[slot] = None;
    }

    /// The machine in a slot.
    pub(crate) fn id(&self, slot: usize) -> MachineId {
        self.ids[slot].expect("a live slot")
    }

    /// The machines holding a slot, in id order.
    pub(crate) fn ids(&self) -> impl DoubleEndedIterator<Item = MachineId> + '_ {
        self.ids.iter().flatten().copied()
    }
}

/// Counts per slot, with prefix sums and the k-th counted slot (a Fenwick tree).
#[derive(Debug, Clone, Default)]
pub(crate) struct CountTree {
    /// 1-based Fenwick array; `tree.len() - 1` is the capacity, a power of two.
    tree: Vec<u32>,
}

impl CountTree {
    /// An empty tree for `capacity` slots (a power of two).
    pub(crate) fn new(capacity: usize) -> CountTree {
        debug_assert!(capacity.is_power_of_two());
        CountTree { tree: vec![0; capacity + 1] }
    }

    /// Adds `delta` (±1) at `slot`.
    pub(crate) fn add(&mut self, slot: usize, delta: i32) {
        let mut i = slot + 1;
        while i < self.tree.len() {
            self.tree[i] = self.tree[i].checked_add_signed(delta).expect("slot count underflow");
            i += i & i.wrapping_neg();
        }
    }

    /// The slot of the `k`-th counted slot in slot order (`k` ≥ 1), if there are `k`.
    pub(crate) fn kth(&self, k: u32) -> Option<usize> {
        let capacity = self.tree.len() - 1;
        let (mut pos, mut rest) = (0usize, k);
        let mut step = capacity;
        while step > 0 {
            let next = pos + step;
            if next <= capacity && self.tree[next] < rest {
                pos = next;
                rest -= self.tree[next];
            }
            step >>= 1;
        }
        // The first `pos` slots hold fewer than k: the k-th is slot `pos`, if there is one.
        (pos < capacity).then_some(pos)
    }
}

/// A value per slot (`u64::MAX` = none), with the minimum over a suffix of slots and the
/// slots at or below a threshold, in slot order (a segment tree).
#[derive(Debug, Clone, Default)]
pub(crate) struct MinTree {
    /// Heap-ordered: node 1 is the root, leaves at `capacity..2 * capacity`.
    nodes: Vec<u64>,
}

impl MinTree {
    /// A tree for `capacity` slots (a power of two), every value `u64::MAX`.
    pub(crate) fn new(capacity: usize) -> MinTree {
        debug_assert!(capacity.is_power_of_two());
        MinTree { nodes: vec![u64::MAX; 2 * capacity] }
    }

    fn capacity(&self) -> usize {
        self.nodes.len() / 2
    }

    /// Sets the value at `slot`.
    pub(crate) fn set(&mut self, slot: usize, value: u64) {
        let mut i = slot + self.capacity();
        self.nodes[i] = value;
        while i > 1 {
            i /= 2;
            self.nodes[i] = self.nodes[2 * i].min(self.nodes[2 * i + 1]);
        }
    }

    /// The minimum over slots `from..`, `u64::MAX` if none holds a value.
    pub(crate) fn min_from(&self, from: usize) -> u64 {
        let cap = self.capacity();
        if from >= cap {
            return u64::MAX;
        }
        // Bottom-up over [from, cap): take right-hand siblings on the way up.
        let (mut l, mut r) = (from + cap, 2 * cap);
        let mut best = u64::MAX;
        while l < r {
            if l & 1 == 1 {
                best = best.min(self.nodes[l]);
                l += 1;
            }
            if r & 1 == 1 {
                r -= 1;
                best = best.min(self.nodes[r]);
            }
            l /= 2;
            r /= 2;
        }
        best
    }

    /// Appends, in slot order, the slots ≥ `from` whose value is ≤ `threshold`, until `out`
    /// holds `limit`.
    pub(crate) fn at_most_from(
        &self,
        from: usize,
        threshold: u64,
        limit: usize,
        out: &mut Vec<usize>,
    ) {
        if from < self.capacity() {
            self.descend(1, 0, self.capacity(), from, (threshold, limit), out);
        }
    }

    fn descend(
        &self,
        node: usize,
        lo: usize,
        width: usize,
        from: usize,
        (threshold, limit): (u64, usize),
        out: &mut Vec<usize>,
    ) {
        if out.len() >= limit || lo + width <= from || self.nodes[node] > threshold {
            return;
        }
        if width == 1 {
            out.push(lo);
            return;
        }
        let half = width / 2;
        self.descend(2 * node, lo, half, from, (threshold, limit), out);
        self.descend(2 * node + 1, lo + half, half, from, (threshold, limit), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kth_finds_the_counted_slots_in_order() {
        let mut t = CountTree::new(8);
        for s in [1, 4, 5, 7] {
            t.add(s, 1);
        }
        assert_eq!([1, 2, 3, 4, 5].map(|k| t.kth(k)), [Some(1), Some(4), Some(5), Some(7), None]);
        t.add(4, -1);
        assert_eq!([1, 2, 3, 4].map(|k| t.kth(k)), [Some(1), Some(5), Some(7), None]);
        assert_eq!(CountTree::new(1).kth(1), None);
    }

    #[test]
    fn min_tree_answers_suffixes_and_thresholds() {
        let mut t = MinTree::new(8);
        for (s, v) in [(0, 50), (2, 10), (3, 70), (6, 20)] {
            t.set(s, v);
        }
        assert_eq!([0, 1, 3, 4, 7, 8].map(|f| t.min_from(f)), [10, 10, 20, 20, u64::MAX, u64::MAX]);
        let mut out = Vec::new();
        t.at_most_from(1, 50, usize::MAX, &mut out);
        assert_eq!(out, [2, 6]);
        out.clear();
        t.at_most_from(0, u64::MAX - 1, usize::MAX, &mut out);
        assert_eq!(out, [0, 2, 3, 6]);
        out.clear();
        t.at_most_from(0, u64::MAX - 1, 2, &mut out);
        assert_eq!(out, [0, 2]);
        t.set(2, u64::MAX);
        assert_eq!(t.min_from(0), 20);
    }
}
