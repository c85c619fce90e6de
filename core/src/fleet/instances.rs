//! docker-autoscaler glue of the fleet (§3.2): `Reserve` before a job request, `Acquire` of a
//! slot in Prepare (waiting up to the acquire timeout), `Release` after the job, the
//! taskscaler's own scaling pass after every event, and instance events.

use std::collections::VecDeque;

use super::{Fleet, JobState};
use crate::docker_machine::{Acquired, RemovalReason};
use crate::ids::{JobKey, MachineId, RunnerId};
use crate::job::{Command, Placement};
use crate::periods::PeriodSchedule;
use crate::taskscaler::{AutoscalerSpec, InstancePool, InstanceState, Policy, PoolAction};
use crate::time::SimTime;

/// The docker-autoscaler state of one `[[runners]]` entry.
#[derive(Debug)]
pub(super) struct ScalerRunner {
    pub(super) spec: AutoscalerSpec,
    pub(super) pool: InstancePool,
    pub(super) periods: Box<dyn PeriodSchedule>,
    /// Jobs in Prepare waiting for a slot, first come first served, with the instant each
    /// gives up (deadlines grow in queue order: the wait is the same for every job).
    pub(super) waiters: VecDeque<(JobKey, SimTime)>,
}

impl ScalerRunner {
    pub(super) fn new(spec: AutoscalerSpec) -> ScalerRunner {
        let pool = InstancePool::new(&spec);
        ScalerRunner {
            spec,
            pool,
            periods: Box::new(crate::periods::NoPeriods),
            waiters: VecDeque::new(),
        }
    }

    /// The policy in force: the last matching `[[runners.autoscaler.policy]]`, else
    /// taskscaler's defaults.
    pub(super) fn policy(&mut self, now: SimTime) -> Policy {
        match self.periods.active(now) {
            Some(i) => self.spec.policies[i],
            None => self.spec.default_policy,
        }
    }

    /// Whether `Reserve` would succeed now.
    pub(super) fn can_reserve(&mut self, now: SimTime) -> bool {
        let policy = self.policy(now);
        self.pool.can_reserve(&self.spec, &policy)
    }

    /// The next instant the scaler must act by itself: an idle expiry or throttle token, a
    /// waiting job's deadline, or a policy change.
    pub(super) fn next_event(&mut self, now: SimTime) -> Option<SimTime> {
        let policy = self.policy(now);
        [
            self.pool.next_event(now, &self.spec, &policy),
            self.waiters.front().map(|&(_, deadline)| deadline),
            self.periods.next_change_after(now),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Fleet {
    fn scaler(&mut self, runner: RunnerId) -> &mut ScalerRunner {
        self.runners[runner.0 as usize].executor.scaler_mut().expect("docker-autoscaler runner")
    }

    pub(super) fn is_scaler(&self, runner: RunnerId) -> bool {
        self.runners[runner.0 as usize].executor.scaler().is_some()
    }

    /// `Acquire` of a docker-autoscaler runner: a reservation, or no job request at all.
    pub(super) fn scaler_reserve(&mut self, now: SimTime, runner: RunnerId) -> Acquired {
        let s = self.scaler(runner);
        if s.can_reserve(now) {
            s.pool.reserve();
            Acquired::OnDemand
        } else {
            Acquired::NoFree
        }
    }

    /// The job request returned no job: `Unreserve`.
    pub(super) fn scaler_unreserve(&mut self, runner: RunnerId) {
        self.scaler(runner).pool.unreserve();
    }

    /// When a free, unreserved slot appeared, for the pending split; only preemptive mode
    /// waits for one before requesting a job.
    pub(super) fn scaler_slot_free_since(&mut self, now: SimTime, runner: RunnerId) -> SimTime {
        let s = self.scaler(runner);
        if s.policy(now).preemptive { s.pool.slot_free_since(now) } else { SimTime::ZERO }
    }

    /// Prepare: take a slot on a running instance, or wait for one.
    pub(super) fn prepare_on_instance(
        &mut self,
        now: SimTime,
        runner: RunnerId,
        key: JobKey,
        out: &mut Vec<Command>,
    ) {
        let s = self.scaler(runner);
        match s.pool.acquire(&s.spec) {
            Some(m) => self.start_work(now, key, Placement::Machine(m), out),
            None => {
                let deadline = now + s.spec.acquire_wait_ms;
                s.waiters.push_back((key, deadline));
            }
        }
    }

    /// `Release` after a job; `max_use_count` may retire the instance.
    pub(super) fn release_instance(
        &mut self,
        now: SimTime,
        runner: RunnerId,
        m: MachineId,
        out: &mut Vec<Command>,
    ) {
        let s = self.scaler(runner);
        if s.pool.get(m).is_some_and(|i| i.state == InstanceState::Running)
            && let Some(PoolAction::Remove(m, reason)) = s.pool.release(now, &s.spec, m)
        {
            out.push(Command::RemoveMachine { machine: m, reason });
        }
    }

    /// The scaler's pass after every event: jobs whose Prepare gave up fail, waiting jobs
    /// take free slots in order, then the scaling rule creates or deletes instances.
    pub(super) fn run_scalers(&mut self, now: SimTime, out: &mut Vec<Command>) {
        for r in 0..self.runners.len() {
            let runner = RunnerId(r as u16);
            if !self.is_scaler(runner) {
                continue;
            }
            while let Some(&(key, deadline)) = self.scaler(runner).waiters.front() {
                if deadline > now {
                    break;
                }
                // "unable to acquire instance" in every Prepare attempt: the job fails.
                let s = self.scaler(runner);
                s.waiters.pop_front();
                s.pool.unreserve();
                self.end_job(now, key, true, out);
            }
            loop {
                let s = self.scaler(runner);
                let Some(&(key, _)) = s.waiters.front() else { break };
                let Some(m) = s.pool.acquire(&s.spec) else { break };
                s.waiters.pop_front();
                self.start_work(now, key, Placement::Machine(m), out);
            }
            let next = &mut self.next_machine;
            let s = self.runners[r].executor.scaler_mut().expect("docker-autoscaler runner");
            let policy = s.policy(now);
            let mut actions = Vec::new();
            s.pool.scale(
                now,
                &s.spec,
                &policy,
                || {
                    *next += 1;
                    MachineId(*next - 1)
                },
                &mut actions,
            );
            for a in actions {
                match a {
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
    }

    /// The script's slowdown from the other jobs on its instance (1 without contention).
    pub(super) fn contention_factor(&self, runner: RunnerId, on: Placement) -> f64 {
        let (Some(s), Placement::Machine(m)) =
            (self.runners[runner.0 as usize].executor.scaler(), on)
        else {
            return 1.0;
        };
        let others = s.pool.get(m).map_or(0, |i| i.in_use.saturating_sub(1));
        1.0 + s.spec.contention * f64::from(others)
    }

    pub(super) fn instance_ready(&mut self, now: SimTime, runner: RunnerId, m: MachineId) {
        self.scaler(runner).pool.ready(now, m);
    }

    /// A creation failed, or the cloud took the instance: jobs on it fail (and are retried
    /// if they may be); the scaler replaces it on its next pass if it is still needed.
    pub(super) fn instance_gone(
        &mut self,
        now: SimTime,
        runner: RunnerId,
        m: MachineId,
        reason: RemovalReason,
        out: &mut Vec<Command>,
    ) {
        let Some(state) = self.scaler(runner).pool.get(m).map(|i| i.state) else { return };
        if state == InstanceState::Removing {
            return;
        }
        let victims = self.jobs_on(m);
        self.scaler(runner).pool.set_removing(m);
        out.push(Command::RemoveMachine { machine: m, reason });
        for key in victims {
            self.end_job(now, key, true, out);
        }
    }

    pub(super) fn instance_removed(&mut self, runner: RunnerId, m: MachineId) {
        self.scaler(runner).pool.forget(m);
    }

    /// The jobs running on machine or instance `m`, in key order.
    pub(super) fn jobs_on(&self, m: MachineId) -> Vec<JobKey> {
        self.jobs
            .iter()
            .enumerate()
            .filter_map(|(k, j)| match j {
                Some(super::ActiveJob {
                    state: JobState::Running { machine: Some(x), .. },
                    ..
                }) if *x == m => Some(JobKey(k as u32)),
                _ => None,
            })
            .collect()
    }
}
