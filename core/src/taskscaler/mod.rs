//! The docker-autoscaler executor's taskscaler (reference §3): instances with job slots,
//! reservations made before a job request, acquisitions in Prepare, and the scaling rule that
//! keeps `idle_count` idle **slots** (not instances).
//!
//! ```text
//!  scale ─► Creating ──ready──► Running (slots: free / acquired) ──idle ≥ idle_time, surplus──► Removing
//!              └─fail─► Removing            └── max_use_count reached, last slot freed ─────────┘
//!
//!  Acquire (before each job request) = Reserve: preemptive → needs a free ready slot;
//!                                      otherwise → needs acquired + reserved < max_instances × capacity
//!  Prepare = Acquire a slot on a running instance (waits up to the acquire timeout)
//!  Release = the slot is free again; the instance's idle clock restarts when its last slot frees
//! ```
//!
//! Unlike docker+machine, scaling does not happen inside the runner's `Acquire`: taskscaler
//! runs its own loop. Its tick rate is not documented (§3.4), so the model evaluates the
//! scaling rule after every event that can change its inputs and at the instants where an idle
//! instance expires or a throttle token arrives — as if the loop ran continuously. What is
//! modelled and what is assumed is listed in the README ("docker-autoscaler").

use std::collections::BTreeMap;

mod instance_index;

use instance_index::InstanceIndex;

use crate::docker_machine::{Counts, RemovalReason};
use crate::ids::MachineId;
use crate::time::SimTime;

/// One `[[runners.autoscaler.policy]]` (§3.1), or taskscaler's defaults when none applies.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Policy {
    /// `idle_count`: idle job **slots** to keep.
    pub idle_count: u32,
    /// `idle_time` in ms: how long an instance with no job may idle before it may go.
    pub idle_time_ms: u64,
    /// `scale_factor`: extra idle slots as a factor of the slots in use.
    pub scale_factor: f64,
    /// `scale_factor_limit`: cap on the `scale_factor` term (0 = none).
    pub scale_factor_limit: u32,
    /// `preemptive_mode`: request jobs only when a free slot on a running instance exists.
    pub preemptive: bool,
}

/// How `scale_factor` combines with `idle_count`. The docs say both (§3.4); the switch keeps
/// both readings available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScaleFactorRule {
    /// `max(idle_count, scale_factor × in use)`: `idle_count` is the minimum idle capacity
    /// and `scale_factor_limit` the maximum (the docs' prose, and the Kubernetes executor's
    /// documented formula). The default.
    #[default]
    Max,
    /// `idle_count + scale_factor × in use`: the scale-factor capacity comes on top (the docs'
    /// policy table).
    OnTop,
}

/// `[runners.autoscaler.scale_throttle]`: a token bucket on instance creations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Tokens per second; `None` = unlimited.
    pub per_s: Option<u32>,
    /// Bucket size (at least 1).
    pub burst: u32,
}

/// The docker-autoscaler settings of one `[[runners]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoscalerSpec {
    /// `capacity_per_instance` (≥ 1): jobs one instance runs at once.
    pub capacity_per_instance: u32,
    /// `max_use_count`: jobs per instance before it is removed (0 = unlimited).
    pub max_use_count: u32,
    /// `max_instances` (0 = unlimited): "the maximum number of instances that are allowed,
    /// this is regardless of the instance state (pending, running, deleting)" (GitLab Runner
    /// 19.4 `docs/configuration/advanced-configuration.md`), so no instance is created while
    /// deleting ones fill the cap. The scaling rule's own count leaves deleting instances
    /// out ([`InstancePool::scale`]).
    pub max_instances: u32,
    /// How long a job's Prepare may wait for a slot before the job fails, in ms: the
    /// `instance_acquire_timeout` of each of GitLab Runner's 3 Prepare attempts plus the
    /// 3 s pauses between them (the caller computes it).
    pub acquire_wait_ms: u64,
    /// The policies in file order; the last matching one wins.
    pub policies: Vec<Policy>,
    /// The policy when none matches (taskscaler's zero values).
    pub default_policy: Policy,
    /// The creation throttle.
    pub throttle: Throttle,
    /// How `scale_factor` is read.
    pub scale_factor_rule: ScaleFactorRule,
    /// Slowdown of co-located jobs: a script runs `1 + contention × (other jobs on the
    /// instance when it starts)` times longer. 0 (the default) = no contention.
    pub contention: f64,
}

impl AutoscalerSpec {
    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.capacity_per_instance == 0 {
            return Err("capacity_per_instance must be at least 1".into());
        }
        if self.throttle.burst == 0 {
            return Err("scale_throttle burst must be at least 1".into());
        }
        if !(self.contention >= 0.0 && self.contention.is_finite()) {
            return Err(format!("contention must be a finite number ≥ 0, not {}", self.contention));
        }
        for p in self.policies.iter().chain([&self.default_policy]) {
            if !(p.scale_factor >= 0.0 && p.scale_factor.is_finite()) {
                return Err(format!("scale_factor must be ≥ 0, not {}", p.scale_factor));
            }
        }
        Ok(())
    }
}

/// The state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    /// Being created by the cloud plugin.
    Creating,
    /// Ready: its slots take jobs.
    Running,
    /// Being deleted (no longer counted by the scaling rule).
    Removing,
}

/// One instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    /// Its state.
    pub state: InstanceState,
    /// Slots acquired by jobs.
    pub in_use: u32,
    /// Jobs it took so far (for `max_use_count`).
    pub uses: u32,
    /// When it was last left with no job (or became ready): its idle clock.
    pub idle_since: SimTime,
}

/// What the pool wants done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolAction {
    /// Create this instance.
    Create(MachineId),
    /// Delete this instance.
    Remove(MachineId, RemovalReason),
}

/// The instances of one `[[runners]]` entry, oldest first, with the reservation counters.
#[derive(Debug)]
pub struct InstancePool {
    instances: BTreeMap<MachineId, Instance>,
    /// Reservations not yet turned into acquisitions (requests in flight, jobs waiting in
    /// Prepare).
    reserved: u32,
    /// Slots acquired, over every instance.
    acquired: u32,
    /// Throttle tokens, and the instant they were counted.
    tokens: f64,
    tokens_at: SimTime,
    /// When a reservable slot last appeared after there was none (for the pending split).
    slot_free_since: SimTime,
    had_free_slot: bool,
    /// `capacity_per_instance` and `max_use_count`, for the running sums below.
    capacity: u32,
    max_use_count: u32,
    /// Sums over the instances, kept as they change: the scaling rule and `Reserve` run after
    /// every input, so they must not walk the instances.
    sums: Sums,
    /// `Acquire`'s pick and the idle clocks, kept as they change (for the same reason).
    index: InstanceIndex,
    /// Walk every instance instead of asking the index (the reference).
    walk_only: bool,
}

/// Slots of `i` that can still take a job: free slots of a running instance, no more than
/// the uses it has left.
fn usable(capacity: u32, max_use_count: u32, i: &Instance) -> u32 {
    if i.state != InstanceState::Running {
        return 0;
    }
    let free = capacity - i.in_use;
    if max_use_count > 0 { free.min(max_use_count.saturating_sub(i.uses)) } else { free }
}

/// What one instance adds to the pool's sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sums {
    /// Instances by state, in the shape the reports read after every input.
    by_state: Counts,
    /// Slots of running instances that can take a job.
    usable: u32,
    /// Free slots of running instances that can take no job (`max_use_count` reached).
    unavailable: u32,
}

impl Sums {
    /// Adds `b` and takes `a` away, field by field.
    fn replace(&mut self, a: Sums, b: Sums) {
        let f = |x: &mut u32, a: u32, b: u32| *x = *x - a + b;
        let s = self;
        f(&mut s.by_state.creating, a.by_state.creating, b.by_state.creating);
        f(&mut s.by_state.idle, a.by_state.idle, b.by_state.idle);
        f(&mut s.by_state.used, a.by_state.used, b.by_state.used);
        f(&mut s.by_state.removing, a.by_state.removing, b.by_state.removing);
        f(&mut s.usable, a.usable, b.usable);
        f(&mut s.unavailable, a.unavailable, b.unavailable);
    }
}

impl InstancePool {
    /// An empty pool with a full throttle bucket.
    pub fn new(spec: &AutoscalerSpec) -> InstancePool {
        InstancePool {
            instances: BTreeMap::new(),
            reserved: 0,
            acquired: 0,
            tokens: f64::from(spec.throttle.burst),
            tokens_at: SimTime::ZERO,
            slot_free_since: SimTime::ZERO,
            had_free_slot: false,
            capacity: spec.capacity_per_instance,
            max_use_count: spec.max_use_count,
            sums: Sums::default(),
            index: InstanceIndex::new(spec.capacity_per_instance, spec.max_use_count),
            walk_only: false,
        }
    }

    /// A pool that walks every instance for `Acquire`'s pick, the scaling loop's deletions
    /// and its next event: the reference the indexed pool is tested against.
    pub fn reference(spec: &AutoscalerSpec) -> InstancePool {
        InstancePool { walk_only: true, ..InstancePool::new(spec) }
    }

    /// What instance `i` adds to the sums.
    fn sums_of(capacity: u32, max_use_count: u32, i: &Instance) -> Sums {
        let mut s = Sums::default();
        match i.state {
            InstanceState::Creating => s.by_state.creating = 1,
            InstanceState::Running => {
                if i.in_use == 0 {
                    s.by_state.idle = 1;
                } else {
                    s.by_state.used = 1;
                }
                s.usable = usable(capacity, max_use_count, i);
                s.unavailable = capacity - i.in_use - s.usable;
            }
            InstanceState::Removing => s.by_state.removing = 1,
        }
        s
    }

    /// The sums walked from scratch (for tests of the running ones).
    #[cfg(test)]
    fn recount(&self) -> Sums {
        let mut total = Sums::default();
        for i in self.instances.values() {
            total.replace(Sums::default(), Self::sums_of(self.capacity, self.max_use_count, i));
        }
        total
    }

    /// Changes instance `id` with `f`, keeping the sums.
    fn change<T>(&mut self, id: MachineId, f: impl FnOnce(&mut Instance) -> T) -> T {
        let (c, m) = (self.capacity, self.max_use_count);
        let i = self.instances.get_mut(&id).expect("known instance");
        let before = Self::sums_of(c, m, i);
        let out = f(i);
        let after = Self::sums_of(c, m, i);
        self.sums.replace(before, after);
        self.index.update(id, i);
        out
    }

    /// One instance.
    pub fn get(&self, id: MachineId) -> Option<&Instance> {
        self.instances.get(&id)
    }

    /// The instances, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (MachineId, &Instance)> {
        self.instances.iter().map(|(&id, i)| (id, i))
    }

    /// Reservations outstanding.
    pub fn reserved(&self) -> u32 {
        self.reserved
    }

    /// Slots acquired.
    pub fn acquired(&self) -> u32 {
        self.acquired
    }

    /// Free slots on running instances.
    pub fn free_ready_slots(&self) -> u32 {
        self.sums.usable
    }

    /// Whether `Reserve` succeeds (§3.3): in preemptive mode a free ready slot must be left
    /// after the other reservations; otherwise only `max_instances × capacity` bounds it.
    pub fn can_reserve(&self, spec: &AutoscalerSpec, policy: &Policy) -> bool {
        if policy.preemptive {
            self.free_ready_slots() > self.reserved
        } else {
            spec.max_instances == 0
                || self.acquired + self.reserved < spec.max_instances * spec.capacity_per_instance
        }
    }

    /// Takes a reservation (the caller checked [`InstancePool::can_reserve`]).
    pub fn reserve(&mut self) {
        self.reserved += 1;
    }

    /// Gives a reservation back (the job request returned no job, or the waiting job failed).
    pub fn unreserve(&mut self) {
        self.reserved = self.reserved.checked_sub(1).expect("unreserve without a reservation");
    }

    /// Turns a reservation into a slot on a running instance, if one is free: the fullest
    /// instance first (packing leaves other instances idle so they can go), then the oldest.
    /// Which instance taskscaler picks is not documented; this choice is an assumption.
    pub fn acquire(&mut self, spec: &AutoscalerSpec) -> Option<MachineId> {
        if self.sums.usable == 0 {
            return None;
        }
        let id = if self.walk_only {
            let (&id, _) = self
                .instances
                .iter()
                .filter(|(_, i)| usable(self.capacity, self.max_use_count, i) > 0)
                .min_by_key(|(id, i)| (spec.capacity_per_instance - i.in_use, **id))?;
            id
        } else {
            self.index.fullest_usable()?
        };
        self.change(id, |i| {
            i.in_use += 1;
            i.uses += 1;
        });
        self.reserved = self.reserved.checked_sub(1).expect("acquire without a reservation");
        self.acquired += 1;
        Some(id)
    }

    /// Frees a job's slot. Returns a removal when the instance has used up `max_use_count`
    /// and is now empty ("as soon as the job is complete the instance … is deleted").
    pub fn release(
        &mut self,
        now: SimTime,
        spec: &AutoscalerSpec,
        id: MachineId,
    ) -> Option<PoolAction> {
        self.acquired -= 1;
        let retire = self.change(id, |i| {
            i.in_use = i.in_use.checked_sub(1).expect("release of a free slot");
            if i.in_use == 0 {
                i.idle_since = now;
            }
            let retire = i.in_use == 0
                && i.state == InstanceState::Running
                && spec.max_use_count > 0
                && i.uses >= spec.max_use_count;
            if retire {
                i.state = InstanceState::Removing;
            }
            retire
        });
        retire.then_some(PoolAction::Remove(id, RemovalReason::TooManyBuilds))
    }

    /// Starts creating `id`.
    pub fn create(&mut self, now: SimTime, id: MachineId) {
        let i = Instance { state: InstanceState::Creating, in_use: 0, uses: 0, idle_since: now };
        assert!(self.instances.insert(id, i).is_none(), "instance id reused");
        self.sums.by_state.creating += 1;
        if !self.index.push(id, &i) {
            // Full, or an id out of order: a new index with room (amortised O(1)).
            let all = self.instances.iter().map(|(&id, i)| (id, i));
            self.index = InstanceIndex::rebuild(all, self.capacity, self.max_use_count);
        }
    }

    /// The instance is ready: its idle clock starts now.
    pub fn ready(&mut self, now: SimTime, id: MachineId) {
        self.change(id, |i| {
            assert_eq!(i.state, InstanceState::Creating, "ready while not being created");
            i.state = InstanceState::Running;
            i.idle_since = now;
        });
    }

    /// The instance is being deleted (failed creation, lost, or removed by scaling). Its
    /// acquired slots are freed: the jobs on them are failed by the caller.
    pub fn set_removing(&mut self, id: MachineId) {
        let freed = self.change(id, |i| {
            i.state = InstanceState::Removing;
            std::mem::take(&mut i.in_use)
        });
        self.acquired -= freed;
    }

    /// Forgets a deleted instance.
    pub fn forget(&mut self, id: MachineId) {
        let i = self.instances.remove(&id).expect("known instance");
        assert_eq!(i.state, InstanceState::Removing, "forgot an instance not being removed");
        self.sums.by_state.removing -= 1;
        self.index.remove(id);
    }

    /// Instances by state, in the docker+machine shape the reports use: running instances
    /// with no job count as idle, those with a job as used.
    pub fn counts(&self) -> Counts {
        self.sums.by_state
    }

    /// Instances creating or running: what the scaling rule counts (deleting ones excluded,
    /// taskscaler MR 44).
    fn current(&self) -> u32 {
        let c = self.sums.by_state;
        c.creating + c.idle + c.used
    }

    /// How many more instances `max_instances` allows, counting instances in every state,
    /// deleting ones included (the docs' "regardless of the instance state"; fidelity audit
    /// item 9a). `u32::MAX` when unlimited.
    fn room(&self, spec: &AutoscalerSpec) -> u32 {
        if spec.max_instances == 0 {
            return u32::MAX;
        }
        spec.max_instances.saturating_sub(self.current() + self.sums.by_state.removing)
    }

    /// The instances the scaling rule wants (§3.4):
    /// `ceil((in use + unavailable + idle capacity) / capacity)`, capped by `max_instances`,
    /// where in use = acquired + reserved and unavailable = free slots that can take no job
    /// (instances at `max_use_count`).
    pub fn required(&self, spec: &AutoscalerSpec, policy: &Policy) -> u32 {
        let c = spec.capacity_per_instance;
        let in_use = self.acquired + self.reserved;
        let unavailable = self.sums.unavailable;
        let mut sf = policy.scale_factor * f64::from(in_use);
        if policy.scale_factor_limit > 0 {
            sf = sf.min(f64::from(policy.scale_factor_limit));
        }
        // Slots are whole: a fractional scale-factor term asks for the next slot.
        let sf = sf.ceil() as u32;
        let idle = match spec.scale_factor_rule {
            ScaleFactorRule::Max => policy.idle_count.max(sf),
            ScaleFactorRule::OnTop => policy.idle_count + sf,
        };
        let required = (in_use + unavailable + idle).div_ceil(c);
        if spec.max_instances > 0 { required.min(spec.max_instances) } else { required }
    }

    fn refill(&mut self, now: SimTime, spec: &AutoscalerSpec) {
        if let Some(per_s) = spec.throttle.per_s {
            let gained = (now - self.tokens_at) as f64 * f64::from(per_s) / 1000.0;
            self.tokens = (self.tokens + gained).min(f64::from(spec.throttle.burst));
        }
        self.tokens_at = now;
    }

    /// One pass of the scaling loop at `now`: create what is missing (as the throttle
    /// allows), or delete surplus instances that have no job and idled at least `idle_time`,
    /// oldest first.
    pub fn scale(
        &mut self,
        now: SimTime,
        spec: &AutoscalerSpec,
        policy: &Policy,
        mut new_id: impl FnMut() -> MachineId,
        actions: &mut Vec<PoolAction>,
    ) {
        self.refill(now, spec);
        let required = self.required(spec, policy);
        let mut current = self.current();
        let mut room = self.room(spec);
        while current < required && room > 0 {
            if spec.throttle.per_s.is_some() {
                if self.tokens < 1.0 {
                    break;
                }
                self.tokens -= 1.0;
            }
            let id = new_id();
            self.create(now, id);
            actions.push(PoolAction::Create(id));
            current += 1;
            room -= 1;
        }
        if current > required {
            let mut surplus = current - required;
            let mut expired: Vec<MachineId> = Vec::new();
            if self.walk_only {
                expired.extend(
                    self.instances
                        .iter()
                        .filter(|(_, i)| {
                            i.state == InstanceState::Running
                                && i.in_use == 0
                                && now.saturating_since(i.idle_since) >= policy.idle_time_ms
                        })
                        .map(|(&id, _)| id),
                );
            } else if let Some(threshold) =
                crate::slot_trees::expired_up_to(now, policy.idle_time_ms)
            {
                self.index.expired(threshold, surplus as usize, &mut expired);
            }
            for id in expired {
                if surplus == 0 {
                    break;
                }
                self.set_removing(id);
                actions.push(PoolAction::Remove(id, RemovalReason::TooManyIdle));
                surplus -= 1;
            }
        }
        self.track_free_slot(now);
    }

    /// Remembers when a reservable slot appeared, for the pending-time split.
    fn track_free_slot(&mut self, now: SimTime) {
        let free = self.free_ready_slots() > self.reserved;
        if free && !self.had_free_slot {
            self.slot_free_since = now;
        }
        self.had_free_slot = free;
    }

    /// When a free, unreserved slot last appeared (meaningful while one exists).
    pub fn slot_free_since(&mut self, now: SimTime) -> SimTime {
        self.track_free_slot(now);
        self.slot_free_since
    }

    /// The next instant after `now` at which [`InstancePool::scale`] would act if nothing
    /// else happens: a throttle token for a missing instance, or the expiry of an idle
    /// instance while there is a surplus.
    pub fn next_event(
        &self,
        now: SimTime,
        spec: &AutoscalerSpec,
        policy: &Policy,
    ) -> Option<SimTime> {
        let required = self.required(spec, policy);
        let current = self.current();
        if current < required && self.room(spec) > 0 {
            // (At the cap, the end of a deletion is an input that scales again.) Unthrottled, or a token is there: act now (the pool has not scaled yet, e.g.
            // before the first input of a run).
            let Some(per_s) = spec.throttle.per_s else { return Some(now) };
            if per_s == 0 {
                return None;
            }
            let gained = (now - self.tokens_at) as f64 * f64::from(per_s) / 1000.0;
            let missing = 1.0 - (self.tokens + gained).min(f64::from(spec.throttle.burst));
            if missing <= 0.0 {
                return Some(now);
            }
            let wait_ms = (missing * 1000.0 / f64::from(per_s)).ceil().max(1.0) as u64;
            return Some(now + wait_ms);
        }
        if current > required {
            if !self.walk_only {
                let clock = self.index.min_idle_clock()?;
                return Some((SimTime(clock) + policy.idle_time_ms).max(now));
            }
            return self
                .instances
                .values()
                .filter(|i| i.state == InstanceState::Running && i.in_use == 0)
                .map(|i| (i.idle_since + policy.idle_time_ms).max(now))
                .min();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(capacity: u32, max_instances: u32) -> AutoscalerSpec {
        AutoscalerSpec {
            capacity_per_instance: capacity,
            max_use_count: 0,
            max_instances,
            acquire_wait_ms: 15 * 60_000,
            policies: Vec::new(),
            default_policy: Policy::default(),
            throttle: Throttle { per_s: None, burst: 1 },
            scale_factor_rule: ScaleFactorRule::Max,
            contention: 0.0,
        }
    }

    fn idle(idle_count: u32) -> Policy {
        Policy { idle_count, preemptive: idle_count > 0, ..Policy::default() }
    }

    fn scale(pool: &mut InstancePool, now: u64, s: &AutoscalerSpec, p: &Policy) -> Vec<PoolAction> {
        let mut next = pool.instances.keys().last().map_or(0, |m| m.0 + 1);
        let mut actions = Vec::new();
        pool.scale(
            SimTime(now),
            s,
            p,
            || {
                next += 1;
                MachineId(next - 1)
            },
            &mut actions,
        );
        assert_eq!(pool.sums, pool.recount(), "running sums drifted");
        actions
    }

    #[test]
    fn idle_count_counts_slots_not_instances() {
        // The docs' example (§3.4): capacity 1, idle 5 → 5 instances; capacity 5, idle 5 → 1.
        let s1 = spec(1, 0);
        let mut pool = InstancePool::new(&s1);
        assert_eq!(scale(&mut pool, 0, &s1, &idle(5)).len(), 5);
        let s5 = spec(5, 0);
        let mut pool = InstancePool::new(&s5);
        assert_eq!(scale(&mut pool, 0, &s5, &idle(5)).len(), 1);
    }

    #[test]
    fn scale_factor_rules_differ_as_documented() {
        let mut s = spec(1, 0);
        let p = Policy { idle_count: 2, scale_factor: 0.5, scale_factor_limit: 10, ..idle(2) };
        let mut pool = InstancePool::new(&s);
        pool.acquired = 8; // 8 slots in use (counters only; the rule reads them)
        // Max: max(2, 4) = 4 idle → 12; on top: 2 + 4 = 6 idle → 14.
        assert_eq!(pool.required(&s, &p), 12);
        s.scale_factor_rule = ScaleFactorRule::OnTop;
        assert_eq!(pool.required(&s, &p), 14);
        // The limit caps the factor term.
        let capped = Policy { scale_factor_limit: 1, ..p };
        assert_eq!(pool.required(&s, &capped), 8 + 2 + 1);
    }

    #[test]
    fn preemptive_reserve_needs_a_free_ready_slot() {
        let s = spec(2, 0);
        let p = idle(1);
        let mut pool = InstancePool::new(&s);
        assert!(!pool.can_reserve(&s, &p), "nothing running yet");
        let a = scale(&mut pool, 0, &s, &p);
        assert_eq!(a, vec![PoolAction::Create(MachineId(0))]);
        assert!(!pool.can_reserve(&s, &p), "still creating");
        pool.ready(SimTime(60_000), MachineId(0));
        assert!(pool.can_reserve(&s, &p));
        pool.reserve();
        assert!(pool.can_reserve(&s, &p), "two slots");
        pool.reserve();
        assert!(!pool.can_reserve(&s, &p), "both reserved");
        // Non-preemptive: bounded by max_instances × capacity only.
        let np = Policy { preemptive: false, ..p };
        assert!(pool.can_reserve(&s, &np));
        let bounded = spec(2, 1);
        assert!(!pool.can_reserve(&bounded, &np));
    }

    #[test]
    fn max_use_count_removes_the_instance_after_its_last_job() {
        let mut s = spec(1, 0);
        s.max_use_count = 2;
        let p = idle(0);
        let mut pool = InstancePool::new(&s);
        pool.reserve();
        scale(&mut pool, 0, &s, &p);
        pool.ready(SimTime(10), MachineId(0));
        let m = pool.acquire(&s).unwrap();
        assert_eq!(pool.release(SimTime(20), &s, m), None);
        pool.reserve();
        assert_eq!(pool.acquire(&s), Some(m));
        assert_eq!(
            pool.release(SimTime(30), &s, m),
            Some(PoolAction::Remove(m, RemovalReason::TooManyBuilds))
        );
    }

    #[test]
    fn surplus_instances_go_oldest_first_after_idle_time() {
        let s = spec(1, 0);
        let busy = idle(3);
        let mut pool = InstancePool::new(&s);
        scale(&mut pool, 0, &s, &busy);
        for id in 0..3 {
            pool.ready(SimTime(1000 + id), MachineId(id as u32));
        }
        let quiet = Policy { idle_time_ms: 5000, ..idle(1) };
        assert!(scale(&mut pool, 2000, &s, &quiet).is_empty(), "not idle long enough");
        assert_eq!(pool.next_event(SimTime(2000), &s, &quiet), Some(SimTime(6000)));
        assert_eq!(
            scale(&mut pool, 6001, &s, &quiet),
            vec![
                PoolAction::Remove(MachineId(0), RemovalReason::TooManyIdle),
                PoolAction::Remove(MachineId(1), RemovalReason::TooManyIdle)
            ]
        );
        assert_eq!(pool.next_event(SimTime(6001), &s, &quiet), None);
    }

    #[test]
    fn throttle_spreads_creations() {
        let mut s = spec(1, 0);
        s.throttle = Throttle { per_s: Some(1), burst: 2 };
        let mut pool = InstancePool::new(&s);
        assert_eq!(scale(&mut pool, 0, &s, &idle(5)).len(), 2, "the burst");
        assert_eq!(pool.next_event(SimTime(0), &s, &idle(5)), Some(SimTime(1000)));
        assert_eq!(scale(&mut pool, 1000, &s, &idle(5)).len(), 1);
    }
}
