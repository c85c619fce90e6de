//! The discrete-event engine that drives a [`Fleet`] on a simulated clock.
//!
//! ## Ordering rule (a determinism contract)
//! Every future input sits in one queue keyed by `(time, seq)`, where `seq` is a global
//! insertion counter: events at the same instant run in the order they were scheduled.
//! Trace arrivals count as scheduled before the run starts, so at an instant they come
//! before events scheduled during the run. The core's own wakeup comes last at an instant:
//! it runs once every input of that instant has been handled.
//!
//! ```text
//!   trace (streamed, one job of look-ahead) ─┐
//!   event queue (time, seq) ─────────────────┼─► earliest ─► Fleet::handle ─► commands
//!   Fleet::next_wakeup() ────────────────────┘                 │ StartStep → queue StepDone
//!                                                              │             at now + duration
//!                                                              └ every command → Observer
//! ```
//!
//! The loop does no work per `check_interval` tick: it only visits instants at which an
//! input arrives or the core asked to wake up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use fleetsim_core::{Command, Fleet, Input, JobKey, JobSpec, SimTime, Step};

/// Where jobs come from: the trace reader, a generator, or a list in a test.
pub trait JobSource {
    /// The error a source can fail with (a bad trace line, say).
    type Error;
    /// The next job and the instant it becomes pending, or `None` at the end. Instants must
    /// not decrease. The fleet is passed so the source can intern tags and check that the
    /// job is servable.
    fn next_job(&mut self, fleet: &mut Fleet) -> Result<Option<(SimTime, JobSpec)>, Self::Error>;
}

/// Sees everything the run does, in order: for reports and invariant checks.
pub trait Observer {
    /// Called after the fleet handled an input at `now`, with the commands it returned;
    /// `arrival` says whether the input was a new job.
    fn after_input(&mut self, now: SimTime, fleet: &Fleet, arrival: bool, commands: &[Command]);
}

/// Why a run stopped early.
#[derive(Debug)]
pub enum RunError<E> {
    /// The job source failed.
    Source(E),
    /// Jobs remain but nothing can ever happen again.
    Stalled {
        /// When the run stalled.
        at: SimTime,
        /// Jobs still pending.
        pending: u32,
        /// Jobs still running.
        running: u32,
    },
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEnd {
    /// The instant of the last input handled.
    pub end: SimTime,
    /// Inputs handled (arrivals, step completions and wakeups).
    pub inputs: u64,
    /// Jobs read from the source.
    pub jobs: u64,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Scheduled {
    at: SimTime,
    seq: u64,
    job: JobKey,
}

/// The event queue plus the run loop.
#[derive(Debug, Default)]
pub struct Engine {
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    commands: Vec<Command>,
}

impl Engine {
    /// An empty engine.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// Runs `fleet` until the source is exhausted and every job has finished.
    pub fn run<S: JobSource, O: Observer>(
        &mut self,
        fleet: &mut Fleet,
        source: &mut S,
        observer: &mut O,
    ) -> Result<RunEnd, RunError<S::Error>> {
        let mut next_arrival = source.next_job(fleet).map_err(RunError::Source)?;
        let mut now = SimTime::ZERO;
        let mut inputs = 0u64;
        let mut jobs = 0u64;
        loop {
            let next_event = self.queue.peek().map(|Reverse(e)| e.at);
            let arrival_at = next_arrival.as_ref().map(|(t, _)| *t);
            let input_at = match (arrival_at, next_event) {
                (Some(a), Some(e)) => Some(a.min(e)),
                (a, e) => a.or(e),
            };
            let wake_at = fleet.next_wakeup();
            let mut arrival = false;
            let input_first = match (input_at, wake_at) {
                (Some(i), Some(w)) => i <= w,
                (Some(_), None) => true,
                (None, _) => false,
            };
            let input = if input_first {
                let i = input_at.expect("input exists");
                now = i;
                if arrival_at == Some(i) {
                    let (_, spec) = next_arrival.take().expect("arrival");
                    next_arrival = source.next_job(fleet).map_err(RunError::Source)?;
                    if let Some((t, _)) = &next_arrival {
                        assert!(*t >= now, "job source went back in time");
                    }
                    jobs += 1;
                    arrival = true;
                    Input::JobCreated(spec)
                } else {
                    let Reverse(e) = self.queue.pop().expect("event");
                    Input::StepDone { job: e.job, step: Step::Script }
                }
            } else if input_at.is_none() && fleet.is_idle() {
                break;
            } else if let Some(w) = wake_at {
                now = w;
                Input::Wakeup
            } else {
                return Err(RunError::Stalled {
                    at: now,
                    pending: fleet.pending(),
                    running: fleet.running(),
                });
            };
            inputs += 1;
            self.commands.clear();
            fleet.handle(now, input, &mut self.commands);
            for c in &self.commands {
                if let Command::StartStep { job, duration_ms, .. } = c {
                    self.seq += 1;
                    self.queue.push(Reverse(Scheduled {
                        at: now + *duration_ms,
                        seq: self.seq,
                        job: *job,
                    }));
                }
            }
            observer.after_input(now, fleet, arrival, &self.commands);
        }
        Ok(RunEnd { end: now, inputs, jobs })
    }
}

/// A job source over a list, for tests and benchmarks: `(created_ms, spec)` pairs in order.
#[derive(Debug, Clone)]
pub struct ListSource {
    jobs: std::vec::IntoIter<(u64, JobSpec)>,
}

impl ListSource {
    /// A source that yields `jobs` in order.
    pub fn new(jobs: Vec<(u64, JobSpec)>) -> ListSource {
        ListSource { jobs: jobs.into_iter() }
    }
}

impl JobSource for ListSource {
    type Error = std::convert::Infallible;
    fn next_job(&mut self, _: &mut Fleet) -> Result<Option<(SimTime, JobSpec)>, Self::Error> {
        Ok(self.jobs.next().map(|(t, s)| (SimTime(t), s)))
    }
}

/// An observer that keeps every finished-job record (tests and small runs).
#[derive(Debug, Default)]
pub struct CollectRecords {
    /// The records, in finishing order.
    pub records: Vec<fleetsim_core::JobRecord>,
}

impl Observer for CollectRecords {
    fn after_input(&mut self, _: SimTime, _: &Fleet, _: bool, commands: &[Command]) {
        for c in commands {
            if let Command::JobFinished(r) = c {
                self.records.push(*r);
            }
        }
    }
}
