//! GitLab Runner 19.4's `executors/docker/machine/idle_limit_strategy_test.go`, ported: one
//! Rust test per Go table case, against fleetsim's `docker_machine` module.
//!
//! - `TestCanCreateIdle` and `TestCanCreateOnDemand` call `canCreateIdle` /
//!   `canCreateOnDemand` with a config and a `machinesData`; here the same values go to
//!   [`can_create_idle`] / [`can_create_on_demand`] (an [`IdleSettings`] for the idle fields, a
//!   [`Caps`] for `limit`, `MaxGrowthRate` and `MaxBuilds`, a [`Counts`] for `machinesData`).
//! - `TestShouldRemoveIdle` calls `shouldRemoveIdle(config, data, details)`. In GitLab Runner
//!   that function is called from `(*machineProvider).updateMachines`, with `data` holding the
//!   machines listed *before* the one judged. fleetsim's `should_remove_idle` is private, so
//!   each case goes through the real removal pass of [`MachinePool::acquire`]: the case's
//!   `data` becomes machines placed before the judged machine (fresh, so none of them is
//!   removed), and the judged machine comes last with the case's state, `UsedCount` and
//!   `Used` (60 s ago, as the Go test's `stubUsedTime(-60)`).
//!
//! Nothing in this file is inexpressible: every case of the three tables is ported.

#![allow(clippy::unwrap_used)]

use fleetsim_core::docker_machine::{
    Acquired, Caps, Counts, IdleSettings, MachinePool, MachineState, PoolAction, RemovalReason,
    can_create_idle, can_create_on_demand,
};
use fleetsim_core::ids::MachineId;
use fleetsim_core::time::SimTime;

/// The Go test's `ilsRunnerConfig`: the `[[runners]]` and `[runners.machine]` values a case sets.
#[derive(Default, Clone, Copy)]
struct Cfg {
    limit: u32,
    idle_count: u32,
    idle_count_min: u32,
    idle_scale_factor: f64,
    idle_time_s: u64,
    max_growth_rate: u32,
    max_builds: u32,
}

impl Cfg {
    fn settings(&self) -> IdleSettings {
        IdleSettings {
            idle_count: self.idle_count,
            idle_count_min: self.idle_count_min,
            idle_scale_factor: self.idle_scale_factor,
            idle_time_ms: self.idle_time_s * 1000,
        }
    }

    fn caps(&self) -> Caps {
        Caps {
            limit: self.limit,
            max_growth_rate: self.max_growth_rate,
            max_builds: self.max_builds,
        }
    }
}

/// The Go test's `ilsMachinesData`.
#[derive(Default, Clone, Copy)]
struct Data {
    creating: u32,
    idle: u32,
    used: u32,
}

impl Data {
    fn counts(&self) -> Counts {
        Counts { creating: self.creating, idle: self.idle, used: self.used, ..Counts::default() }
    }
}

fn can_idle(c: Cfg, d: Data) -> bool {
    can_create_idle(&c.settings(), &c.caps(), &d.counts())
}

fn can_on_demand(c: Cfg, d: Data) -> bool {
    can_create_on_demand(&c.settings(), &c.caps(), &d.counts())
}

/// The scale-factor cases' common config: `IdleCount` 100, `IdleCountMin` 10, factor 1.
const SCALE: Cfg = Cfg {
    limit: 0,
    idle_count: 100,
    idle_count_min: 10,
    idle_scale_factor: 1.0,
    idle_time_s: 0,
    max_growth_rate: 0,
    max_builds: 0,
};

// --- TestCanCreateIdle ---------------------------------------------------------------------

/// `TestCanCreateIdle`, one test per table case.
mod test_can_create_idle {
    use super::*;

    /// `TestCanCreateIdle` / "MaxMachinesGrowth exceeded".
    #[test]
    fn max_machines_growth_exceeded() {
        assert!(!can_idle(
            Cfg { max_growth_rate: 10, ..Cfg::default() },
            Data { creating: 10, ..Data::default() }
        ));
    }

    /// `TestCanCreateIdle` / "MaxMachinesGrowth not reached" (still false: `IdleCount` 0 is met).
    #[test]
    fn max_machines_growth_not_reached() {
        assert!(!can_idle(
            Cfg { max_growth_rate: 10, ..Cfg::default() },
            Data { creating: 1, ..Data::default() }
        ));
    }

    /// `TestCanCreateIdle` / "limit exceeded".
    #[test]
    fn limit_exceeded() {
        assert!(!can_idle(
            Cfg { limit: 10, ..Cfg::default() },
            Data { creating: 5, idle: 3, used: 2 }
        ));
    }

    /// `TestCanCreateIdle` / "limit not reached".
    #[test]
    fn limit_not_reached() {
        assert!(can_idle(
            Cfg { limit: 10, idle_count: 10, ..Cfg::default() },
            Data { idle: 3, used: 2, ..Data::default() }
        ));
    }

    /// `TestCanCreateIdle` / "IdleCountMin not fulfilled and IdleScaleFactor evaluated to 0".
    #[test]
    fn idle_count_min_not_fulfilled_and_factor_evaluated_to_0() {
        assert!(can_idle(SCALE, Data::default()));
    }

    /// `TestCanCreateIdle` / "IdleCountMin not fulfilled and IdleScaleFactor evaluated to non 0 and
    /// not reached".
    #[test]
    fn idle_count_min_not_fulfilled_and_factor_non_0_not_reached() {
        assert!(can_idle(SCALE, Data { used: 1, ..Data::default() }));
    }

    /// `TestCanCreateIdle` / "IdleCountMin not fulfilled and IdleScaleFactor evaluated to non 0 and
    /// exceeded".
    #[test]
    fn idle_count_min_not_fulfilled_and_factor_non_0_exceeded() {
        assert!(can_idle(SCALE, Data { idle: 5, used: 1, ..Data::default() }));
    }

    /// `TestCanCreateIdle` / "IdleCountMin fulfilled and IdleScaleFactor evaluated to non 0 and not
    /// reached".
    #[test]
    fn idle_count_min_fulfilled_and_factor_non_0_not_reached() {
        assert!(can_idle(SCALE, Data { idle: 10, used: 15, ..Data::default() }));
    }

    /// `TestCanCreateIdle` / "IdleCountMin fulfilled and IdleScaleFactor evaluated to non 0 and
    /// exceeded".
    #[test]
    fn idle_count_min_fulfilled_and_factor_non_0_exceeded() {
        assert!(!can_idle(SCALE, Data { idle: 10, used: 1, ..Data::default() }));
    }

    /// `TestCanCreateIdle` / "IdleCountMin not set and IdleScaleFactor evaluated to 0 and exceeded"
    /// (an unset `IdleCountMin` counts as 1 with a scale factor, so 0 available is below it).
    #[test]
    fn idle_count_min_not_set_and_factor_evaluated_to_0() {
        assert!(can_idle(Cfg { idle_count_min: 0, ..SCALE }, Data::default()));
    }

    /// `TestCanCreateIdle` / "IdleScaleFactor evaluated to non 0 and not reached but IdleCount
    /// exceeded".
    #[test]
    fn factor_not_reached_but_idle_count_exceeded() {
        let c = Cfg { idle_count: 10, idle_scale_factor: 1.0, ..Cfg::default() };
        assert!(!can_idle(c, Data { idle: 10, used: 100, ..Data::default() }));
    }

    /// `TestCanCreateIdle` / "IdleCount exceeded".
    #[test]
    fn idle_count_exceeded() {
        assert!(!can_idle(
            Cfg { idle_count: 10, ..Cfg::default() },
            Data { idle: 10, ..Data::default() }
        ));
    }

    /// `TestCanCreateIdle` / "IdleCount not reached".
    #[test]
    fn idle_count_not_reached() {
        assert!(can_idle(
            Cfg { idle_count: 10, ..Cfg::default() },
            Data { idle: 1, ..Data::default() }
        ));
    }

    /// `TestCanCreateIdle` / "IdleCount exceeded and IdleCountMin not fulfilled".
    #[test]
    fn idle_count_exceeded_and_idle_count_min_not_fulfilled() {
        let c = Cfg { idle_count: 5, idle_count_min: 10, ..Cfg::default() };
        assert!(!can_idle(c, Data { idle: 8, ..Data::default() }));
    }

    /// `TestCanCreateIdle` / "IdleCount exceeded and IdleCountMin not fulfilled and IdleScaleFactor
    /// evaluated to non 0 and not reached".
    #[test]
    fn idle_count_exceeded_min_not_fulfilled_factor_not_reached() {
        let c = Cfg { idle_count: 5, idle_count_min: 10, idle_scale_factor: 1.0, ..Cfg::default() };
        assert!(!can_idle(c, Data { idle: 8, used: 9, ..Data::default() }));
    }
}

// --- TestCanCreateOnDemand -----------------------------------------------------------------

/// `TestCanCreateOnDemand`, one test per table case.
mod test_can_create_on_demand {
    use super::*;

    /// `TestCanCreateOnDemand` / "MaxMachinesGrowth exceeded".
    #[test]
    fn max_machines_growth_exceeded() {
        let c = Cfg { max_growth_rate: 10, idle_count: 1, ..Cfg::default() };
        assert!(!can_on_demand(c, Data { creating: 10, ..Data::default() }));
    }

    /// `TestCanCreateOnDemand` / "MaxMachinesGrowth not reached".
    #[test]
    fn max_machines_growth_not_reached() {
        let c = Cfg { max_growth_rate: 10, idle_count: 1, ..Cfg::default() };
        assert!(!can_on_demand(c, Data { creating: 1, ..Data::default() }));
    }

    /// `TestCanCreateOnDemand` / "limit exceeded".
    #[test]
    fn limit_exceeded() {
        let c = Cfg { limit: 10, idle_count: 1, ..Cfg::default() };
        assert!(!can_on_demand(c, Data { creating: 5, idle: 3, used: 2 }));
    }

    /// `TestCanCreateOnDemand` / "limit not reached".
    #[test]
    fn limit_not_reached() {
        let c = Cfg { limit: 10, idle_count: 10, ..Cfg::default() };
        assert!(can_on_demand(c, Data { idle: 3, used: 2, ..Data::default() }));
    }

    const ON_DEMAND: Cfg = Cfg { idle_count: 0, ..SCALE };

    /// `TestCanCreateOnDemand` / "IdleCount is 0, no limit".
    #[test]
    fn idle_count_0_no_limit() {
        assert!(can_on_demand(ON_DEMAND, Data { used: 10, ..Data::default() }));
    }

    /// `TestCanCreateOnDemand` / "IdleCount is 0, limit not reached".
    #[test]
    fn idle_count_0_limit_not_reached() {
        assert!(can_on_demand(
            Cfg { limit: 10, ..ON_DEMAND },
            Data { idle: 3, used: 2, ..Data::default() }
        ));
    }

    /// `TestCanCreateOnDemand` / "IdleCount is 0, limit is reached".
    #[test]
    fn idle_count_0_limit_is_reached() {
        assert!(!can_on_demand(
            Cfg { limit: 10, ..ON_DEMAND },
            Data { used: 10, ..Data::default() }
        ));
    }

    /// `TestCanCreateOnDemand` / "IdleCountMin not fulfilled and IdleScaleFactor evaluated to 0".
    #[test]
    fn idle_count_min_not_fulfilled_and_factor_evaluated_to_0() {
        assert!(can_on_demand(SCALE, Data::default()));
    }

    /// `TestCanCreateOnDemand` / "IdleCountMin not fulfilled and IdleScaleFactor evaluated to non 0
    /// and not reached".
    #[test]
    fn idle_count_min_not_fulfilled_and_factor_non_0_not_reached() {
        assert!(can_on_demand(SCALE, Data { used: 1, ..Data::default() }));
    }

    /// `TestCanCreateOnDemand` / "IdleCountMin not fulfilled and IdleScaleFactor evaluated to non 0
    /// and exceeded".
    #[test]
    fn idle_count_min_not_fulfilled_and_factor_non_0_exceeded() {
        assert!(can_on_demand(SCALE, Data { idle: 5, used: 1, ..Data::default() }));
    }

    /// `TestCanCreateOnDemand` / "IdleCountMin fulfilled and IdleScaleFactor evaluated to non 0 and
    /// not reached".
    #[test]
    fn idle_count_min_fulfilled_and_factor_non_0_not_reached() {
        assert!(can_on_demand(SCALE, Data { idle: 10, used: 15, ..Data::default() }));
    }

    /// `TestCanCreateOnDemand` / "IdleCountMin fulfilled and IdleScaleFactor evaluated to non 0 and
    /// exceeded".
    #[test]
    fn idle_count_min_fulfilled_and_factor_non_0_exceeded() {
        assert!(!can_on_demand(SCALE, Data { idle: 10, used: 1, ..Data::default() }));
    }

    /// `TestCanCreateOnDemand` / "IdleCountMin not set and IdleScaleFactor evaluated to 0 and
    /// exceeded".
    #[test]
    fn idle_count_min_not_set_and_factor_evaluated_to_0() {
        assert!(can_on_demand(Cfg { idle_count_min: 0, ..SCALE }, Data::default()));
    }

    /// `TestCanCreateOnDemand` / "IdleScaleFactor evaluated to non 0 and not reached but IdleCount
    /// exceeded".
    #[test]
    fn factor_not_reached_but_idle_count_exceeded() {
        let c = Cfg { idle_count: 10, idle_scale_factor: 1.0, ..Cfg::default() };
        assert!(!can_on_demand(c, Data { idle: 10, used: 100, ..Data::default() }));
    }

    /// `TestCanCreateOnDemand` / "IdleCount exceeded".
    #[test]
    fn idle_count_exceeded() {
        assert!(!can_on_demand(
            Cfg { idle_count: 10, ..Cfg::default() },
            Data { idle: 10, ..Data::default() }
        ));
    }

    /// `TestCanCreateOnDemand` / "IdleCount not reached".
    #[test]
    fn idle_count_not_reached() {
        assert!(can_on_demand(
            Cfg { idle_count: 10, ..Cfg::default() },
            Data { idle: 1, ..Data::default() }
        ));
    }

    /// `TestCanCreateOnDemand` / "IdleCount exceeded and IdleCountMin not fulfilled".
    #[test]
    fn idle_count_exceeded_and_idle_count_min_not_fulfilled() {
        let c = Cfg { idle_count: 5, idle_count_min: 10, ..Cfg::default() };
        assert!(!can_on_demand(c, Data { idle: 8, ..Data::default() }));
    }

    /// `TestCanCreateOnDemand` / "IdleCount exceeded and IdleCountMin not fulfilled and
    /// IdleScaleFactor evaluated to non 0 and not reached".
    #[test]
    fn idle_count_exceeded_min_not_fulfilled_factor_not_reached() {
        let c = Cfg { idle_count: 5, idle_count_min: 10, idle_scale_factor: 1.0, ..Cfg::default() };
        assert!(!can_on_demand(c, Data { idle: 8, used: 9, ..Data::default() }));
    }
}

// --- TestShouldRemoveIdle ------------------------------------------------------------------

/// `TestShouldRemoveIdle`, one test per table case.
mod test_should_remove_idle {
    use super::*;

    /// The Go test's `ilsMachineDetails`.
    #[derive(Clone, Copy)]
    struct Details {
        state: MachineState,
        used_count: u32,
    }

    const IDLE: Details = Details { state: MachineState::Idle, used_count: 0 };

    /// The instant of the removal pass; the judged machine was last used 60 s before
    /// (`stubUsedTime(-60)`), the machines of `data` at this instant (so none of them expires).
    const NOW: SimTime = SimTime(600_000);
    const USED_60_S_AGO: SimTime = SimTime(540_000);

    /// Runs `(*machineProvider).updateMachines`' pass through [`MachinePool::acquire`] and
    /// returns why the judged machine was removed, or `None` (`dontRemoveIdleMachine`).
    fn should_remove(c: Cfg, d: Data, m: Details) -> Option<RemovalReason> {
        let mut pool = MachinePool::default();
        let mut next = 0u32;
        let mut add = |pool: &mut MachinePool, at: SimTime, state: MachineState| {
            next += 1;
            let id = MachineId(next);
            pool.create(at, id, false);
            if state != MachineState::Creating {
                pool.set_state(id, state);
            }
            id
        };
        for (n, state) in [
            (d.creating, MachineState::Creating),
            (d.idle, MachineState::Idle),
            (d.used, MachineState::Used),
        ] {
            for _ in 0..n {
                add(&mut pool, NOW, state);
            }
        }
        let judged = add(&mut pool, USED_60_S_AGO, m.state);
        pool.set_used_count(judged, m.used_count);
        let before = pool.counts();
        assert_eq!(
            (before.creating, before.used),
            (d.creating + u32::from(m.state == MachineState::Creating), d.used)
        );

        let mut actions = Vec::new();
        let mut new_id = 1_000u32;
        let _: Acquired = pool.acquire(
            NOW,
            &c.settings(),
            &c.caps(),
            || {
                new_id += 1;
                MachineId(new_id)
            },
            &mut actions,
        );
        let removed: Vec<(MachineId, RemovalReason)> = actions
            .iter()
            .filter_map(|a| match *a {
                PoolAction::Remove(id, r) => Some((id, r)),
                PoolAction::Create(_) => None,
            })
            .collect();
        // Only the judged machine may go: the machines of `data` are fresh and under every cap.
        assert!(removed.iter().all(|&(id, _)| id == judged), "{removed:?}");
        removed.first().map(|&(_, r)| r)
    }

    /// `TestShouldRemoveIdle` / "machine not in Idle state".
    #[test]
    fn machine_not_in_idle_state() {
        let m = Details { state: MachineState::Creating, used_count: 0 };
        assert_eq!(should_remove(Cfg::default(), Data::default(), m), None);
    }

    /// `TestShouldRemoveIdle` / "MaxBuilds exceeded".
    #[test]
    fn max_builds_exceeded() {
        let c = Cfg { idle_count: 10, max_builds: 1, ..Cfg::default() };
        let m = Details { used_count: 1, ..IDLE };
        assert_eq!(
            should_remove(c, Data { idle: 1, ..Data::default() }, m),
            Some(RemovalReason::TooManyBuilds)
        );
    }

    /// `TestShouldRemoveIdle` / "MaxBuilds not reached".
    #[test]
    fn max_builds_not_reached() {
        let c = Cfg { idle_count: 10, max_builds: 10, ..Cfg::default() };
        let m = Details { used_count: 1, ..IDLE };
        assert_eq!(should_remove(c, Data { idle: 1, ..Data::default() }, m), None);
    }

    /// `TestShouldRemoveIdle` / "limit exceeded".
    #[test]
    fn limit_exceeded() {
        let c = Cfg { idle_count: 10, limit: 15, ..Cfg::default() };
        let d = Data { creating: 5, idle: 5, used: 5 };
        assert_eq!(should_remove(c, d, IDLE), Some(RemovalReason::TooManyMachines));
    }

    /// `TestShouldRemoveIdle` / "IdleTime not exceeded and IdleCount not exceeded".
    #[test]
    fn idle_time_not_exceeded_and_idle_count_not_exceeded() {
        let c = Cfg { idle_count: 10, idle_time_s: 3600, ..Cfg::default() };
        assert_eq!(should_remove(c, Data { idle: 5, ..Data::default() }, IDLE), None);
    }

    /// `TestShouldRemoveIdle` / "IdleTime not exceeded and IdleCount exceeded".
    #[test]
    fn idle_time_not_exceeded_and_idle_count_exceeded() {
        let c = Cfg { idle_count: 10, idle_time_s: 3600, ..Cfg::default() };
        assert_eq!(should_remove(c, Data { idle: 10, ..Data::default() }, IDLE), None);
    }

    /// `TestShouldRemoveIdle` / "IdleTime exceeded and IdleCount not exceeded".
    #[test]
    fn idle_time_exceeded_and_idle_count_not_exceeded() {
        let c = Cfg { idle_count: 10, idle_time_s: 10, ..Cfg::default() };
        assert_eq!(should_remove(c, Data { idle: 5, ..Data::default() }, IDLE), None);
    }

    /// `TestShouldRemoveIdle` / "IdleTime exceeded and IdleCount exceeded".
    #[test]
    fn idle_time_exceeded_and_idle_count_exceeded() {
        let c = Cfg { idle_count: 10, idle_time_s: 10, ..Cfg::default() };
        assert_eq!(
            should_remove(c, Data { idle: 10, ..Data::default() }, IDLE),
            Some(RemovalReason::TooManyIdle)
        );
    }

    const SCALE_10S: Cfg = Cfg { idle_time_s: 10, ..SCALE };

    /// `TestShouldRemoveIdle` / "IdleTime exceeded and IdleCountMin not fulfilled and
    /// IdleScaleFactor evaluated to 0".
    #[test]
    fn idle_time_exceeded_min_not_fulfilled_factor_evaluated_to_0() {
        assert_eq!(should_remove(SCALE_10S, Data::default(), IDLE), None);
    }

    /// `TestShouldRemoveIdle` / "IdleTime exceeded and IdleCountMin not fulfilled and
    /// IdleScaleFactor evaluated to non 0 and not reached".
    #[test]
    fn idle_time_exceeded_min_not_fulfilled_factor_not_reached() {
        assert_eq!(should_remove(SCALE_10S, Data { used: 1, ..Data::default() }, IDLE), None);
    }

    /// `TestShouldRemoveIdle` / "IdleTime exceeded and IdleCountMin not fulfilled and
    /// IdleScaleFactor evaluated to non 0 and exceeded".
    #[test]
    fn idle_time_exceeded_min_not_fulfilled_factor_exceeded() {
        assert_eq!(
            should_remove(SCALE_10S, Data { idle: 5, used: 1, ..Data::default() }, IDLE),
            None
        );
    }

    /// `TestShouldRemoveIdle` / "IdleTime exceeded and IdleCountMin fulfilled and IdleScaleFactor
    /// evaluated to non 0 and not reached".
    #[test]
    fn idle_time_exceeded_min_fulfilled_factor_not_reached() {
        assert_eq!(
            should_remove(SCALE_10S, Data { idle: 10, used: 15, ..Data::default() }, IDLE),
            None
        );
    }

    /// `TestShouldRemoveIdle` / "IdleTime exceeded and IdleCountMin fulfilled and IdleScaleFactor
    /// evaluated to non 0 and exceeded".
    #[test]
    fn idle_time_exceeded_min_fulfilled_factor_exceeded() {
        assert_eq!(
            should_remove(SCALE_10S, Data { idle: 10, used: 1, ..Data::default() }, IDLE),
            Some(RemovalReason::TooManyIdle)
        );
    }

    /// `TestShouldRemoveIdle` / "IdleTime exceeded and IdleCountMin not set and IdleScaleFactor
    /// evaluated to 0 and exceeded".
    #[test]
    fn idle_time_exceeded_min_not_set_factor_evaluated_to_0() {
        assert_eq!(
            should_remove(Cfg { idle_count_min: 0, ..SCALE_10S }, Data::default(), IDLE),
            None
        );
    }

    /// `TestShouldRemoveIdle` / "IdleTime exceeded and IdleScaleFactor evaluated to non 0 and not
    /// reached but IdleCount exceeded".
    #[test]
    fn idle_time_exceeded_factor_not_reached_but_idle_count_exceeded() {
        let c = Cfg { idle_count: 10, idle_scale_factor: 1.0, idle_time_s: 10, ..Cfg::default() };
        assert_eq!(
            should_remove(c, Data { idle: 10, used: 100, ..Data::default() }, IDLE),
            Some(RemovalReason::TooManyIdle)
        );
    }

    /// `TestShouldRemoveIdle` / "IdleTime exceeded and IdleCount exceeded and IdleCountMin not
    /// fulfilled".
    #[test]
    fn idle_time_exceeded_idle_count_exceeded_min_not_fulfilled() {
        let c = Cfg { idle_count: 5, idle_count_min: 10, idle_time_s: 10, ..Cfg::default() };
        assert_eq!(
            should_remove(c, Data { idle: 8, ..Data::default() }, IDLE),
            Some(RemovalReason::TooManyIdle)
        );
    }

    /// `TestShouldRemoveIdle` / "IdleTime exceeded and IdleCount exceeded and IdleCountMin not
    /// fulfilled and IdleScaleFactor evaluated to non 0 and not reached".
    #[test]
    fn idle_time_exceeded_idle_count_exceeded_min_not_fulfilled_factor_not_reached() {
        let c = Cfg {
            idle_count: 5,
            idle_count_min: 10,
            idle_scale_factor: 1.0,
            idle_time_s: 10,
            ..Cfg::default()
        };
        assert_eq!(
            should_remove(c, Data { idle: 8, used: 9, ..Data::default() }, IDLE),
            Some(RemovalReason::TooManyIdle)
        );
    }
}
