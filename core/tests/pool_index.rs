//! The indexed machine pool against the reference walk (issue 15): GitLab Runner 19.4's
//! `updateMachines` walks every machine on every `Acquire`; [`MachinePool::reference`] does
//! the same, the default pool answers from an index. On random sequences of what the fleet
//! does to a pool (create, ready, acquire, use, release, lose, forget, time passing, periods
//! changing the idle settings), both must give the same `Acquire` results and actions, the
//! same next removal instant, the same newest idle machine and the same counts. The same for
//! docker-autoscaler's [`InstancePool`](fleetsim_core::taskscaler::InstancePool) and taskscaler's
//! scaling loop (module `instances`).

#![allow(clippy::unwrap_used)]

use fleetsim_core::docker_machine::{Caps, IdleSettings, MachinePool, MachineState};
use fleetsim_core::ids::MachineId;
use fleetsim_core::time::SimTime;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Time passes.
    Wait(u64),
    /// Create a machine (`on_demand`), with the next id or, rarely, an id below the others.
    Create { on_demand: bool, out_of_order: bool },
    /// The n-th machine (mod the pool size) reaches the next state of its life.
    Step(usize),
    /// The n-th machine is lost (spot interruption): removing.
    Lose(usize),
    /// `Acquire` with the current settings.
    Acquire,
    /// A period begins: new idle settings.
    Settings(IdleSettings),
}

fn settings() -> impl Strategy<Value = IdleSettings> {
    (0u32..6, 0u32..3, prop_oneof![4 => Just(0.0), 1 => 0.5f64..2.0], 0u64..4).prop_map(
        |(idle_count, idle_count_min, idle_scale_factor, t)| IdleSettings {
            idle_count,
            idle_count_min,
            idle_scale_factor,
            idle_time_ms: t * 1_000,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..2_500).prop_map(Op::Wait),
        2 => (any::<bool>(), prop::bool::weighted(0.05))
            .prop_map(|(on_demand, out_of_order)| Op::Create { on_demand, out_of_order }),
        6 => any::<usize>().prop_map(Op::Step),
        1 => any::<usize>().prop_map(Op::Lose),
        4 => Just(Op::Acquire),
        1 => settings().prop_map(Op::Settings),
    ]
}

/// Both pools, driven alike.
struct Twin {
    indexed: MachinePool,
    reference: MachinePool,
    next: u32,
    now: SimTime,
    s: IdleSettings,
    caps: Caps,
}

impl Twin {
    fn both(&mut self, f: impl Fn(&mut MachinePool)) {
        f(&mut self.indexed);
        f(&mut self.reference);
    }

    fn nth(&self, n: usize) -> Option<(MachineId, MachineState, u32)> {
        let len = self.reference.iter().count();
        (len > 0).then(|| {
            let (id, m) = self.reference.iter().nth(n % len).unwrap();
            (id, m.state, m.used_count)
        })
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match *op {
            Op::Wait(ms) => self.now = self.now + ms,
            Op::Create { on_demand, out_of_order } => {
                let free_low = (0..self.next)
                    .rev()
                    .map(MachineId)
                    .find(|id| out_of_order && self.reference.get(*id).is_none() && id.0 % 7 == 3);
                let id = free_low.unwrap_or_else(|| {
                    self.next += 1 + self.next % 3; // ids of other runners in between
                    MachineId(self.next)
                });
                self.both(|p| p.create(now, id, on_demand));
            }
            Op::Step(n) => {
                let Some((id, state, used_count)) = self.nth(n) else { return };
                let max_builds = self.caps.max_builds;
                match state {
                    // `docker-machine create` finished: Used = now, idle.
                    MachineState::Creating => self.both(|p| {
                        p.set_used_at(id, now);
                        p.set_state(id, MachineState::Idle);
                    }),
                    // Prepare uses it.
                    MachineState::Idle | MachineState::Acquired => self.both(|p| {
                        p.set_state(id, MachineState::Used);
                        p.start_build(id, now);
                    }),
                    // Release: Used = now; at MaxBuilds it goes, else it idles.
                    MachineState::Used => self.both(|p| {
                        p.set_used_at(id, now);
                        let worn = max_builds > 0 && used_count >= max_builds;
                        p.set_state(
                            id,
                            if worn { MachineState::Removing } else { MachineState::Idle },
                        );
                    }),
                    MachineState::Removing => self.both(|p| p.forget(id)),
                }
            }
            Op::Lose(n) => {
                if let Some((id, state, _)) = self.nth(n)
                    && state != MachineState::Removing
                {
                    self.both(|p| p.set_state(id, MachineState::Removing));
                }
            }
            Op::Acquire => {
                let (s, caps) = (self.s, self.caps);
                let mut results = Vec::new();
                for pool in [&mut self.indexed, &mut self.reference] {
                    let mut next = self.next;
                    let mut actions = Vec::new();
                    let got = pool.acquire(
                        now,
                        &s,
                        &caps,
                        || {
                            next += 1;
                            MachineId(next)
                        },
                        &mut actions,
                    );
                    results.push((got, actions, next));
                }
                assert_eq!(results[0], results[1], "Acquire at {now:?} with {s:?} {caps:?}");
                self.next = results[0].2;
            }
            Op::Settings(s) => self.s = s,
        }
        self.check();
    }

    fn check(&self) {
        let (i, r) = (&self.indexed, &self.reference);
        assert_eq!(i.counts(), r.counts());
        assert_eq!(i.newest_idle(), r.newest_idle());
        for from in [self.now, self.now + 1_500] {
            assert_eq!(
                i.next_removal_at(from, &self.s, &self.caps),
                r.next_removal_at(from, &self.s, &self.caps),
                "next removal from {from:?} with {:?} {:?}",
                self.s,
                self.caps
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_indexed_pool_answers_as_the_reference_walk(
        s in settings(),
        limit in prop_oneof![Just(0u32), 1u32..12],
        max_growth_rate in 0u32..3,
        max_builds in prop_oneof![2 => Just(0u32), 1 => 1u32..4],
        ops in prop::collection::vec(op(), 1..300),
    ) {
        let mut twin = Twin {
            indexed: MachinePool::default(),
            reference: MachinePool::reference(),
            next: 0,
            now: SimTime(0),
            s,
            caps: Caps { limit, max_growth_rate, max_builds },
        };
        for op in &ops {
            twin.apply(op);
        }
    }
}

/// Hundreds of machines: the index grows (rebuilds) several times on the way and forgets
/// many, and still answers as the walk does.
#[test]
fn a_large_pool_grows_and_shrinks_alike() {
    let s = IdleSettings {
        idle_count: 40,
        idle_count_min: 0,
        idle_scale_factor: 0.0,
        idle_time_ms: 500,
    };
    let mut twin = Twin {
        indexed: MachinePool::default(),
        reference: MachinePool::reference(),
        next: 0,
        now: SimTime(0),
        s,
        caps: Caps { limit: 0, max_growth_rate: 0, max_builds: 3 },
    };
    for round in 0..2_000usize {
        let op = match round % 9 {
            0 | 1 => Op::Create { on_demand: round % 2 == 0, out_of_order: false },
            2..=5 => Op::Step(round * 7919),
            6 => Op::Wait(137),
            7 => Op::Acquire,
            _ => Op::Lose(round * 104_729),
        };
        twin.apply(&op);
    }
    assert!(twin.reference.iter().count() > 16, "the index had to grow");
}

/// docker-autoscaler: the indexed [`InstancePool`] against [`InstancePool::reference`].
mod instances {
    use fleetsim_core::ids::MachineId;
    use fleetsim_core::taskscaler::{
        AutoscalerSpec, InstancePool, InstanceState, Policy, ScaleFactorRule, Throttle,
    };
    use fleetsim_core::time::SimTime;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Wait(u64),
        /// The scaling loop runs.
        Scale,
        /// The n-th instance reaches its next state: ready, or (removing) forgotten.
        Step(usize),
        /// A job request reserves a slot, if `Reserve` allows it.
        Reserve,
        /// A reservation becomes a slot on an instance (Prepare), or is given back.
        Acquire(bool),
        /// The n-th instance with a job frees a slot.
        Release(usize),
        /// The n-th instance is lost.
        Lose(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u64..2_500).prop_map(Op::Wait),
            4 => Just(Op::Scale),
            4 => any::<usize>().prop_map(Op::Step),
            3 => Just(Op::Reserve),
            3 => any::<bool>().prop_map(Op::Acquire),
            3 => any::<usize>().prop_map(Op::Release),
            1 => any::<usize>().prop_map(Op::Lose),
        ]
    }

    fn spec() -> impl Strategy<Value = AutoscalerSpec> {
        (
            1u32..4,
            prop_oneof![Just(0u32), 1u32..4],
            prop_oneof![Just(0u32), 1u32..12],
            prop_oneof![Just(None), (1u32..10).prop_map(Some)],
            1u32..5,
            any::<bool>(),
        )
            .prop_map(|(capacity, max_use_count, max_instances, per_s, burst, on_top)| {
                AutoscalerSpec {
                    capacity_per_instance: capacity,
                    max_use_count,
                    max_instances,
                    acquire_wait_ms: 60_000,
                    policies: Vec::new(),
                    default_policy: Policy::default(),
                    throttle: Throttle { per_s, burst },
                    scale_factor_rule: if on_top {
                        ScaleFactorRule::OnTop
                    } else {
                        ScaleFactorRule::Max
                    },
                    contention: 0.0,
                }
            })
    }

    fn policy() -> impl Strategy<Value = Policy> {
        (0u32..6, 0u64..4, prop_oneof![3 => Just(0.0), 1 => 0.5f64..2.0], 0u32..5, any::<bool>())
            .prop_map(|(idle_count, t, scale_factor, scale_factor_limit, preemptive)| Policy {
                idle_count,
                idle_time_ms: t * 1_000,
                scale_factor,
                scale_factor_limit,
                preemptive,
            })
    }

    struct Twin {
        indexed: InstancePool,
        reference: InstancePool,
        spec: AutoscalerSpec,
        policy: Policy,
        next: u32,
        now: SimTime,
    }

    impl Twin {
        fn both(&mut self, f: impl Fn(&mut InstancePool)) {
            f(&mut self.indexed);
            f(&mut self.reference);
        }

        fn nth(&self, n: usize, keep: impl Fn(InstanceState, u32) -> bool) -> Option<MachineId> {
            let ids: Vec<MachineId> = self
                .reference
                .iter()
                .filter(|(_, i)| keep(i.state, i.in_use))
                .map(|(id, _)| id)
                .collect();
            (!ids.is_empty()).then(|| ids[n % ids.len()])
        }

        fn apply(&mut self, op: &Op) {
            let (now, spec, policy) = (self.now, self.spec.clone(), self.policy);
            match *op {
                Op::Wait(ms) => self.now = self.now + ms,
                Op::Scale => {
                    let mut results = Vec::new();
                    for pool in [&mut self.indexed, &mut self.reference] {
                        let mut next = self.next;
                        let mut actions = Vec::new();
                        pool.scale(
                            now,
                            &spec,
                            &policy,
                            || {
                                next += 1 + next % 2;
                                MachineId(next)
                            },
                            &mut actions,
                        );
                        results.push((actions, next));
                    }
                    assert_eq!(results[0], results[1], "scale at {now:?}");
                    self.next = results[0].1;
                }
                Op::Step(n) => {
                    let Some(id) = self.nth(n, |s, _| s != InstanceState::Running) else { return };
                    match self.reference.get(id).unwrap().state {
                        InstanceState::Creating => self.both(|p| p.ready(now, id)),
                        _ => self.both(|p| p.forget(id)),
                    }
                }
                Op::Reserve => {
                    if self.reference.can_reserve(&spec, &policy) {
                        self.both(InstancePool::reserve);
                    }
                }
                Op::Acquire(take) => {
                    if self.reference.reserved() == 0 {
                        return;
                    }
                    if take {
                        let a = self.indexed.acquire(&spec);
                        let b = self.reference.acquire(&spec);
                        assert_eq!(a, b, "Acquire at {now:?}");
                    } else {
                        self.both(InstancePool::unreserve);
                    }
                }
                Op::Release(n) => {
                    let Some(id) = self.nth(n, |_, in_use| in_use > 0) else { return };
                    let a = self.indexed.release(now, &spec, id);
                    let b = self.reference.release(now, &spec, id);
                    assert_eq!(a, b);
                }
                Op::Lose(n) => {
                    let Some(id) = self.nth(n, |s, _| s != InstanceState::Removing) else {
                        return;
                    };
                    self.both(|p| p.set_removing(id));
                }
            }
            let (i, r) = (&self.indexed, &self.reference);
            assert_eq!(i.counts(), r.counts());
            assert_eq!((i.acquired(), i.reserved()), (r.acquired(), r.reserved()));
            for from in [self.now, self.now + 1_500] {
                assert_eq!(
                    i.next_event(from, &self.spec, &self.policy),
                    r.next_event(from, &self.spec, &self.policy),
                    "next event from {from:?}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn the_indexed_instance_pool_answers_as_the_reference_walk(
            spec in spec(),
            policy in policy(),
            ops in prop::collection::vec(op(), 1..300),
        ) {
            let mut twin = Twin {
                indexed: InstancePool::new(&spec),
                reference: InstancePool::reference(&spec),
                spec,
                policy,
                next: 0,
                now: SimTime(0),
            };
            for op in &ops {
                twin.apply(op);
            }
        }
    }
}
