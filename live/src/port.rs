//! The live port: the core's commands carried out for real. A step becomes a task running
//! containers and S3 requests, a machine a Docker volume that is ready after its drawn creation
//! time; a finished job's record is corrected with what really happened before pipelines and
//! observers see it.

use std::sync::Arc;

use fleetsim_core::cache::Outcome;
use fleetsim_core::drive::Port;
use fleetsim_core::{Command, Input, MachineId, Placement, SimTime, Step};
use tokio::task::JoinSet;

use crate::clock::Stopwatch;
use crate::driver::{CreationTimes, MachineLife};
use crate::shared::Shared;
use crate::steps::StepTask;

/// The live port: steps become containers and S3 requests, machines become volumes; what
/// really happened is written into the job records before anyone sees them.
pub(crate) struct LivePort<'a> {
    pub(crate) shared: &'a Arc<Shared>,
    pub(crate) creation: &'a mut dyn CreationTimes,
    pub(crate) tasks: &'a mut JoinSet<Option<Input>>,
}

impl Port for LivePort<'_> {
    fn carry_out(&mut self, now: SimTime, input: &Input, commands: &mut [Command]) {
        let (shared, tasks) = (self.shared, &mut *self.tasks);
        match *input {
            Input::MachineReady { machine } => shared.machine(machine, |l| l.ready = Some(now)),
            Input::MachineRemoved { machine } => {
                shared.machine(machine, |l| l.removed = Some(now));
            }
            _ => {}
        }
        for c in commands.iter_mut() {
            match c {
                Command::StartStep { job, on, step, duration_ms, token, work } => {
                    if let (Placement::Machine(m), Step::Script) = (*on, *step) {
                        shared.machine(m, |l| l.jobs += 1);
                    }
                    let task = StepTask {
                        key: *job,
                        step: *step,
                        token: *token,
                        duration_ms: *duration_ms,
                        spec: work.spec,
                        runner: work.runner,
                        place: work.place,
                        cache: work.cache.clone(),
                    };
                    let shared = shared.clone();
                    tasks.spawn(async move { Some(task.run(&shared).await) });
                }
                Command::CreateMachine { machine, runner } => {
                    let life = MachineLife {
                        runner: *runner,
                        created: now,
                        ready: None,
                        removal_started: None,
                        removed: None,
                        reason: "",
                        jobs: 0,
                        busy_ms: 0,
                    };
                    shared
                        .machines
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(*machine, life);
                    let ready_at = now + self.creation.creation_ms(*runner);
                    let (machine, shared) = (*machine, shared.clone());
                    tasks.spawn(async move {
                        Some(create_machine(&shared, machine, now, ready_at).await)
                    });
                }
                Command::RemoveMachine { machine, reason } => {
                    let why = reason.as_str();
                    shared.machine(*machine, |l| {
                        l.removal_started = Some(now);
                        l.reason = why;
                    });
                    let (machine, shared) = (*machine, shared.clone());
                    tasks.spawn(async move {
                        let name = shared.machine_volume(machine);
                        match shared.setup.docker.remove_volume(&name).await {
                            Ok(()) => {
                                let mut st = shared.stats();
                                st.machines_removed += 1;
                                st.machines_alive = st.machines_alive.saturating_sub(1);
                            }
                            Err(e) => shared.docker_error(format!("removing volume {name}: {e}")),
                        }
                        Some(Input::MachineRemoved { machine })
                    });
                }
                Command::JobFinished(r) => {
                    let live = shared
                        .jobs
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&r.id);
                    let live = live.unwrap_or_default();
                    let mut stats = shared.stats();
                    if let Some(real) = live.outcome {
                        let hit = |o: Outcome| {
                            matches!(o, Outcome::HitLocal { .. } | Outcome::HitRemote { .. })
                        };
                        if hit(real) == hit(r.cache) {
                            stats.cache.agreed_with_model += 1;
                        }
                        r.cache = match (real, r.cache) {
                            // A real miss keeps the core's reason when the core missed too.
                            (Outcome::Miss(_), Outcome::Miss(why)) => Outcome::Miss(why),
                            (o, _) => o,
                        };
                    }
                    if live.failed {
                        r.failed = true;
                        stats.failed_jobs += 1;
                    }
                    r.bytes_down = live.bytes_down;
                    r.bytes_up = live.bytes_up;
                    r.pull_ms = live.pull_ms;
                    r.sources_ms = live.sources_ms;
                    r.restore_ms = live.restore_ms;
                    r.save_ms = live.save_ms;
                    if let Some(m) = r.machine {
                        let busy = r.machine_busy_ms();
                        shared.machine(m, |l| l.busy_ms += busy);
                    }
                }
            }
        }
    }
}

async fn create_machine(
    shared: &Shared,
    machine: MachineId,
    asked: SimTime,
    ready_at: SimTime,
) -> Input {
    let name = shared.machine_volume(machine);
    let t = Stopwatch::start();
    if let Err(e) = shared.setup.docker.create_volume(&name).await {
        shared.docker_error(format!("creating volume {name}: {e}"));
        return Input::MachineFailed { machine };
    }
    {
        let mut st = shared.stats();
        st.volume_create.record_us(t.micros());
        st.machines_alive += 1;
        st.machines_max_alive = st.machines_max_alive.max(st.machines_alive);
    }
    tokio::time::sleep_until(shared.clock.instant_of(ready_at)).await;
    let mut s = shared.stats();
    s.machines_created += 1;
    let run_ms = shared.clock.now().saturating_since(asked);
    s.machine_ready.record_us(run_ms.saturating_mul(1000));
    Input::MachineReady { machine }
}
