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

use std::cell::Cell;
use std::collections::BTreeMap;

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
#[derive(Debug, Default)]
pub struct MachinePool {
    machines: BTreeMap<MachineId, Machine>,
    counts: Counts,
    /// Bumped on every change, so the answer of [`MachinePool::next_removal_at`] can be
    /// remembered while nothing changes (the fast path asks after every input).
    generation: u64,
    removal_memo: Cell<Option<RemovalMemo>>,
}

#[derive(Debug, Clone, Copy)]
struct RemovalMemo {
    generation: u64,
    from: SimTime,
    settings: IdleSettings,
    limit: u32,
    max_builds: u32,
    answer: Option<SimTime>,
}

impl MachinePool {
    /// Machines by state.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// One machine.
    pub fn get(&self, id: MachineId) -> Option<&Machine> {
        self.machines.get(&id)
    }

    /// Changes a machine's state, keeping the counts.
    pub fn set_state(&mut self, id: MachineId, state: MachineState) {
        self.generation += 1;
        let m = self.machines.get_mut(&id).expect("known machine");
        self.counts.add(m.state, -1);
        self.counts.add(state, 1);
        m.state = state;
    }

    /// Mutable access to a machine's fields other than its state.
    pub fn machine_mut(&mut self, id: MachineId) -> &mut Machine {
        self.generation += 1;
        self.machines.get_mut(&id).expect("known machine")
    }

    /// Starts creating machine `id` (state `Creating`).
    pub fn create(&mut self, now: SimTime, id: MachineId, on_demand: bool) {
        let m = Machine {
            state: MachineState::Creating,
            used_at: now,
            used_count: 0,
            free_since: now,
            on_demand,
        };
        self.generation += 1;
        assert!(self.machines.insert(id, m).is_none(), "machine id reused");
        self.counts.add(MachineState::Creating, 1);
    }

    /// Forgets a machine whose removal finished.
    pub fn forget(&mut self, id: MachineId) {
        self.generation += 1;
        let m = self.machines.remove(&id).expect("known machine");
        self.counts.add(m.state, -1);
    }

    /// The newest idle machine, if any.
    pub fn newest_idle(&self) -> Option<MachineId> {
        self.machines.iter().rev().find(|(_, m)| m.state == MachineState::Idle).map(|(&id, _)| id)
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
        self.removal_pass(now, s, caps, actions);
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

    fn removal_pass(
        &mut self,
        now: SimTime,
        s: &IdleSettings,
        caps: &Caps,
        actions: &mut Vec<PoolAction>,
    ) {
        let mut so_far = Counts::default();
        let ids: Vec<MachineId> = self.machines.keys().copied().collect();
        for id in ids {
            let m = self.machines[&id];
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

    /// The earliest instant ≥ `from` at which the removal pass would remove a machine, if
    /// nothing else changes before then. Exact: it replays the pass at each expiry instant.
    pub fn next_removal_at(&self, from: SimTime, s: &IdleSettings, caps: &Caps) -> Option<SimTime> {
        // While nothing changed, an answer at or after `from` found for an earlier `from` still
        // holds: no expiry before it removed anything, and the machines are the same.
        if let Some(m) = self.removal_memo.get()
            && m.generation == self.generation
            && m.settings == *s
            && (m.limit, m.max_builds) == (caps.limit, caps.max_builds)
            && m.from <= from
            && m.answer.is_none_or(|a| a >= from)
        {
            return m.answer;
        }
        let answer = self.compute_next_removal(from, s, caps);
        self.removal_memo.set(Some(RemovalMemo {
            generation: self.generation,
            from,
            settings: *s,
            limit: caps.limit,
            max_builds: caps.max_builds,
            answer,
        }));
        answer
    }

    fn compute_next_removal(
        &self,
        from: SimTime,
        s: &IdleSettings,
        caps: &Caps,
    ) -> Option<SimTime> {
        // The pass judges each idle machine against the machines before it (`so_far`), which
        // does not depend on the time; only "idle longer than IdleTime" does. So one walk
        // finds the answer (it used to replay the pass at every expiry: O(machines²) per
        // call, cubic over a run that pre-creates a large IdleCount). At a candidate instant
        // t (an idle machine's expiry clamped to `from`), the pass removes something iff
        // some idle machine has a time-independent reason (MaxBuilds, limit), or is over
        // IdleCount (`idle_exceeded`) with t at or after its own expiry. The first such t is
        // the smallest expiry overall in the first case, else the smallest expiry among the
        // machines over IdleCount.
        let expiry = |m: &Machine| (m.used_at + s.idle_time_ms).max(from);
        let mut earliest: Option<SimTime> = None;
        let mut any_always = false;
        let mut earliest_idle_removal: Option<SimTime> = None;
        let mut so_far = Counts::default();
        for m in self.machines.values() {
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
    pub fn iter(&self) -> impl Iterator<Item = (MachineId, &Machine)> {
        self.machines.iter().map(|(&id, m)| (id, m))
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
