//! Container work in progress per Docker engine, for the engine's contention
//! ([`crate::containers`], "The engine is shared").
//!
//! Each engine keeps the instants at which the container work of its jobs' current steps
//! ends; an operation starting at `now` is slowed by the ones still in progress. Only
//! looked up by key (never walked), so the hash map's order cannot reach the output.

use rustc_hash::FxHashMap;

use crate::containers::ContainerCosts;
use crate::job::Placement;
use crate::time::SimTime;

/// Which engine: the one of a host or machine, or the one every container goes to.
type Engine = Option<Placement>;

/// The container work in progress on each engine. Without contention it keeps nothing and
/// every operation runs at its cost alone.
#[derive(Debug, Default)]
pub(super) struct EngineLoad {
    /// ‰ of an operation's cost added per other job's work beside it (0: off).
    contention_permille: u32,
    /// Whether every placement shares one engine.
    shared: bool,
    busy: FxHashMap<Engine, Vec<SimTime>>,
}

impl EngineLoad {
    /// The load of engines with this contention ([`ContainerCosts`]).
    pub(super) fn new(costs: &ContainerCosts) -> EngineLoad {
        EngineLoad {
            contention_permille: costs.contention_permille,
            shared: costs.shared_engine,
            busy: FxHashMap::default(),
        }
    }

    /// The slowdown, in ‰, of an operation starting at `now` on `on`'s engine: 1000 plus
    /// the contention per other job's work still in progress there.
    pub(super) fn slowdown(&mut self, now: SimTime, on: Placement) -> u32 {
        if self.contention_permille == 0 {
            return 1000;
        }
        let ends = self.busy.entry(self.engine(on)).or_default();
        ends.retain(|&end| end > now);
        let others = u32::try_from(ends.len()).unwrap_or(u32::MAX);
        1000u32.saturating_add(self.contention_permille.saturating_mul(others))
    }

    /// A job's container work on `on`'s engine, in progress until `end`.
    pub(super) fn busy_until(&mut self, on: Placement, end: SimTime) {
        if self.contention_permille > 0 {
            let engine = self.engine(on);
            self.busy.entry(engine).or_default().push(end);
        }
    }

    fn engine(&self, on: Placement) -> Engine {
        if self.shared { None } else { Some(on) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{HostId, MachineId};

    #[test]
    fn work_in_progress_on_the_same_engine_slows_an_operation() {
        let costs = |shared_engine| ContainerCosts {
            contention_permille: 480,
            shared_engine,
            ..ContainerCosts::default()
        };
        let mut load = EngineLoad::new(&costs(false));
        let host = Placement::Host(HostId(0));
        assert_eq!(load.slowdown(SimTime(0), host), 1000, "alone");
        load.busy_until(host, SimTime(300));
        load.busy_until(host, SimTime(500));
        assert_eq!(load.slowdown(SimTime(100), host), 1960, "two beside it");
        assert_eq!(load.slowdown(SimTime(300), host), 1480, "one ended at 300");
        // A machine has an engine of its own, unless the run shares one.
        let m = Placement::Machine(MachineId(7));
        assert_eq!(load.slowdown(SimTime(100), m), 1000);
        let mut shared = EngineLoad::new(&costs(true));
        shared.busy_until(host, SimTime(400));
        assert_eq!(shared.slowdown(SimTime(100), m), 1480);
    }
}
