//! One GitLab Runner process: its `concurrent` workers and the feeder that offers each
//! `[[runners]]` entry to an idle worker once per `check_interval` (§1.2).
//!
//! ```text
//!   feeder: offer r0 ─ sleep ci/N ─ offer r1 ─ sleep ci/N ─ … ─ offer r0 …
//!              │ (blocks while no worker is idle: an unbuffered Go channel)
//!              ▼
//!   idle workers (FIFO, like Go's channel receive queue) ─► processRunner(r)
//! ```
//!
//! This module holds the state and its arithmetic; the decisions that also touch GitLab's
//! queue live in [`crate::fleet`].

use std::collections::VecDeque;

use crate::ids::{JobKey, MachineId, RunnerId};
use crate::time::SimTime;

/// Where the feeder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feeder {
    /// Sleeping; it offers runner `idx` (local index) at `next_at`.
    Sleeping {
        /// The instant of the next offer.
        next_at: SimTime,
        /// The local index of the runner it will offer.
        idx: usize,
    },
    /// Blocked on the channel with runner `idx`: no worker was idle at its offer. The next
    /// worker to become free takes it at once.
    Blocked {
        /// The local index of the runner being offered.
        idx: usize,
    },
}

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Waiting on the channel.
    Idle,
    /// Holding a long-polling job request for a runner.
    Polling {
        /// The runner whose request is held.
        runner: RunnerId,
        /// Identifies this poll in the process's deadline queue.
        serial: u64,
        /// The machine `Acquire` reserved for the request (docker+machine), if any.
        machine: Option<MachineId>,
    },
    /// Waiting for the answer to a job request that went to Rails (it takes the scenario's
    /// request latency).
    Requesting {
        /// The runner whose request is in flight.
        runner: RunnerId,
        /// Identifies this request in the process's answer queue.
        serial: u64,
        /// The machine `Acquire` reserved for the request (docker+machine), if any.
        machine: Option<MachineId>,
    },
    /// Running a job.
    Busy {
        /// The job.
        job: JobKey,
    },
}

/// One worker goroutine.
#[derive(Debug, Clone, Copy)]
pub struct Worker {
    /// What it does now.
    pub state: WorkerState,
    /// When it last finished a job (its capacity has been free since then).
    pub free_since: SimTime,
}

/// A held long-polling request, in the order they were made (deadlines are monotonic
/// because every poll lasts the same time).
#[derive(Debug, Clone, Copy)]
pub struct HeldPoll {
    /// When Workhorse answers it empty.
    pub deadline: SimTime,
    /// The worker holding it.
    pub worker: usize,
    /// Matches [`WorkerState::Polling::serial`] while the poll is live.
    pub serial: u64,
}

/// The state of one runner process.
#[derive(Debug)]
pub struct RunnerProcess {
    /// Global ids of this process's runners, in file order.
    pub runners: Vec<RunnerId>,
    /// `check_interval / N`, in ms (at least 1).
    pub gap_ms: u64,
    /// The feeder.
    pub feeder: Feeder,
    /// All workers.
    pub workers: Vec<Worker>,
    /// Idle workers in the order they will receive (front first).
    pub idle: IdleWorkers,
    /// Held long polls, oldest first; entries whose serial no longer matches are stale.
    pub polls: VecDeque<HeldPoll>,
    /// Job requests in flight to Rails, oldest first (every one takes the same latency, so
    /// their answer times grow in this order).
    pub in_flight: VecDeque<HeldPoll>,
    /// The next poll serial.
    pub next_serial: u64,
}

/// A process's idle workers, the order they receive in (front first): Go's channel receive
/// queue. Indexes are stored as `u32`: skipped feeder offers rotate the queue once per input
/// (`Fleet::skip_no_op_offers`), moving up to half of it, and with thousands of workers
/// (`concurrent`) the bytes moved were most of the engine's `memmove` (issue 15).
#[derive(Debug, Clone, Default)]
pub struct IdleWorkers(VecDeque<u32>);

impl IdleWorkers {
    /// The next worker to receive, taken off the queue.
    pub fn pop_front(&mut self) -> Option<usize> {
        self.0.pop_front().map(|w| w as usize)
    }

    /// Worker `w` waits last.
    pub fn push_back(&mut self, w: usize) {
        self.0.push_back(u32::try_from(w).expect("fewer than 2^32 workers"));
    }

    /// `n` workers each received once and went back to the end, in order.
    pub fn rotate_left(&mut self, n: usize) {
        self.0.rotate_left(n);
    }

    /// How many workers are idle.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no worker is idle.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl RunnerProcess {
    /// A process whose feeder makes its first offer at `first_offer`.
    pub fn new(
        runners: Vec<RunnerId>,
        concurrent: u32,
        check_interval_ms: u64,
        first_offer: SimTime,
    ) -> RunnerProcess {
        assert!(!runners.is_empty() && concurrent > 0);
        let gap_ms = (check_interval_ms / runners.len() as u64).max(1);
        let workers = vec![
            Worker { state: WorkerState::Idle, free_since: SimTime::ZERO };
            concurrent as usize
        ];
        RunnerProcess {
            runners,
            gap_ms,
            feeder: Feeder::Sleeping { next_at: first_offer, idx: 0 },
            workers,
            idle: IdleWorkers((0..concurrent).collect()),
            polls: VecDeque::new(),
            in_flight: VecDeque::new(),
            next_serial: 0,
        }
    }

    /// The runner at local index `idx`.
    pub fn runner_at(&self, idx: usize) -> RunnerId {
        self.runners[idx]
    }

    /// The local index after `idx`, wrapping.
    pub fn next_idx(&self, idx: usize) -> usize {
        (idx + 1) % self.runners.len()
    }

    /// Offers the feeder made strictly before `now` while nothing could change are skipped:
    /// returns how many offers were skipped, the local index and the instant of the first, and moves the
    /// feeder to its first offer at or after `now`. Offers at exactly `now` are left for the
    /// wakeup (inputs at an instant are handled before the core's own wakeup).
    pub fn skip_offers_before(&mut self, now: SimTime) -> Option<(u64, usize, SimTime)> {
        let Feeder::Sleeping { next_at, idx } = self.feeder else { return None };
        if next_at >= now {
            return None;
        }
        let skipped = (now - next_at).div_ceil(self.gap_ms);
        let n = self.runners.len() as u64;
        self.feeder = Feeder::Sleeping {
            next_at: next_at + skipped * self.gap_ms,
            idx: ((idx as u64 + skipped) % n) as usize,
        };
        Some((skipped, idx, next_at))
    }

    /// How many of `skipped` consecutive offers starting at local index `first` went to the
    /// runner at local index `local`.
    pub fn offers_to(&self, skipped: u64, first: usize, local: usize) -> u64 {
        let n = self.runners.len() as u64;
        let offset = (local as u64 + n - first as u64) % n;
        skipped / n + u64::from(offset < skipped % n)
    }

    /// Starts a long poll on `worker`, holding `machine` if `Acquire` reserved one.
    pub fn hold_poll(
        &mut self,
        worker: usize,
        runner: RunnerId,
        machine: Option<MachineId>,
        deadline: SimTime,
    ) {
        let serial = self.next_serial;
        self.next_serial += 1;
        self.workers[worker].state = WorkerState::Polling { runner, serial, machine };
        self.polls.push_back(HeldPoll { deadline, worker, serial });
    }

    /// Sends a job request to Rails on `worker`, answered at `answer_at`.
    pub fn start_request(
        &mut self,
        worker: usize,
        runner: RunnerId,
        machine: Option<MachineId>,
        answer_at: SimTime,
    ) {
        let serial = self.next_serial;
        self.next_serial += 1;
        self.workers[worker].state = WorkerState::Requesting { runner, serial, machine };
        self.in_flight.push_back(HeldPoll { deadline: answer_at, worker, serial });
    }

    /// When the oldest request in flight is answered, if any.
    pub fn next_answer(&self) -> Option<SimTime> {
        self.in_flight.front().map(|r| r.deadline)
    }

    /// Whether a deadline-queue entry still stands for a live poll.
    pub fn is_live(&self, poll: &HeldPoll) -> bool {
        matches!(self.workers[poll.worker].state, WorkerState::Polling { serial, .. } if serial == poll.serial)
    }

    /// The earliest deadline of a live poll, dropping stale entries at the front.
    pub fn next_poll_deadline(&mut self) -> Option<SimTime> {
        while let Some(p) = self.polls.front() {
            if self.is_live(p) {
                return Some(p.deadline);
            }
            self.polls.pop_front();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(n_runners: u16) -> RunnerProcess {
        RunnerProcess::new((0..n_runners).map(RunnerId).collect(), 2, 3000, SimTime(500))
    }

    #[test]
    fn offers_are_staggered_by_check_interval_over_n() {
        let p = process(2);
        assert_eq!(p.gap_ms, 1500);
        let p = process(7);
        assert_eq!(p.gap_ms, 428, "integer division, as Go divides a Duration");
    }

    #[test]
    fn skipping_lands_on_the_first_offer_at_or_after_now() {
        let mut p = process(2);
        assert_eq!(p.skip_offers_before(SimTime(500)), None, "the offer at now is not skipped");
        assert_eq!(p.skip_offers_before(SimTime(4501)), Some((3, 0, SimTime(500))));
        assert_eq!(p.feeder, Feeder::Sleeping { next_at: SimTime(5000), idx: 1 });
        assert_eq!(p.offers_to(3, 0, 0), 2);
        assert_eq!(p.offers_to(3, 0, 1), 1);
        assert_eq!(p.offers_to(4, 1, 0), 2);
    }
}
