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
        let m = self.runners[runner.0 as usize].machines.as_mut().expect("docker+machine runner");
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
                    self.machine_owner.insert(machine, runner);
                    out.push(Command::CreateMachine { machine, runner });
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

    /// Prepare of a job on a docker+machine runner: use the acquired machine, or (on demand,
    /// or if the acquired one is gone) the newest idle one, or wait for a machine and make
    /// sure one is being created for it.
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
        match usable.or_else(|| mr.pool.newest_idle()) {
            Some(m) => self.use_machine(now, runner, key, m, out),
            None => {
                self.machine_runner(runner).waiters.push_back(key);
                self.top_up_creations(now, runner, out);
            }
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
        let machine = pool.machine_mut(m);
        machine.used_at = now;
        machine.used_count += 1;
        self.start_work(now, key, Placement::Machine(m), out);
    }

    /// Makes sure every waiting job has a machine being created (or held back) for it: in
    /// GitLab Runner each waiting Prepare creates its own machine, and takes whichever free
    /// machine it can grab first. Creations beyond `MaxGrowthRate` wait on GitLab Runner's
    /// growth semaphore; the model also holds them back at `limit` (GitLab Runner's Prepare
    /// does not re-check `limit`, so a retried creation can briefly exceed it while a failed
    /// machine is being removed; here `limit` always holds).
    fn top_up_creations(&mut self, now: SimTime, runner: RunnerId, out: &mut Vec<Command>) {
        let caps = self.runners[runner.0 as usize].caps();
        loop {
            let mr =
                self.runners[runner.0 as usize].machines.as_mut().expect("docker+machine runner");
            let underway = mr.pool.creating_on_demand() + mr.deferred;
            let waiting = mr.waiters.len() as u32;
            if underway >= waiting {
                // More creations than waiters (a released machine served one): the extra
                // machines become idle when ready; held-back ones are no longer needed.
                mr.deferred = mr.deferred.min(waiting.saturating_sub(mr.pool.creating_on_demand()));
                return;
            }
            let counts = mr.pool.counts();
            if (caps.max_growth_rate > 0 && counts.creating >= caps.max_growth_rate)
                || (caps.limit > 0 && counts.total() >= caps.limit)
            {
                mr.deferred += 1;
                continue;
            }
            let id = Self::new_machine_id(&mut self.next_machine);
            mr.pool.create(now, id, true);
            self.carry_out(runner, &[PoolAction::Create(id)], out);
        }
    }

    /// Starts creations held back by `MaxGrowthRate` or `limit`, now that a creation ended or
    /// a machine is gone.
    fn start_deferred(&mut self, now: SimTime, runner: RunnerId, out: &mut Vec<Command>) {
        let mr = self.machine_runner(runner);
        if mr.deferred > 0 {
            mr.deferred = 0;
            self.top_up_creations(now, runner, out);
        }
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
        mr.pool.machine_mut(m).free_since = now;
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
        let machine = pool.machine_mut(m);
        machine.used_at = now;
        if caps.max_builds > 0 && machine.used_count >= caps.max_builds {
            pool.set_state(m, MachineState::Removing);
            out.push(Command::RemoveMachine { machine: m, reason: RemovalReason::TooManyBuilds });
            return;
        }
        self.machine_free(now, runner, m, out);
    }

    pub(super) fn machine_ready(&mut self, now: SimTime, m: MachineId, out: &mut Vec<Command>) {
        let runner = self.owner(m);
        if self.is_scaler(runner) {
            return self.instance_ready(now, runner, m);
        }
        let machine = self.machine_runner(runner).pool.machine_mut(m);
        assert_eq!(
            machine.state,
            MachineState::Creating,
            "MachineReady for a machine not being created"
        );
        machine.used_at = now;
        self.machine_free(now, runner, m, out);
        self.start_deferred(now, runner, out);
    }

    pub(super) fn machine_failed(&mut self, now: SimTime, m: MachineId, out: &mut Vec<Command>) {
        let runner = self.owner(m);
        if self.is_scaler(runner) {
            return self.instance_gone(now, runner, m, RemovalReason::FailedToCreate, out);
        }
        self.creation_failed(now, m, RemovalReason::FailedToCreate, out);
    }

    /// A creation failed (or the machine was lost while being created): no retry for idle
    /// machines (§2.5). An on-demand creation failed the Prepare of the first waiting job:
    /// it tries again, up to [`MAX_ON_DEMAND_CREATIONS`] creations, then fails.
    fn creation_failed(
        &mut self,
        now: SimTime,
        m: MachineId,
        reason: RemovalReason,
        out: &mut Vec<Command>,
    ) {
        let runner = self.owner(m);
        let pool = &mut self.machine_runner(runner).pool;
        let machine = pool.get(m).copied().expect("known machine");
        assert_eq!(machine.state, MachineState::Creating, "failure of a machine not being created");
        pool.set_state(m, MachineState::Removing);
        out.push(Command::RemoveMachine { machine: m, reason });
        let head = self.machine_runner(runner).waiters.front().copied();
        if machine.on_demand
            && let Some(key) = head
        {
            let tries = match &mut self.jobs[key.0 as usize].as_mut().expect("waiting job").state {
                JobState::Running { failed_creations, .. } => {
                    *failed_creations += 1;
                    *failed_creations
                }
                JobState::Pending => unreachable!("a waiting job is running"),
            };
            if tries >= MAX_ON_DEMAND_CREATIONS {
                self.machine_runner(runner).waiters.pop_front();
                self.end_job(now, key, true, out);
            }
        }
        self.start_deferred(now, runner, out);
        self.top_up_creations(now, runner, out);
    }

    pub(super) fn machine_removed(&mut self, now: SimTime, m: MachineId, out: &mut Vec<Command>) {
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
        self.start_deferred(now, runner, out);
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
