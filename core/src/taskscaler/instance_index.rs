//! The instance pool's index (issue 15): which instance `Acquire` takes and which idle
//! instances the scaling loop deletes, kept up to date on every change, so neither walks
//! every instance. [`InstancePool::reference`](super::InstancePool::reference) walks, as the
//! plain statement of the rules; `core/tests/pool_index.rs` checks both agree.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use super::{Instance, InstanceState, usable};
use crate::ids::MachineId;
use crate::slot_trees::{MinTree, Slots};

/// What one instance contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leaf {
    /// The idle clock of a running instance with no job; `u64::MAX` otherwise.
    clock: u64,
    /// Free slots of an instance that can take a job (its key in `usable`).
    free: Option<u32>,
}

const EMPTY: Leaf = Leaf { clock: u64::MAX, free: None };

impl Leaf {
    fn of(i: &Instance, capacity: u32, max_use_count: u32) -> Leaf {
        let idle = i.state == InstanceState::Running && i.in_use == 0;
        Leaf {
            // u64::MAX means "no clock": a real clock at the end of time is one ms earlier.
            clock: if idle { i.idle_since.0.min(u64::MAX - 1) } else { u64::MAX },
            free: (usable(capacity, max_use_count, i) > 0).then_some(capacity - i.in_use),
        }
    }
}

/// The index over one pool's instances.
#[derive(Debug, Clone)]
pub(super) struct InstanceIndex {
    slots: Slots,
    slot_of: FxHashMap<MachineId, usize>,
    leaves: Vec<Leaf>,
    clocks: MinTree,
    /// Instances that can take a job, by (free slots, id): the first is `Acquire`'s pick.
    usable: BTreeSet<(u32, MachineId)>,
    capacity: u32,
    max_use_count: u32,
    /// Scratch of [`InstanceIndex::expired`], kept so the scaling loop does not allocate.
    found: Vec<usize>,
}

impl InstanceIndex {
    /// An empty index for instances of `capacity` slots and `max_use_count`.
    pub(super) fn new(capacity: u32, max_use_count: u32) -> InstanceIndex {
        InstanceIndex::with_room(16, capacity, max_use_count)
    }

    fn with_room(room: usize, capacity: u32, max_use_count: u32) -> InstanceIndex {
        InstanceIndex {
            slots: Slots::new(room),
            slot_of: FxHashMap::default(),
            leaves: Vec::with_capacity(room),
            clocks: MinTree::new(room),
            usable: BTreeSet::new(),
            capacity,
            max_use_count,
            found: Vec::new(),
        }
    }

    /// A fresh index of `instances` (in id order), with room to grow.
    pub(super) fn rebuild<'a>(
        instances: impl ExactSizeIterator<Item = (MachineId, &'a Instance)>,
        capacity: u32,
        max_use_count: u32,
    ) -> InstanceIndex {
        let room = Slots::capacity_for(instances.len());
        let mut index = InstanceIndex::with_room(room, capacity, max_use_count);
        for (id, i) in instances {
            assert!(index.push(id, i), "room and order after a rebuild");
        }
        index
    }

    /// A new instance with an id above every other; `false` when the index must be rebuilt
    /// (full, or the id is out of order).
    pub(super) fn push(&mut self, id: MachineId, i: &Instance) -> bool {
        let Some(slot) = self.slots.push(id) else { return false };
        self.slot_of.insert(id, slot);
        self.leaves.push(EMPTY);
        self.update(id, i);
        true
    }

    /// Brings instance `id`'s contributions in line with `i`.
    pub(super) fn update(&mut self, id: MachineId, i: &Instance) {
        let new = Leaf::of(i, self.capacity, self.max_use_count);
        self.set_leaf(id, new);
    }

    /// Forgets instance `id`.
    pub(super) fn remove(&mut self, id: MachineId) {
        self.set_leaf(id, EMPTY);
        let slot = self.slot_of.remove(&id).expect("an indexed instance");
        self.slots.remove(slot);
    }

    fn set_leaf(&mut self, id: MachineId, new: Leaf) {
        let slot = self.slot_of[&id];
        let old = self.leaves[slot];
        if old == new {
            return;
        }
        if old.clock != new.clock {
            self.clocks.set(slot, new.clock);
        }
        if old.free != new.free {
            if let Some(free) = old.free {
                self.usable.remove(&(free, id));
            }
            if let Some(free) = new.free {
                self.usable.insert((free, id));
            }
        }
        self.leaves[slot] = new;
    }

    /// The instance `Acquire` takes: the fullest that can take a job, then the oldest.
    pub(super) fn fullest_usable(&self) -> Option<MachineId> {
        self.usable.first().map(|&(_, id)| id)
    }

    /// The earliest idle clock of a running instance with no job.
    pub(super) fn min_idle_clock(&self) -> Option<u64> {
        Some(self.clocks.min_from(0)).filter(|&c| c != u64::MAX)
    }

    /// Up to `limit` idle instances whose clock is at or before `threshold`, oldest id first.
    pub(super) fn expired(&mut self, threshold: u64, limit: usize, out: &mut Vec<MachineId>) {
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        self.clocks.at_most_from(0, threshold.min(u64::MAX - 1), limit, &mut found);
        out.extend(found.iter().map(|&s| self.slots.id(s)));
        self.found = found;
    }
}
