//! docker+machine glue of the fleet: `Acquire`, Prepare (use a machine or create one on
//! demand), Release after the job, and what happens when machines become ready, fail, are
//! removed or are lost (§2.3–2.7).

use super::{Fleet, JobState};
use crate::docker_machine::{Acquired, MachineState, PoolAction, RemovalReason};
use crate::ids::{JobKey, MachineId, RunnerId};
use crate::job::{Command, Placement};
use crate::time::SimTime;

/// How many machine creations a job's Prepare attempts before the job fails: GitLab Runner
/// tries `useMachine` 3 times per Prepare and Prepare 3 times (§2.6).
pub const MAX_ON_DEMAND_CREATIONS: u32 = 9;

/// GitLab Runner 19.4 `executors/docker/machine/consts.go` `provisionRetryInterval`: the
/// sleep after each failed `useMachine` in `retryUseMachine`.
pub const PROVISION_RETRY_INTERVAL_MS: u64 = 1_000;

/// GitLab Runner 19.4 `common/consts.go` `PreparationRetryInterval`: the sleep after each
/// failed Prepare in `common/build.go` `retryCreateExecutor`.
pub const PREPARATION_RETRY_INTERVAL_MS: u64 = 3_000;

impl Fleet {
    fn new_machine_id(next: &mut u32) -> MachineId {
        let id = MachineId(*next);
        *next += 1;
        id
    }

    /// `Acquire` of a docker+machine runner: scaling, then the newest idle machine.
    pub(super) fn machine_acquire(
        &mut self,
        now: SimTime,
        runner: RunnerId,
        out: &mut Vec<Command>,
    ) -> Acquired {
        let caps = self.runners[runner.0 as usize].caps();
        let next = &mut self.next_machine;
        let m =
            self.runners[runner.0 as usize].executor.machines_mut().expect("docker+machine runner");
        let settings = m.settings(now);
        let mut actions = Vec::new();
        let got =
            m.pool.acquire(now, &settings, &caps, || Self::new_machine_id(next), &mut actions);
        self.carry_out(runner, &actions, out);
        got
    }

    fn carry_out(&mut self, runner: RunnerId, actions: &[PoolAction], out: &mut Vec<Command>) {
        for a in actions {
            match *a {
                PoolAction::Create(machine) => {
                    // Idle pre-creation (`createMachines`) also goes through the growth
                    // semaphore; `canCreateIdle` counts queued creations as `Creating`, so
                    // it never has to wait.
                    self.machine_owner.insert(machine, runner);
                    self.start_creation(runner, machine, out);
                }
                PoolAction::Remove(machine, reason) => {
                    out.push(Command::RemoveMachine { machine, reason })
                }
            }
        }
    }

    /// An acquired machine whose request got no job goes back to `Idle` (its idle clock is
    /// not touched: it was never used).
    pub(super) fn unacquire(&mut self, runner: RunnerId, m: MachineId) {
        let pool = &mut self.machine_runner(runner).pool;
        if pool.get(m).is_some_and(|x| x.state == MachineState::Acquired) {
            pool.set_state(m, MachineState::Idle);
        }
    }

    /// Prepare of a job on a docker+machine runner: use the machine `Acquire` gave the
    /// request, else GitLab Runner's `useMachine` ([`Fleet::use_or_create`]).
    ///
    /// GitLab Runner 19.4 `executors/docker/machine/provider.go` `(*machineProvider).Use`:
    /// an `Acquired` machine is used as it is; otherwise `retryUseMachine`.
    pub(super) fn prepare_on_machine(
        &mut self,
        now: SimTime,
        runner: RunnerId,
        key: JobKey,
        acquired: Option<MachineId>,
        out: &mut Vec<Command>,
    ) {
        let mr = self.machine_runner(runner);
        let usable =
            acquired.filter(|&m| mr.pool.get(m).is_some_and(|x| x.state == MachineState::Acquired));
        match usable {
            Some(m) => self.use_machine(now, runner, key, m, out),
            None => self.use_or_create(now, runner, key, out),
        }
    }

    /// GitLab Runner 19.4 `provider.go` `useMachine`: the newest free machine
    /// (`findFreeExistingMachine`), else `createAndAcquireMachine`, which always creates a
    /// machine for this job — even while other creations are under way — and then takes
    /// whichever comes first: its own machine (`errCh`), or a machine freed meanwhile
    /// (`availableMachineSignal`). The creation goes on either way.
    fn use_or_create(
        &mut self,
        now: SimTime,
        runner: RunnerId,
        key: JobKey,
        out: &mut Vec<Command>,
    ) {
        if let Some(m) = self.machine_runner(runner).pool.newest_idle() {
            return self.use_machine(now, runner, key, m, out);
        }
        let id = Self::new_machine_id(&mut self.next_machine);
        let mr = self.machine_runner(runner);
        mr.pool.create(now, id, true);
        mr.owners.insert(id, key);
        mr.waiters.push_back(key);
        self.machine_owner.insert(id, runner);
        self.start_creation(runner, id, out);
    }

    /// GitLab Runner 19.4 `coordinator.go` `waitForGrowthCapacity`: the machine is
    /// `Creating` at once (so `Acquire` counts it), but `docker-machine create` runs only
    /// while fewer than `MaxGrowthRate` creations run; the others wait on the condition
    /// variable and are woken one at a time, first come first served. `Prepare` does not
    /// check `limit` (`createAndAcquireMachine` calls `create` unconditionally); only
    /// `Acquire`'s `canCreateOnDemand` does, before the job request.
    fn start_creation(&mut self, runner: RunnerId, id: MachineId, out: &mut Vec<Command>) {
        let max = self.runners[runner.0 as usize].caps().max_growth_rate;
        let mr = self.machine_runner(runner);
        if max == 0 || mr.growing < max {
            mr.growing += 1;
            out.push(Command::CreateMachine { machine: id, runner });
        } else {
            mr.growth_queue.push_back(id);
        }
    }

    /// A `docker-machine create` ended (ready or failed): the growth semaphore lets the
    /// longest-waiting creation run.
    fn creation_ended(&mut self, runner: RunnerId, out: &mut Vec<Command>) {
        let mr = self.machine_runner(runner);
        mr.growing -= 1;
        if let Some(next) = mr.growth_queue.pop_front() {
            mr.growing += 1;
            out.push(Command::CreateMachine { machine: next, runner });
        }
    }

    /// Starts the job's script on machine `m` (which is `Acquired` or `Idle`).
    fn use_machine(
        &mut self,
        now: SimTime,
        runner: RunnerId,
        key: JobKey,
        m: MachineId,
        out: &mut Vec<Command>,
    ) {
        let pool = &mut self.machine_runner(runner).pool;
        pool.set_state(m, MachineState::Used);
        pool.start_build(m, now);
        self.start_work(now, key, Placement::Machine(m), out);
    }

    /// The `useMachine` retries that are due: GitLab Runner 19.4 `provider.go`
    /// `retryUseMachine` tries `useMachine` 3 times, sleeping `provisionRetryInterval`
    /// (1 s, `consts.go`) after each failure, the last included; then `Prepare` fails and
    /// `common/build.go` `retryCreateExecutor` sleeps `PreparationRetryInterval` (3 s,
    /// `common/consts.go`), again after the last of its `PreparationRetries` (3) attempts,
    /// before the job fails.
    pub(super) fn fire_use_retries(&mut self, now: SimTime, out: &mut Vec<Command>) {
        while let Some(&(at, key)) = self.use_retries.first() {
            if at > now {
                break;
            }
            self.use_retries.pop_first();
            let Some(job) = self.jobs[key.0 as usize].as_ref() else { continue };
            let JobState::Running { runner, machine: None, failed_creations, .. } = job.state
            else {
                continue;
            };
            if failed_creations >= MAX_ON_DEMAND_CREATIONS {
                self.end_job(now, key, true, out);
            } else {
                self.use_or_create(now, runner, key, out);
            }
        }
    }

    /// When the next `useMachine` retry is due, if any.
    pub(super) fn next_use_retry(&self) -> Option<SimTime> {
        self.use_retries.first().map(|&(at, _)| at)
    }

    /// A machine became free (ready, or released after a job): the first waiting job takes
    /// it, else it idles.
    fn machine_free(
        &mut self,
        now: SimTime,
        runner: RunnerId,
        m: MachineId,
        out: &mut Vec<Command>,
    ) {
        let mr = self.machine_runner(runner);
        mr.pool.set_free_since(m, now);
        match mr.waiters.pop_front() {
            Some(key) => {
                mr.pool.set_state(m, MachineState::Idle);
                self.use_machine(now, runner, key, m, out);
            }
            None => mr.pool.set_state(m, MachineState::Idle),
        }
    }

    /// Release after a job: the idle clock restarts; `MaxBuilds` removes the machine.
    pub(super) fn release_machine(
        &mut self,
        now: SimTime,
        runner: RunnerId,
        m: MachineId,
        out: &mut Vec<Command>,
    ) {
        let caps = self.runners[runner.0 as usize].caps();
        let pool = &mut self.machine_runner(runner).pool;
        pool.set_used_at(m, now);
        let used_count = pool.get(m).expect("known machine").used_count;
        if caps.max_builds > 0 && used_count >= caps.max_builds {
            pool.set_state(m, MachineState::Removing);
            out.push(Command::RemoveMachine { machine: m, reason: RemovalReason::TooManyBuilds });
            return;
        }
        self.machine_free(now, runner, m, out);
    }

    /// `docker-machine create` succeeded (`createWithGrowthCapacity`): the machine is
    /// `Idle` with `Used` = now. The Prepare that created it takes it through `errCh` if it
    /// is still waiting (it calls `tryAcquireMachineDetails` on its own machine at once,
    /// ahead of any goroutine woken by `addAvailableMachine`); otherwise the machine goes to
    /// the first waiting job, or idles.
    pub(super) fn machine_ready(&mut self, now: SimTime, m: MachineId, out: &mut Vec<Command>) {
        let runner = self.owner(m);
        if self.is_scaler(runner) {
            return self.instance_ready(now, runner, m);
        }
        let mr = self.machine_runner(runner);
        assert_eq!(
            mr.pool.get(m).map(|x| x.state),
            Some(MachineState::Creating),
            "MachineReady for a machine not being created"
        );
        mr.pool.set_used_at(m, now);
        let creator = mr.owners.remove(&m);
        match creator.and_then(|k| mr.waiters.iter().position(|&w| w == k)) {
            Some(i) => {
                let key = mr.waiters.remove(i).expect("waiting job");
                mr.pool.set_free_since(m, now);
                mr.pool.set_state(m, MachineState::Idle);
                self.use_machine(now, runner, key, m, out);
            }
            None => self.machine_free(now, runner, m, out),
        }
        self.creation_ended(runner, out);
    }

    pub(super) fn machine_failed(&mut self, now: SimTime, m: MachineId, out: &mut Vec<Command>) {
        let runner = self.owner(m);
        if self.is_scaler(runner) {
            return self.instance_gone(now, runner, m, RemovalReason::FailedToCreate, out);
        }
        self.creation_failed(now, m, RemovalReason::FailedToCreate, out);
    }

    /// A creation failed (or the machine was lost while being created): the machine is
    /// removed (`createWithGrowthCapacity` calls `remove`), and idle machines are not
    /// retried (§2.5). If the Prepare that created it still waits for it, its `useMachine`
    /// failed (`createAndAcquireMachine` returns the `errCh` error): it tries again after
    /// the retry sleeps ([`Fleet::fire_use_retries`]), up to [`MAX_ON_DEMAND_CREATIONS`]
    /// failures, then the job fails. A Prepare that took another machine meanwhile no longer
    /// listens: nothing else happens.
    fn creation_failed(
        &mut self,
        now: SimTime,
        m: MachineId,
        reason: RemovalReason,
        out: &mut Vec<Command>,
    ) {
        let runner = self.owner(m);
        let mr = self.machine_runner(runner);
        let machine = mr.pool.get(m).copied().expect("known machine");
        assert_eq!(machine.state, MachineState::Creating, "failure of a machine not being created");
        mr.pool.set_state(m, MachineState::Removing);
        out.push(Command::RemoveMachine { machine: m, reason });
        let creator = mr.owners.remove(&m);
        if let Some(i) = creator.and_then(|k| mr.waiters.iter().position(|&w| w == k)) {
            let key = mr.waiters.remove(i).expect("waiting job");
            let tries = match &mut self.jobs[key.0 as usize].as_mut().expect("waiting job").state {
                JobState::Running { failed_creations, .. } => {
                    *failed_creations += 1;
                    *failed_creations
                }
                JobState::Pending => unreachable!("a waiting job is running"),
            };
            // 1 s after every failed `useMachine`; 3 s more after every third (a failed
            // Prepare), the last one included.
            let sleep_ms = PROVISION_RETRY_INTERVAL_MS
                + if tries % 3 == 0 { PREPARATION_RETRY_INTERVAL_MS } else { 0 };
            self.use_retries.insert((now + sleep_ms, key));
        }
        self.creation_ended(runner, out);
    }

    pub(super) fn machine_removed(&mut self, m: MachineId) {
        let runner = self.machine_owner.remove(&m).expect("MachineRemoved for an unknown machine");
        if self.is_scaler(runner) {
            self.instance_removed(runner, m);
            self.cache.forget(crate::cache::Place::Machine(m));
            return;
        }
        let pool = &mut self.machine_runner(runner).pool;
        assert_eq!(
            pool.get(m).map(|x| x.state),
            Some(MachineState::Removing),
            "removed a machine not being removed"
        );
        pool.forget(m);
        self.cache.forget(crate::cache::Place::Machine(m));
    }

    /// The cloud took machine `m`. A job on it fails (and is retried if it may be).
    pub(super) fn machine_lost(&mut self, now: SimTime, m: MachineId, out: &mut Vec<Command>) {
        let Some(&runner) = self.machine_owner.get(&m) else { return };
        if self.is_scaler(runner) {
            return self.instance_gone(now, runner, m, RemovalReason::Lost, out);
        }
        let Some(state) = self.machine_runner(runner).pool.get(m).map(|x| x.state) else { return };
        match state {
            MachineState::Creating => self.creation_failed(now, m, RemovalReason::Lost, out),
            MachineState::Removing => {}
            MachineState::Idle | MachineState::Acquired => {
                self.machine_runner(runner).pool.set_state(m, MachineState::Removing);
                out.push(Command::RemoveMachine { machine: m, reason: RemovalReason::Lost });
            }
            MachineState::Used => {
                self.machine_runner(runner).pool.set_state(m, MachineState::Removing);
                out.push(Command::RemoveMachine { machine: m, reason: RemovalReason::Lost });
                let key = *self.jobs_on(m).first().expect("a used machine runs a job");
                self.end_job(now, key, true, out);
            }
        }
    }

    fn owner(&self, m: MachineId) -> RunnerId {
        *self.machine_owner.get(&m).expect("an input for an unknown machine")
    }
}
