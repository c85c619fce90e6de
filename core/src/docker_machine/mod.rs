//! The docker+machine executor's autoscaler (reference §2): the machines of one
//! `[[runners]]` entry, their states, and GitLab Runner's `Acquire` algorithm with its exact
//! idle formula.
//!
//! ```text
//!  (create) ─► Creating ──ready──► Idle ◄──────────── Release ─── Used ◄── Use ── Acquired
//!                 │                 │ └── Acquire (newest first) ──────────────────┘
//!                 └─fail─► Removing ◄─ IdleTime / MaxBuilds / limit ──► (gone)
//! ```
//!
//! There is no timer: all scaling happens inside `Acquire`, which GitLab Runner calls before
//! every job request of the runner (§2.2). The fleet calls [`MachinePool::acquire`] at the
//! same moments.

use rustc_hash::FxHashMap;

mod slot_index;

use slot_index::SlotIndex;

use crate::ids::MachineId;
use crate::time::SimTime;

/// The idle settings that autoscaling periods may change (§2.8): when a period section is
/// active, all four come from it and the ones it leaves out are 0.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IdleSettings {
    /// `IdleCount`: machines to keep available (idle or being created).
    pub idle_count: u32,
    /// `IdleCountMin`: the floor when `IdleScaleFactor` is used (0 counts as 1 then).
    pub idle_count_min: u32,
    /// `IdleScaleFactor`: keep `in use × factor` available, capped by `IdleCount`.
    pub idle_scale_factor: f64,
    /// `IdleTime` in ms: how long a surplus machine may idle before removal (default 0).
    pub idle_time_ms: u64,
}

/// The docker+machine settings of one `[[runners]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerMachineSpec {
    /// The `[runners.machine]` idle settings.
    pub root: IdleSettings,
    /// One entry per `[[runners.machine.autoscaling]]` section, in order.
    pub sections: Vec<IdleSettings>,
    /// `MaxGrowthRate`: machines being created at once (0 = unlimited).
    pub max_growth_rate: u32,
    /// `MaxBuilds`: jobs per machine before it is removed (0 = unlimited).
    pub max_builds: u32,
}

/// The state of a machine (§2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MachineState {
    /// Being created (`docker-machine create`).
    Creating,
    /// Ready and free.
    Idle,
    /// Reserved by `Acquire` for a job request that is in flight.
    Acquired,
    /// Running a job.
    Used,
    /// Being removed (still counts against `limit`).
    Removing,
}

/// Why a machine was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalReason {
    /// `MaxBuilds` reached.
    TooManyBuilds,
    /// More machines than `limit` (after `limit` was lowered).
    TooManyMachines,
    /// Idle longer than `IdleTime` while enough others are available.
    TooManyIdle,
    /// `docker-machine create` failed.
    FailedToCreate,
    /// The cloud took it (spot interruption, crash).
    Lost,
}

impl RemovalReason {
    /// GitLab Runner's wording, for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalReason::TooManyBuilds => "too many builds",
            RemovalReason::TooManyMachines => "too many machines",
            RemovalReason::TooManyIdle => "too many idle machines",
            RemovalReason::FailedToCreate => "failed to create",
            RemovalReason::Lost => "lost",
        }
    }
}

/// One machine.
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    /// Its state.
    pub state: MachineState,
    /// GitLab Runner's `Used` timestamp: set when creation finishes, at job start and at job
    /// end (not when acquired for a poll). The idle clock.
    pub used_at: SimTime,
    /// Jobs started on it.
    pub used_count: u32,
    /// When it last became free (ready or released), for the pending-time split.
    pub free_since: SimTime,
    /// Whether it was created on demand in a job's Prepare (rather than as an idle machine).
    pub on_demand: bool,
}

/// Machines by state, as `Acquire` counts them (§2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Creating.
    pub creating: u32,
    /// Idle.
    pub idle: u32,
    /// Acquired.
    pub acquired: u32,
    /// Used.
    pub used: u32,
    /// Removing.
    pub removing: u32,
}

impl Counts {
    fn add(&mut self, state: MachineState, delta: i32) {
        let slot = match state {
            MachineState::Creating => &mut self.creating,
            MachineState::Idle => &mut self.idle,
            MachineState::Acquired => &mut self.acquired,
            MachineState::Used => &mut self.used,
            MachineState::Removing => &mut self.removing,
        };
        *slot = slot.checked_add_signed(delta).expect("machine count underflow");
    }

    /// `Available = Acquired + Creating + Idle`.
    pub fn available(&self) -> u32 {
        self.acquired + self.creating + self.idle
    }

    /// `Total`: machines in every state.
    pub fn total(&self) -> u32 {
        self.available() + self.used + self.removing
    }
}

/// The caps that never change with periods.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// `limit` (0 = unlimited): also the cap on machines in every state.
    pub limit: u32,
    /// `MaxGrowthRate` (0 = unlimited).
    pub max_growth_rate: u32,
    /// `MaxBuilds` (0 = unlimited).
    pub max_builds: u32,
}

/// `idleExceeded` of `idle_limit_strategy.go` (§2.4).
pub fn idle_exceeded(s: &IdleSettings, d: &Counts) -> bool {
    let available = d.available();
    if available >= s.idle_count {
        return true;
    }
    if s.idle_scale_factor > 0.0 {
        let min_idle = s.idle_count_min.max(1);
        let scale_target = (f64::from(d.used) * s.idle_scale_factor) as u32; // truncation, as Go's int()
        return available >= min_idle && available >= scale_target;
    }
    false
}

fn growth_exceeded(c: &Caps, d: &Counts) -> bool {
    c.max_growth_rate > 0 && d.creating >= c.max_growth_rate
}

fn total_exceeded(c: &Caps, d: &Counts) -> bool {
    c.limit > 0 && d.total() >= c.limit
}

/// `canCreateIdle`: pre-create another idle machine?
pub fn can_create_idle(s: &IdleSettings, c: &Caps, d: &Counts) -> bool {
    !growth_exceeded(c, d) && !total_exceeded(c, d) && !idle_exceeded(s, d)
}

/// `canCreateOnDemand`: may a job create its own machine in Prepare?
pub fn can_create_on_demand(s: &IdleSettings, c: &Caps, d: &Counts) -> bool {
    !growth_exceeded(c, d) && !total_exceeded(c, d) && (s.idle_count == 0 || !idle_exceeded(s, d))
}

/// What `Acquire` gave the job request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// An idle machine, now `Acquired`.
    Machine(MachineId),
    /// No machine, but the request may go ahead: the job creates its machine in Prepare.
    OnDemand,
    /// `NoFreeExecutorError`: no job request is sent.
    NoFree,
}

/// A machine change the fleet must carry out as a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolAction {
    /// Create this machine.
    Create(MachineId),
    /// Remove this machine.
    Remove(MachineId, RemovalReason),
}

/// The machines of one `[[runners]]` entry, oldest first.
///
/// GitLab Runner's `Acquire` walks every machine (`updateMachines`); so does
/// [`MachinePool::reference`], kept as the plain statement of the rules. The default pool
/// answers the same questions from an index kept up to date on every change
/// ([`slot_index`]), in O(log machines) per `Acquire` instead of O(machines): proptests in
/// `core/tests/pool_index.rs` check that both give the same actions and answers.
#[derive(Debug, Default)]
pub struct MachinePool {
    /// The machines by id; [`SlotIndex::ids`] gives them in id order.
    machines: FxHashMap<MachineId, Entry>,
    counts: Counts,
    index: SlotIndex,
    /// Walk every machine, as GitLab Runner does (the reference).
    walk_only: bool,
    /// Scratch space of the indexed removal pass.
    slots: Vec<usize>,
    removals: Vec<(MachineId, RemovalReason)>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    machine: Machine,
    /// Its slot in [`MachinePool::index`].
    slot: u32,
}

impl MachinePool {
    /// A pool that walks every machine on every question, as GitLab Runner's
    /// `updateMachines` does: the reference the indexed pool is tested against.
    pub fn reference() -> MachinePool {
        MachinePool { walk_only: true, ..MachinePool::default() }
    }

    /// Machines by state.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// One machine.
    pub fn get(&self, id: MachineId) -> Option<&Machine> {
        self.machines.get(&id).map(|e| &e.machine)
    }

    /// Changes machine `id` with `f` and brings the counts and the index up to date.
    fn change(&mut self, id: MachineId, f: impl FnOnce(&mut Machine)) {
        let e = self.machines.get_mut(&id).expect("known machine");
        let before = e.machine.state;
        f(&mut e.machine);
        if e.machine.state != before {
            self.counts.add(before, -1);
            self.counts.add(e.machine.state, 1);
        }
        self.index.update(e.slot, &e.machine);
    }

    /// Changes a machine's state, keeping the counts.
    pub fn set_state(&mut self, id: MachineId, state: MachineState) {
        self.change(id, |m| m.state = state);
    }

    /// Sets GitLab Runner's `Used` timestamp of a machine (its idle clock).
    pub fn set_used_at(&mut self, id: MachineId, at: SimTime) {
        self.change(id, |m| m.used_at = at);
    }

    /// A job starts on the machine: `Used` = now and one more build (`UsedCount`).
    pub fn start_build(&mut self, id: MachineId, now: SimTime) {
        self.change(id, |m| {
            m.used_at = now;
            m.used_count += 1;
        });
    }

    /// Sets the jobs a machine has run (`UsedCount`), as a test's fixture would.
    pub fn set_used_count(&mut self, id: MachineId, count: u32) {
        self.change(id, |m| m.used_count = count);
    }

    /// Records when a machine last became free, for the pending-time split.
    pub fn set_free_since(&mut self, id: MachineId, at: SimTime) {
        // Not part of any rule the index answers: no re-index needed.
        self.machines.get_mut(&id).expect("known machine").machine.free_since = at;
    }

    /// Starts creating machine `id` (state `Creating`).
    pub fn create(&mut self, now: SimTime, id: MachineId, on_demand: bool) {
        let machine = Machine {
            state: MachineState::Creating,
            used_at: now,
            used_count: 0,
            free_since: now,
            on_demand,
        };
        let slot = self.index.push(id, &machine);
        let e = Entry { machine, slot: slot.unwrap_or(u32::MAX) };
        assert!(self.machines.insert(id, e).is_none(), "machine id reused");
        self.counts.add(MachineState::Creating, 1);
        if slot.is_none() {
            self.rebuild_index(self.index.max_builds()); // full, or an id out of order
        }
    }

    /// Forgets a machine whose removal finished.
    pub fn forget(&mut self, id: MachineId) {
        let e = self.machines.remove(&id).expect("known machine");
        self.counts.add(e.machine.state, -1);
        self.index.remove(e.slot);
    }

    fn rebuild_index(&mut self, max_builds: u32) {
        // The machine being created may not hold a slot yet: sort every id (rebuilds double
        // the room, so this is amortised over the pushes that fill it).
        let mut ids: Vec<MachineId> = self.machines.keys().copied().collect();
        ids.sort_unstable();
        let machines = ids.iter().map(|id| (*id, &self.machines[id].machine));
        let mut slots = Vec::with_capacity(ids.len());
        self.index = SlotIndex::rebuild(machines, max_builds, |_, slot| slots.push(slot));
        for (id, slot) in ids.iter().zip(slots) {
            self.machines.get_mut(id).expect("known machine").slot = slot;
        }
    }

    /// The newest idle machine, if any.
    pub fn newest_idle(&self) -> Option<MachineId> {
        if self.walk_only {
            return self
                .iter()
                .rev()
                .find(|(_, m)| m.state == MachineState::Idle)
                .map(|(id, _)| id);
        }
        self.index.newest_idle()
    }

    /// Whether the index can answer for these settings: it knows neither `IdleScaleFactor`
    /// (whose target depends on the machines in use before each one) nor machines beyond a
    /// lowered `limit`; those walk, as GitLab Runner does.
    fn indexed(&self, s: &IdleSettings, caps: &Caps) -> bool {
        !self.walk_only
            && s.idle_scale_factor <= 0.0
            && (caps.limit == 0 || self.counts.total() <= caps.limit)
            && self.index.max_builds() == caps.max_builds
    }

    /// GitLab Runner's `Acquire` (§2.3): the removal pass in name order (each machine judged
    /// against the machines before it), pre-creation of idle machines, then the newest idle
    /// machine. `new_id` hands out ids for machines to create.
    pub fn acquire(
        &mut self,
        now: SimTime,
        s: &IdleSettings,
        caps: &Caps,
        mut new_id: impl FnMut() -> MachineId,
        actions: &mut Vec<PoolAction>,
    ) -> Acquired {
        if !self.walk_only && self.index.max_builds() != caps.max_builds {
            self.rebuild_index(caps.max_builds);
        }
        if self.indexed(s, caps) {
            self.removal_pass_indexed(now, s, actions);
        } else {
            self.removal_pass_walk(now, s, caps, actions);
        }
        while can_create_idle(s, caps, &self.counts) {
            let id = new_id();
            self.create(now, id, false);
            actions.push(PoolAction::Create(id));
        }
        if let Some(id) = self.newest_idle() {
            self.set_state(id, MachineState::Acquired);
            return Acquired::Machine(id);
        }
        if s.idle_count == 0 && can_create_on_demand(s, caps, &self.counts) {
            return Acquired::OnDemand;
        }
        // GitLab Runner returns NoFreeExecutorError when no machine is idle.
        Acquired::NoFree
    }

    /// The removal pass as GitLab Runner 19.4 `provider.go` `updateMachines` runs it: every
    /// machine in name order, each idle one judged by `shouldRemoveIdle` against the
    /// machines before it (machines removed earlier in the pass count as removing).
    fn removal_pass_walk(
        &mut self,
        now: SimTime,
        s: &IdleSettings,
        caps: &Caps,
        actions: &mut Vec<PoolAction>,
    ) {
        let mut so_far = Counts::default();
        let ids: Vec<MachineId> = self.index.ids().collect();
        for id in ids {
            let m = self.machines[&id].machine;
            let mut state = m.state;
            if m.state == MachineState::Idle
                && let Some(reason) = should_remove_idle(now, s, caps, &so_far, &m)
            {
                self.set_state(id, MachineState::Removing);
                actions.push(PoolAction::Remove(id, reason));
                state = MachineState::Removing;
            }
            so_far.add(state, 1);
        }
    }

    /// The same pass from the index, without `IdleScaleFactor` and within `limit`. Then
    /// `shouldRemoveIdle` removes an idle machine when it is at `MaxBuilds`, or when its idle
    /// clock has run out and the machines before it leave at least `IdleCount` available.
    /// Machines removed by the pass do not count as available, so "available before it"
    /// only grows along the walk: the idle machines past the `IdleCount`-th available one
    /// (machines at `MaxBuilds` never count, they go first) are over the count, and those of
    /// them whose clock ran out go, in id order.
    fn removal_pass_indexed(
        &mut self,
        now: SimTime,
        s: &IdleSettings,
        actions: &mut Vec<PoolAction>,
    ) {
        let mut removals = std::mem::take(&mut self.removals);
        let mut slots = std::mem::take(&mut self.slots);
        removals.clear();
        removals
            .extend(self.index.worn_idle().iter().map(|&id| (id, RemovalReason::TooManyBuilds)));
        // `idleTimeExceeded`: `now - Used >= IdleTime` (see `should_remove_idle`).
        let threshold = crate::slot_trees::expired_up_to(now, s.idle_time_ms);
        if let (Some(threshold), Some(from)) =
            (threshold, self.index.after_kth_counted(s.idle_count, false))
        {
            self.index.expired_from(from, threshold, &mut slots);
            removals.extend(
                slots.iter().map(|&slot| (self.index.id(slot), RemovalReason::TooManyIdle)),
            );
            if removals.len() > slots.len() {
                removals.sort_unstable_by_key(|&(id, _)| id); // both kinds, in name order
            }
        }
        for &(id, reason) in &removals {
            self.set_state(id, MachineState::Removing);
            actions.push(PoolAction::Remove(id, reason));
        }
        self.removals = removals;
        self.slots = slots;
    }

    /// The earliest instant ≥ `from` at which the removal pass would remove a machine, if
    /// nothing else changes before then, judged at the expiry instants of the idle clocks.
    pub fn next_removal_at(&self, from: SimTime, s: &IdleSettings, caps: &Caps) -> Option<SimTime> {
        if !self.indexed(s, caps) {
            return self.next_removal_walk(from, s, caps);
        }
        let expiry = |clock: u64| (SimTime(clock) + s.idle_time_ms).max(from);
        if !self.index.worn_idle().is_empty() {
            // A machine at `MaxBuilds` goes at the next pass: at the first expiry instant.
            let worn = self.index.worn_idle().iter().map(|id| self.machines[id].machine.used_at.0);
            let first = worn.chain(self.index.min_clock_from(0)).min().expect("an idle machine");
            return Some(expiry(first));
        }
        // Judged in their raw states (nothing removed), idle machines past the
        // `IdleCount`-th available one are over the count.
        let from_slot = self.index.after_kth_counted(s.idle_count, true)?;
        self.index.min_clock_from(from_slot).map(expiry)
    }

    /// [`MachinePool::next_removal_at`] by walking every machine once.
    fn next_removal_walk(&self, from: SimTime, s: &IdleSettings, caps: &Caps) -> Option<SimTime> {
        // The pass judges each idle machine against the machines before it (`so_far`), which
        // does not depend on the time; only "idle longer than IdleTime" does. So one walk
        // finds the answer. At a candidate instant t (an idle machine's expiry clamped to
        // `from`), the pass removes something iff some idle machine has a time-independent
        // reason (MaxBuilds, limit), or is over IdleCount (`idle_exceeded`) with t at or
        // after its own expiry. The first such t is the smallest expiry overall in the first
        // case, else the smallest expiry among the machines over IdleCount.
        let expiry = |m: &Machine| (m.used_at + s.idle_time_ms).max(from);
        let mut earliest: Option<SimTime> = None;
        let mut any_always = false;
        let mut earliest_idle_removal: Option<SimTime> = None;
        let mut so_far = Counts::default();
        for (_, m) in self.iter() {
            if m.state == MachineState::Idle {
                let t = expiry(m);
                earliest = Some(earliest.map_or(t, |e| e.min(t)));
                match should_remove_idle(SimTime(u64::MAX), s, caps, &so_far, m) {
                    Some(RemovalReason::TooManyIdle) => {
                        earliest_idle_removal = Some(earliest_idle_removal.map_or(t, |e| e.min(t)));
                    }
                    Some(_) => any_always = true,
                    None => {}
                }
            }
            so_far.add(m.state, 1);
        }
        if any_always { earliest } else { earliest_idle_removal }
    }

    /// The machines and their ids, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (MachineId, &Machine)> {
        self.index.ids().map(|id| (id, &self.machines[&id].machine))
    }
}

/// `shouldRemoveIdle` (§2.7), for an idle machine, judged against the machines before it.
fn should_remove_idle(
    now: SimTime,
    s: &IdleSettings,
    caps: &Caps,
    so_far: &Counts,
    m: &Machine,
) -> Option<RemovalReason> {
    if caps.max_builds > 0 && m.used_count >= caps.max_builds {
        return Some(RemovalReason::TooManyBuilds);
    }
    if caps.limit > 0 && so_far.total() >= caps.limit {
        return Some(RemovalReason::TooManyMachines);
    }
    // GitLab Runner 19.4 idle_limit_strategy.go `idleTimeExceeded`: `time.Since(Used) >
    // IdleTime`. Real time always moves on between the `Release` or creation that set `Used`
    // and the next `Acquire` (which runs `docker-machine ls` first), so at this model's
    // millisecond resolution an `Acquire` at `Used + IdleTime` (the same instant included)
    // finds it exceeded: with `IdleTime = 0` a released machine is removed by the next
    // `Acquire`, never reused by it.
    if now.saturating_since(m.used_at) >= s.idle_time_ms && idle_exceeded(s, so_far) {
        return Some(RemovalReason::TooManyIdle);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(idle_count: u32, min: u32, factor: f64) -> IdleSettings {
        IdleSettings { idle_count, idle_count_min: min, idle_scale_factor: factor, idle_time_ms: 0 }
    }

    const NO_CAPS: Caps = Caps { limit: 0, max_growth_rate: 0, max_builds: 0 };

    #[test]
    fn idle_scale_factor_example_of_the_docs() {
        // IdleCount 100, IdleCountMin 10, factor 1.1, 10 in use → 11 idle wanted.
        let s = settings(100, 10, 1.1);
        let used = |available: u32| Counts { idle: available, used: 10, ..Counts::default() };
        assert!(!idle_exceeded(&s, &used(10)));
        assert!(idle_exceeded(&s, &used(11)));
        // With nothing in use, keep IdleCountMin.
        let none = |available: u32| Counts { idle: available, ..Counts::default() };
        assert!(!idle_exceeded(&s, &none(9)));
        assert!(idle_exceeded(&s, &none(10)));
        // The factor is capped by IdleCount.
        let s = settings(5, 1, 2.0);
        assert!(idle_exceeded(&s, &Counts { idle: 5, used: 10, ..Counts::default() }));
    }

    #[test]
    fn idle_count_zero_never_pre_creates_but_allows_on_demand() {
        let s = settings(0, 0, 0.0);
        let d = Counts::default();
        assert!(!can_create_idle(&s, &NO_CAPS, &d));
        assert!(can_create_on_demand(&s, &NO_CAPS, &d));
        let capped = Caps { limit: 2, ..NO_CAPS };
        assert!(!can_create_on_demand(&s, &capped, &Counts { used: 1, removing: 1, ..d }));
    }

    #[test]
    fn acquire_pre_creates_up_to_the_target_and_picks_the_newest_idle() {
        let mut pool = MachinePool::default();
        let mut next = 0;
        let mut actions = Vec::new();
        let s = settings(2, 0, 0.0);
        let got = pool.acquire(
            SimTime(0),
            &s,
            &NO_CAPS,
            || {
                next += 1;
                MachineId(next)
            },
            &mut actions,
        );
        assert_eq!(got, Acquired::NoFree);
        assert_eq!(
            actions,
            vec![PoolAction::Create(MachineId(1)), PoolAction::Create(MachineId(2))]
        );
        for id in [1, 2] {
            pool.set_state(MachineId(id), MachineState::Idle);
        }
        actions.clear();
        let got = pool.acquire(
            SimTime(1),
            &s,
            &NO_CAPS,
            || {
                next += 1;
                MachineId(next)
            },
            &mut actions,
        );
        assert_eq!(got, Acquired::Machine(MachineId(2)), "newest first");
        assert!(actions.is_empty(), "an acquired machine still counts as available");
    }

    #[test]
    fn surplus_idle_machines_go_after_idle_time_oldest_kept() {
        let mut pool = MachinePool::default();
        for id in 1..=3 {
            pool.create(SimTime(0), MachineId(id), false);
            pool.set_state(MachineId(id), MachineState::Idle);
        }
        let s = IdleSettings { idle_time_ms: 1000, ..settings(1, 0, 0.0) };
        // `time.Since(Used) > IdleTime` in real time is met by an Acquire at Used + IdleTime
        // at millisecond resolution (real time has moved on by then).
        assert_eq!(pool.next_removal_at(SimTime(0), &s, &NO_CAPS), Some(SimTime(1000)));
        assert_eq!(pool.next_removal_at(SimTime(999), &s, &NO_CAPS), Some(SimTime(1000)));
        let mut actions = Vec::new();
        pool.acquire(SimTime(1000), &s, &NO_CAPS, || unreachable!(), &mut actions);
        assert_eq!(
            actions,
            vec![
                PoolAction::Remove(MachineId(2), RemovalReason::TooManyIdle),
                PoolAction::Remove(MachineId(3), RemovalReason::TooManyIdle)
            ]
        );
        assert_eq!(pool.next_removal_at(SimTime(1000), &s, &NO_CAPS), None);
    }
}
