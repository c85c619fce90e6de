//! Container work in progress per Docker engine, for the engine's contention
//! ([`crate::containers`], "The engine is shared").
//!
//! Each engine keeps the instants at which the container work of its jobs' current steps
//! ends; an operation starting at `now` is slowed by the ones still in progress. Only
//! looked up by key (never walked), so the hash map's order cannot reach the output.

use rustc_hash::FxHashMap;

use crate::job::Placement;
use crate::time::SimTime;

/// Which engine: the one of a host or machine, or the one every container goes to.
type Engine = Option<Placement>;

/// The container work in progress on each engine.
#[derive(Debug, Default)]
pub(super) struct EngineLoad {
    busy: FxHashMap<Engine, Vec<SimTime>>,
}

impl EngineLoad {
    /// The slowdown, in ‰, of an operation starting at `now` on `on`'s engine: 1000 plus
    /// `contention_permille` per other job's work still in progress there.
    pub(super) fn slowdown(
        &mut self,
        now: SimTime,
        on: Placement,
        shared: bool,
        contention_permille: u32,
    ) -> u32 {
        let ends = self.busy.entry(engine(on, shared)).or_default();
        ends.retain(|&end| end > now);
        let others = u32::try_from(ends.len()).unwrap_or(u32::MAX);
        1000u32.saturating_add(contention_permille.saturating_mul(others))
    }

    /// A job's container work on `on`'s engine, in progress until `end`.
    pub(super) fn busy_until(&mut self, on: Placement, shared: bool, end: SimTime) {
        self.busy.entry(engine(on, shared)).or_default().push(end);
    }
}

fn engine(on: Placement, shared: bool) -> Engine {
    if shared { None } else { Some(on) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{HostId, MachineId};

    #[test]
    fn work_in_progress_on_the_same_engine_slows_an_operation() {
        let mut load = EngineLoad::default();
        let host = Placement::Host(HostId(0));
        assert_eq!(load.slowdown(SimTime(0), host, false, 480), 1000, "alone");
        load.busy_until(host, false, SimTime(300));
        load.busy_until(host, false, SimTime(500));
        assert_eq!(load.slowdown(SimTime(100), host, false, 480), 1960, "two beside it");
        assert_eq!(load.slowdown(SimTime(300), host, false, 480), 1480, "one ended at 300");
        // A machine has an engine of its own, unless the run shares one.
        let m = Placement::Machine(MachineId(7));
        assert_eq!(load.slowdown(SimTime(100), m, false, 480), 1000);
        load.busy_until(host, true, SimTime(400));
        assert_eq!(load.slowdown(SimTime(100), m, true, 480), 1480);
    }
}
