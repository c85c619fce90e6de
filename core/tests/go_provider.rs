//! GitLab Runner 19.4's `executors/docker/machine/provider_test.go` and `coordinator_test.go`,
//! ported where they pin what fleetsim models: one Rust test per Go test (these Go tests
//! have no tables, except `TestMachineAcquireGrowthCapacity` and
//! `TestRunnerMachinesCoordinator_WaitForGrowthCapacity`, one test per case).
//!
//! Each test drives [`MachinePool::acquire`], fleetsim's `(*machineProvider).Acquire`. The Go
//! tests' other provider calls are stood in for by the pool changes fleetsim's fleet makes at
//! the same points (`core/src/fleet/machines.rs`):
//! - `Release` of a machine that ran no job: `set_state(Idle)` (`machine_free`);
//! - `Use` in on-demand mode (`IdleCount` 0): `create(.., on_demand = true)` then `Used`;
//! - a `docker-machine create` that finished: `set_state(Idle)` (`machine_ready`).
//!
//! `TestMachineMaxBuilds`, `TestMachineTestRetry` and
//! `TestRunnerMachinesCoordinator_SignalMachineAvailable`, which need a job to run, are ported
//! end to end in `sim/tests/it/go_provider.rs`.
//!
//! # Not expressible through fleetsim's inputs
//!
//! | Go test | why |
//! |---|---|
//! | `TestMachineDetails` | the provider's per-name details cache: fleetsim has machine ids, no names read back from `docker-machine ls` |
//! | `TestMachineFindFree` | `CanConnect` failures of existing machines: fleetsim's machines always accept a connection |
//! | `TestMachineCreationAndRemoval` | provision failures of named test machines (`provision-fail-%s`): fleetsim's creation failures come from the cloud model, tested in `sim/tests/it/docker_machine.rs` |
//! | `TestMachineUse`, `TestMachineUseOnDemand`, `TestMachineCreationIfFailedToConnect` | `CanConnect` / `Credentials` failures and "no-connect" machines: not modelled |
//! | `TestMachineReuse`, `TestMachineReuseWithContention` | goroutine races on `useMachine` and `docker-machine ls`; fleetsim is single-threaded and deterministic |
//! | `TestMachineMaxBuildsForExistingMachines` | a failing `docker-machine rm` ("remove-fail"): fleetsim's removals never fail |
//! | `TestMachineReleaseIfInvalidDataArePassed` | a `nil` config passed to `Release`: a Go API misuse |
//! | `TestIntermediateMachineList` | machines created but not yet listed by `docker-machine ls`: fleetsim's pool is always exact |
//! | `TestMachineOptionsWithName`, `TestMachineOptionsWithNameEmpty` | the argument list given to `docker-machine create`: fleetsim runs no `docker-machine`; the config validation of `MachineOptionsWithName` is ported in `sim/tests/it/go_config.rs` |
//! | `TestFinalizeRemoval_StopsAfterMaxAttempts` | retries of a failing removal: removals never fail |

#![allow(clippy::unwrap_used)]

use fleetsim_core::docker_machine::{
    Acquired, Caps, IdleSettings, MachinePool, MachineState, PoolAction, RemovalReason,
};
use fleetsim_core::ids::MachineId;
use fleetsim_core::time::SimTime;

/// A pool with its id counter, as the fleet holds it.
struct Provider {
    pool: MachinePool,
    next: u32,
    /// The actions of the last `acquire`.
    actions: Vec<PoolAction>,
}

impl Provider {
    fn new() -> Provider {
        Provider { pool: MachinePool::default(), next: 0, actions: Vec::new() }
    }

    /// `testMachineProvider(names...)`: machines that already exist and are idle.
    fn with_idle(n: u32) -> Provider {
        let mut p = Provider::new();
        for _ in 0..n {
            let id = p.new_id();
            p.pool.create(SimTime(0), id, false);
            p.pool.set_state(id, MachineState::Idle);
        }
        p
    }

    fn new_id(&mut self) -> MachineId {
        self.next += 1;
        MachineId(self.next)
    }

    /// `(*machineProvider).Acquire`.
    fn acquire(&mut self, now_ms: u64, s: &IdleSettings, caps: &Caps) -> Acquired {
        self.actions.clear();
        let next = &mut self.next;
        self.pool.acquire(
            SimTime(now_ms),
            s,
            caps,
            || {
                *next += 1;
                MachineId(*next)
            },
            &mut self.actions,
        )
    }

    fn created(&self) -> Vec<MachineId> {
        self.actions
            .iter()
            .filter_map(|a| if let PoolAction::Create(id) = *a { Some(id) } else { None })
            .collect()
    }

    fn removed(&self) -> Vec<(MachineId, RemovalReason)> {
        self.actions
            .iter()
            .filter_map(|a| if let PoolAction::Remove(id, r) = *a { Some((id, r)) } else { None })
            .collect()
    }

    /// Every machine being created finishes (`docker-machine create` returned).
    fn creations_finish(&mut self) {
        let creating: Vec<MachineId> = self
            .pool
            .iter()
            .filter(|(_, m)| m.state == MachineState::Creating)
            .map(|(id, _)| id)
            .collect();
        for id in creating {
            self.pool.set_state(id, MachineState::Idle);
        }
    }

    /// `Release` of a machine that ran no job.
    fn release(&mut self, a: Acquired) {
        let Acquired::Machine(id) = a else { panic!("released {a:?}") };
        assert_eq!(self.pool.get(id).unwrap().state, MachineState::Acquired);
        self.pool.set_state(id, MachineState::Idle);
    }

    /// The Go tests' `assertIdleMachines`: machines in state Idle.
    fn idle(&self) -> u32 {
        self.pool.counts().idle
    }

    /// Machines not being removed.
    fn alive(&self) -> u32 {
        let c = self.pool.counts();
        c.total() - c.removing
    }
}

/// `createMachineConfig(t, idleCount, idleTime)` (seconds).
fn cfg(idle_count: u32, idle_time_s: u64) -> IdleSettings {
    IdleSettings {
        idle_count,
        idle_count_min: 0,
        idle_scale_factor: 0.0,
        idle_time_ms: idle_time_s * 1000,
    }
}

fn limit(limit: u32) -> Caps {
    Caps { limit, max_growth_rate: 0, max_builds: 0 }
}

/// `TestMachineAcquireAndRelease`: the only machine is acquired; a second `Acquire` gets none
/// (with `IdleCount` 0 the job would create its own in `Use`); after `Release` the same machine
/// is acquired again.
#[test]
fn test_machine_acquire_and_release() {
    let mut p = Provider::with_idle(1);
    let s = cfg(0, 5);
    let d1 = p.acquire(1000, &s, &limit(0));
    assert_eq!(d1, Acquired::Machine(MachineId(1)), "acquires machine");
    let d2 = p.acquire(1000, &s, &limit(0));
    assert!(!matches!(d2, Acquired::Machine(_)), "fails to acquire a machine: {d2:?}");
    p.release(d1);
    assert_eq!(p.acquire(2000, &s, &limit(0)), d1, "acquires released machine");
}

/// `TestMachineOnDemandMode`: `IdleCount` 0, no machines: `Acquire` succeeds without a machine.
#[test]
fn test_machine_on_demand_mode() {
    let mut p = Provider::new();
    assert_eq!(p.acquire(0, &cfg(0, 1), &limit(0)), Acquired::OnDemand);
    assert!(p.actions.is_empty(), "no machine is pre-created with IdleCount 0");
}

/// `TestMachineOnDemandModeWithLimit`: `limit` 2: two `Acquire`+`Use` rounds create a machine
/// each, the third `Acquire` fails with "no free machines".
#[test]
fn test_machine_on_demand_mode_with_limit() {
    let mut p = Provider::new();
    let (s, caps) = (cfg(0, 1), limit(2));
    for _ in 0..2 {
        assert_eq!(p.acquire(0, &s, &caps), Acquired::OnDemand);
        let id = p.new_id();
        p.pool.create(SimTime(0), id, true);
        p.pool.set_state(id, MachineState::Used);
    }
    assert_eq!(p.acquire(0, &s, &caps), Acquired::NoFree);
}

/// `TestMachinePreCreateMode`: pre-creation to `IdleCount`, acquisition of the idle machine,
/// growth to `IdleCount` 2, then `limit` 1 with `IdleTime` 0 downscales to one machine.
#[test]
fn test_machine_pre_create_mode() {
    let mut p = Provider::new();
    let s1 = cfg(1, 5);
    assert_eq!(p.acquire(0, &s1, &limit(0)), Acquired::NoFree, "no free machines yet");
    assert_eq!(p.created().len(), 1);
    p.creations_finish();
    assert_eq!(p.idle(), 1, "it should contain exactly one machine");

    let d = p.acquire(1000, &s1, &limit(0));
    assert!(matches!(d, Acquired::Machine(_)), "it should be ready to process builds");
    assert_eq!(p.idle(), 0, "it should acquire the free node");
    p.release(d);
    assert_eq!(p.idle(), 1, "after releasing it should have one free node");

    let d = p.acquire(2000, &cfg(2, 5), &limit(0));
    assert!(matches!(d, Acquired::Machine(_)));
    p.release(d);
    assert_eq!(p.created().len(), 1);
    p.creations_finish();
    assert_eq!(p.idle(), 2, "it should start creating a second machine");

    let (s0, one) = (cfg(1, 0), limit(1));
    let d = p.acquire(3000, &s0, &one);
    assert!(matches!(d, Acquired::Machine(_)));
    assert_eq!(p.removed(), vec![(MachineId(2), RemovalReason::TooManyMachines)]);
    p.release(d);
    assert_eq!(p.idle(), 1, "it should downscale to single machine");

    let d = p.acquire(4000, &s0, &one);
    assert!(matches!(d, Acquired::Machine(_)), "we should acquire single machine");
    assert_eq!(p.acquire(4000, &s0, &one), Acquired::NoFree, "no free machines");
    p.release(d);
    assert_eq!(p.idle(), 1, "it should leave one idle");
}

/// `TestMachineLimitMax`: `IdleCount` 10 under `limit` 5 creates 5; raising `limit` to 8 grows
/// to 8; lowering it to 2 removes the surplus ("too many machines").
#[test]
fn test_machine_limit_max() {
    let mut p = Provider::new();
    let s = cfg(10, 5);
    assert_eq!(p.acquire(0, &s, &limit(5)), Acquired::NoFree);
    assert_eq!(p.created().len(), 5, "it should contain exactly a maximum of 5 nodes");
    p.creations_finish();
    assert_eq!(p.idle(), 5);

    let d = p.acquire(1000, &s, &limit(8));
    assert!(matches!(d, Acquired::Machine(_)));
    p.release(d);
    p.creations_finish();
    assert_eq!(p.idle(), 8, "it should upscale to 8 nodes");

    let d = p.acquire(2000, &s, &limit(2));
    assert!(matches!(d, Acquired::Machine(_)));
    p.release(d);
    assert_eq!(p.removed().len(), 6);
    assert!(p.removed().iter().all(|&(_, r)| r == RemovalReason::TooManyMachines));
    assert_eq!(p.idle(), 2, "it should downscale to 2 nodes");
    assert_eq!(p.alive(), 2);
}

/// `TestMachineIdleLimits`: an idle machine survives while within `IdleTime`, and while no more
/// than `IdleCount` are available; with `IdleCount` 0 and `IdleTime` 0 it is removed as "too
/// many idle machines".
#[test]
fn test_machine_idle_limits() {
    // p.create(config, machineStateIdle): one idle machine, last used at 0 s.
    let mut p = Provider::with_idle(1);
    let d = MachineId(1);
    let first = p.pool.get(d).unwrap().used_at;

    let d2 = p.acquire(first.as_ms() + 1000, &cfg(2, 1), &limit(0));
    p.release(d2);
    assert_eq!(p.pool.get(d).unwrap().state, MachineState::Idle, "still in idle time");

    let d3 = p.acquire(first.as_ms() + 1001, &cfg(2, 0), &limit(0));
    p.release(d3);
    assert_eq!(p.pool.get(d).unwrap().state, MachineState::Idle, "no more than two idle");

    let d4 = p.acquire(first.as_ms() + 1002, &cfg(0, 0), &limit(0));
    assert_eq!(p.pool.get(d).unwrap().state, MachineState::Removing, "there are no idle");
    assert!(p.removed().contains(&(d, RemovalReason::TooManyIdle)));
    assert_eq!(RemovalReason::TooManyIdle.as_str(), "too many idle machines");
    if let Acquired::Machine(_) = d4 {
        p.release(d4);
    }
}

/// `TestMachineAcquireGrowthCapacity`: `IdleCount` and `limit` = concurrency; at most
/// `MaxGrowthRate` machines are ever being created at once, and every wanted machine is
/// eventually created.
fn growth_capacity(max_growth: u32, concurrency: u32, expected_max: u32) {
    let mut p = Provider::new();
    let s = cfg(concurrency, 0);
    let caps = Caps { limit: concurrency, max_growth_rate: max_growth, max_builds: 0 };
    let mut max_creating = 0;
    let mut now = 0;
    // Each `create` takes one round; an Acquire comes every round (as before each job request).
    while p.pool.counts().total() < concurrency || p.pool.counts().creating > 0 {
        p.acquire(now, &s, &caps);
        // The Acquire may take one of the idle machines; give it back.
        let acquired: Vec<MachineId> = p
            .pool
            .iter()
            .filter(|(_, m)| m.state == MachineState::Acquired)
            .map(|(id, _)| id)
            .collect();
        for id in acquired {
            p.pool.set_state(id, MachineState::Idle);
        }
        max_creating = max_creating.max(p.pool.counts().creating);
        p.creations_finish();
        now += 1000;
    }
    assert_eq!(max_creating, expected_max);
    assert_eq!(p.pool.counts().idle, concurrency);
}

/// `TestMachineAcquireGrowthCapacity` / "growth capacity 3 concurrency 1".
#[test]
fn test_machine_acquire_growth_capacity_3_concurrency_1() {
    growth_capacity(3, 1, 1);
}

/// `TestMachineAcquireGrowthCapacity` / "growth capacity 3 concurrency 15".
#[test]
fn test_machine_acquire_growth_capacity_3_concurrency_15() {
    growth_capacity(3, 15, 3);
}

/// `TestRunnerMachinesCoordinator_WaitForGrowthCapacity` / "growth capacity infinite": 1000
/// wanted machines, no `MaxGrowthRate`: all are created at once (the Go test asserts > 0).
#[test]
fn test_runner_machines_coordinator_wait_for_growth_capacity_infinite() {
    growth_capacity(0, 1000, 1000);
}

/// `TestRunnerMachinesCoordinator_WaitForGrowthCapacity` / "growth capacity 500": 1000 wanted
/// machines, never more than 500 in creation.
#[test]
fn test_runner_machines_coordinator_wait_for_growth_capacity_500() {
    growth_capacity(500, 1000, 500);
}
