//! The pool's incremental index: what each machine contributes to the removal pass, kept up
//! to date on every change, so `Acquire` and the fast path's "when is the next removal" do
//! not walk every machine (issue 15: at 1,000 machines that walk was two thirds of a run).
//!
//! Machines get slots in id order (the fleet hands out increasing ids), so "the machines
//! before this one" of GitLab Runner's walk is "the slots before this one".

use std::collections::BTreeSet;

use super::{Machine, MachineState};
use crate::ids::MachineId;
use crate::slot_trees::{CountTree, MinTree, Slots};

/// What one machine contributes to the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leaf {
    /// Counted as available by the removal pass: creating, acquired, or idle and kept by
    /// `MaxBuilds` (an idle machine at `MaxBuilds` is removed first, so it never counts).
    counted: bool,
    /// Counted as available in the machine's raw state (an idle machine at `MaxBuilds`
    /// included), as `next_removal_at` judges machines without removing any.
    counted_raw: bool,
    /// The idle clock (`Used`) of an idle machine below `MaxBuilds`; `u64::MAX` otherwise.
    clock: u64,
    /// Idle at `MaxBuilds`.
    worn_idle: bool,
    /// Idle.
    idle: bool,
}

const EMPTY: Leaf =
    Leaf { counted: false, counted_raw: false, clock: u64::MAX, worn_idle: false, idle: false };

impl Leaf {
    fn of(m: &Machine, max_builds: u32) -> Leaf {
        let idle = m.state == MachineState::Idle;
        let worn = max_builds > 0 && m.used_count >= max_builds;
        let available = matches!(m.state, MachineState::Creating | MachineState::Acquired);
        Leaf {
            counted: available || (idle && !worn),
            counted_raw: available || idle,
            // u64::MAX means "no clock": a real clock at the end of time is one ms earlier.
            clock: if idle && !worn { m.used_at.0.min(u64::MAX - 1) } else { u64::MAX },
            worn_idle: idle && worn,
            idle,
        }
    }
}

/// The index over one pool's machines.
#[derive(Debug, Clone)]
pub(super) struct SlotIndex {
    slots: Slots,
    leaves: Vec<Leaf>,
    counted: CountTree,
    counted_raw: CountTree,
    clocks: MinTree,
    /// Idle machines at `MaxBuilds`, in id order.
    worn_idle: BTreeSet<MachineId>,
    /// Idle machines, in id order.
    idle: BTreeSet<MachineId>,
    /// The `MaxBuilds` the leaves were computed with.
    max_builds: u32,
}

impl Default for SlotIndex {
    fn default() -> Self {
        SlotIndex::with_capacity(16, 0)
    }
}

impl SlotIndex {
    fn with_capacity(capacity: usize, max_builds: u32) -> SlotIndex {
        SlotIndex {
            slots: Slots::new(capacity),
            leaves: Vec::with_capacity(capacity),
            counted: CountTree::new(capacity),
            counted_raw: CountTree::new(capacity),
            clocks: MinTree::new(capacity),
            worn_idle: BTreeSet::new(),
            idle: BTreeSet::new(),
            max_builds,
        }
    }

    /// The `MaxBuilds` the index judges machines by.
    pub(super) fn max_builds(&self) -> u32 {
        self.max_builds
    }

    /// A new machine, with an id above every other: its slot, or `None` when the index must
    /// be rebuilt (full, or the id is out of order).
    pub(super) fn push(&mut self, id: MachineId, m: &Machine) -> Option<u32> {
        let slot = self.slots.push(id)?;
        self.leaves.push(EMPTY);
        self.update(slot as u32, m);
        Some(slot as u32)
    }

    /// Brings slot `slot`'s contributions in line with machine `m`.
    pub(super) fn update(&mut self, slot: u32, m: &Machine) {
        let new = Leaf::of(m, self.max_builds);
        self.set_leaf(slot as usize, new);
    }

    /// Forgets the machine in `slot`.
    pub(super) fn remove(&mut self, slot: u32) {
        self.set_leaf(slot as usize, EMPTY);
        self.slots.remove(slot as usize);
    }

    fn set_leaf(&mut self, slot: usize, new: Leaf) {
        let old = self.leaves[slot];
        if old == new {
            return;
        }
        let id = self.slots.id(slot);
        if old.counted != new.counted {
            self.counted.add(slot, if new.counted { 1 } else { -1 });
        }
        if old.counted_raw != new.counted_raw {
            self.counted_raw.add(slot, if new.counted_raw { 1 } else { -1 });
        }
        if old.clock != new.clock {
            self.clocks.set(slot, new.clock);
        }
        if old.worn_idle != new.worn_idle {
            toggle(&mut self.worn_idle, id, new.worn_idle);
        }
        if old.idle != new.idle {
            toggle(&mut self.idle, id, new.idle);
        }
        self.leaves[slot] = new;
    }

    /// A fresh index of `machines` (in id order) judged by `max_builds`, with room to grow;
    /// calls `assign` with each machine's new slot.
    pub(super) fn rebuild<'a>(
        machines: impl ExactSizeIterator<Item = (MachineId, &'a Machine)>,
        max_builds: u32,
        mut assign: impl FnMut(MachineId, u32),
    ) -> SlotIndex {
        let capacity = Slots::capacity_for(machines.len());
        let mut index = SlotIndex::with_capacity(capacity, max_builds);
        for (id, m) in machines {
            let slot = index.push(id, m).expect("room and order after a rebuild");
            assign(id, slot);
        }
        index
    }

    /// The slot after the `k`-th machine the removal pass counts as available (0 for
    /// `k` = 0): idle machines from there on are over `IdleCount`. `None`: fewer than `k`.
    pub(super) fn after_kth_counted(&self, k: u32, raw: bool) -> Option<usize> {
        if k == 0 {
            return Some(0);
        }
        let tree = if raw { &self.counted_raw } else { &self.counted };
        tree.kth(k).map(|slot| slot + 1)
    }

    /// The idle machines below `MaxBuilds` in slots `from..` whose clock is at or before
    /// `threshold`, in id order.
    pub(super) fn expired_from(&self, from: usize, threshold: u64, slots: &mut Vec<usize>) {
        slots.clear();
        self.clocks.at_most_from(from, threshold.min(u64::MAX - 1), usize::MAX, slots);
    }

    /// The machine in a slot.
    pub(super) fn id(&self, slot: usize) -> MachineId {
        self.slots.id(slot)
    }

    /// Every machine of the index, in id order.
    pub(super) fn ids(&self) -> impl DoubleEndedIterator<Item = MachineId> + '_ {
        self.slots.ids()
    }

    /// The earliest idle clock among machines below `MaxBuilds` in slots `from..`.
    pub(super) fn min_clock_from(&self, from: usize) -> Option<u64> {
        Some(self.clocks.min_from(from)).filter(|&c| c != u64::MAX)
    }

    /// Idle machines at `MaxBuilds`, in id order.
    pub(super) fn worn_idle(&self) -> &BTreeSet<MachineId> {
        &self.worn_idle
    }

    /// The newest idle machine.
    pub(super) fn newest_idle(&self) -> Option<MachineId> {
        self.idle.last().copied()
    }
}

fn toggle(set: &mut BTreeSet<MachineId>, id: MachineId, present: bool) {
    if present {
        set.insert(id);
    } else {
        set.remove(&id);
    }
}
