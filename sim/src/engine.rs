//! The discrete-event engine that drives a [`Fleet`] on a simulated clock.
//!
//! ## Ordering rule (a determinism contract)
//! Every future event sits in one queue ([`EventQueue`], a radix heap) keyed by `(time, seq)`,
//! where `seq` is a global insertion counter: events at the same instant run in the order
//! they were scheduled.
//! Trace arrivals count as scheduled before the run starts, so at an instant they come
//! before events scheduled during the run. The core's own wakeup comes last at an instant:
//! it runs once every input of that instant has been handled.
//!
//! Jobs *released* by a finishing job (the next stage of a pipeline, a `needs` dependant) are
//! the one exception to the queue: they are handled at the same instant, right after the
//! inputs of that instant's batch, by the one input handler both drivers share
//! ([`fleetsim_core::drive::Drive::handle`], whose module documents the rule).
//!
//! ```text
//!   trace (streamed, one job of look-ahead) ─┐
//!   event queue (time, seq) ─────────────────┼─► earliest ─► Fleet::handle ─► commands
//!   Fleet::next_wakeup() ────────────────────┘                 │ StartStep → StepDone at now + duration
//!                                                              │ machine commands → Provider (simulated EC2)
//!                                                              └ every command → Observer
//! ```
//!
//! The loop does no work per `check_interval` tick: it only visits instants at which an
//! input arrives or the core asked to wake up. The run ends when the trace is exhausted and
//! no job is pending or running.

use fleetsim_core::drive::{Drive, Port};
use fleetsim_core::pipelines::Pipelines;
use fleetsim_core::{Command, Fleet, Input, JobKey, JobSpec, MachineId, SimTime, Step};

use crate::event_queue::EventQueue;

pub use fleetsim_core::drive::{JobSource, Observer};

/// Carries out machine commands: the simulated cloud (or nothing, for fleets without
/// autoscaling).
pub trait Provider {
    /// Called once before the run, to schedule background events.
    fn start(&mut self, schedule: &mut Schedule<'_>);
    /// Carries out a `CreateMachine` or `RemoveMachine` issued at `now`, scheduling its
    /// completion; sees every other command too (to count jobs per machine).
    fn command(&mut self, now: SimTime, command: &Command, schedule: &mut Schedule<'_>);
    /// A provider event scheduled with [`Schedule::provider`] fired: push the inputs it causes.
    fn event(
        &mut self,
        now: SimTime,
        token: u64,
        schedule: &mut Schedule<'_>,
        inputs: &mut Vec<Input>,
    );
    /// Called after the fleet handled an input, so the provider can react to machine events
    /// (e.g. draw a ready spot machine's interruption time).
    fn after_input(&mut self, now: SimTime, input: &Input, schedule: &mut Schedule<'_>);
}

/// A fleet without autoscaled machines: machine commands are a bug.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMachines;

impl Provider for NoMachines {
    fn start(&mut self, _: &mut Schedule<'_>) {}
    fn command(&mut self, _: SimTime, command: &Command, _: &mut Schedule<'_>) {
        assert!(
            !matches!(command, Command::CreateMachine { .. } | Command::RemoveMachine { .. }),
            "a machine command without a machine provider"
        );
    }
    fn event(&mut self, _: SimTime, _: u64, _: &mut Schedule<'_>, _: &mut Vec<Input>) {}
    fn after_input(&mut self, _: SimTime, _: &Input, _: &mut Schedule<'_>) {}
}

/// A run that goes on this long (400 days) after its last arrival is stalled: background
/// events (spot reclaims) alone must not keep a run alive that can never finish.
pub const STALL_HORIZON_MS: u64 = 400 * 24 * 3600 * 1000;

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
        /// The next thing that would have happened, when there was one (beyond the horizon).
        next: Option<SimTime>,
    },
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEnd {
    /// The instant of the last input handled.
    pub end: SimTime,
    /// Inputs handled (arrivals, step and machine completions, wakeups).
    pub inputs: u64,
    /// Jobs handed to the fleet: from the source's arrivals and released by finished
    /// predecessors (jobs a pipeline skipped are not counted).
    pub jobs: u64,
    /// Jobs of pipelines never run because a predecessor failed.
    pub skipped: u64,
}

/// What a queued event carries: kept small (16 bytes) because the heap moves it on every
/// push and pop. Arrivals never sit in the queue (the trace is read one job ahead).
#[derive(Debug, Clone, Copy)]
enum Payload {
    Step { job: JobKey, step: Step, token: u64 },
    Machine(MachineEvent, MachineId),
    Provider(u64),
}

#[derive(Debug, Clone, Copy)]
enum MachineEvent {
    Ready,
    Failed,
    Removed,
    Lost,
}

impl Payload {
    fn from_input(input: Input) -> Payload {
        match input {
            Input::StepDone { job, step, token } => Payload::Step { job, step, token },
            Input::MachineReady { machine } => Payload::Machine(MachineEvent::Ready, machine),
            Input::MachineFailed { machine } => Payload::Machine(MachineEvent::Failed, machine),
            Input::MachineRemoved { machine } => Payload::Machine(MachineEvent::Removed, machine),
            Input::MachineLost { machine } => Payload::Machine(MachineEvent::Lost, machine),
            Input::JobCreated(_) | Input::Wakeup => panic!("{input:?} is not scheduled"),
        }
    }

    fn into_input(self) -> Option<Input> {
        Some(match self {
            Payload::Step { job, step, token } => Input::StepDone { job, step, token },
            Payload::Machine(MachineEvent::Ready, machine) => Input::MachineReady { machine },
            Payload::Machine(MachineEvent::Failed, machine) => Input::MachineFailed { machine },
            Payload::Machine(MachineEvent::Removed, machine) => Input::MachineRemoved { machine },
            Payload::Machine(MachineEvent::Lost, machine) => Input::MachineLost { machine },
            Payload::Provider(_) => return None,
        })
    }
}

/// The engine's event queue, lent to a [`Provider`] to schedule future events.
#[derive(Debug)]
pub struct Schedule<'a> {
    queue: &'a mut EventQueue<Payload>,
}

impl Schedule<'_> {
    /// Schedules an input for the fleet at `at` (a step or machine completion).
    pub fn input(&mut self, at: SimTime, input: Input) {
        self.queue.push(at, Payload::from_input(input));
    }

    /// Schedules a provider event: [`Provider::event`] gets `token` back at `at`.
    pub fn provider(&mut self, at: SimTime, token: u64) {
        self.queue.push(at, Payload::Provider(token));
    }
}

/// The event queue plus the run loop.
#[derive(Debug, Default)]
pub struct Engine {
    queue: EventQueue<Payload>,
    inputs: Vec<Input>,
    drive: Drive,
}

impl Engine {
    /// An empty engine.
    pub fn new() -> Engine {
        Engine::default()
    }

    /// The run's pipelines (jobs skipped, pipelines still live).
    pub fn pipelines(&self) -> &Pipelines {
        self.drive.pipelines()
    }

    /// Runs `fleet` without a machine provider (docker executor only).
    pub fn run<S: JobSource, O: Observer>(
        &mut self,
        fleet: &mut Fleet,
        source: &mut S,
        observer: &mut O,
    ) -> Result<RunEnd, RunError<S::Error>> {
        self.run_with(fleet, source, observer, &mut NoMachines)
    }

    /// Runs `fleet` until the source is exhausted and every job has finished.
    pub fn run_with<S: JobSource, O: Observer, P: Provider>(
        &mut self,
        fleet: &mut Fleet,
        source: &mut S,
        observer: &mut O,
        provider: &mut P,
    ) -> Result<RunEnd, RunError<S::Error>> {
        provider.start(&mut Schedule { queue: &mut self.queue });
        let mut next_arrival = self.drive.next_job(fleet, source).map_err(RunError::Source)?;
        let mut now = SimTime::ZERO;
        let mut inputs = 0u64;
        let mut jobs = 0u64;
        let mut last_arrival = SimTime::ZERO;
        loop {
            if next_arrival.is_none() && fleet.is_idle() {
                break;
            }
            if now.saturating_since(last_arrival) > STALL_HORIZON_MS {
                return Err(RunError::Stalled {
                    at: now,
                    pending: fleet.pending(),
                    running: fleet.running(),
                    next: None,
                });
            }
            let next_event = self.queue.peek_at();
            let arrival_at = next_arrival.as_ref().map(|(t, _)| *t);
            let input_at = match (arrival_at, next_event) {
                (Some(a), Some(e)) => Some(a.min(e)),
                (a, e) => a.or(e),
            };
            let wake_at = fleet.next_wakeup();
            let input_first = match (input_at, wake_at) {
                (Some(i), Some(w)) => i <= w,
                (Some(_), None) => true,
                (None, _) => false,
            };
            // A jump past the horizon is a stall too, caught before the clock gets there: a
            // 3-year `check_interval` must not make the observer walk three years of minutes.
            let next_at = if input_first { input_at } else { wake_at };
            if let Some(t) = next_at
                && t.saturating_since(last_arrival) > STALL_HORIZON_MS
            {
                return Err(RunError::Stalled {
                    at: now,
                    pending: fleet.pending(),
                    running: fleet.running(),
                    next: Some(t),
                });
            }
            self.inputs.clear();
            if input_first {
                let i = input_at.expect("input exists");
                now = i;
                if arrival_at == Some(i) {
                    let (_, spec) = next_arrival.take().expect("arrival");
                    next_arrival = self.drive.next_job(fleet, source).map_err(RunError::Source)?;
                    if let Some((t, _)) = &next_arrival {
                        assert!(*t >= now, "job source went back in time");
                    }
                    self.inputs.push(Input::JobCreated(spec));
                } else {
                    let (_, payload) = self.queue.pop().expect("event");
                    match (payload, payload.into_input()) {
                        (_, Some(input)) => self.inputs.push(input),
                        (Payload::Provider(token), None) => {
                            let mut schedule = Schedule { queue: &mut self.queue };
                            provider.event(now, token, &mut schedule, &mut self.inputs);
                        }
                        (_, None) => unreachable!("only provider events carry no input"),
                    }
                }
            } else if let Some(w) = wake_at {
                now = w;
                self.inputs.push(Input::Wakeup);
            } else {
                return Err(RunError::Stalled {
                    at: now,
                    pending: fleet.pending(),
                    running: fleet.running(),
                    next: None,
                });
            }
            let mut port = SimPort { schedule: Schedule { queue: &mut self.queue }, provider };
            let handled = self.drive.handle(fleet, now, &mut self.inputs, &mut port, observer);
            inputs += handled.inputs;
            if handled.jobs > 0 {
                jobs += handled.jobs;
                last_arrival = now;
            }
        }
        Ok(RunEnd { end: now, inputs, jobs, skipped: self.drive.pipelines().skipped() })
    }
}

/// The simulated port: a step ends after its duration, machine commands go to the provider.
struct SimPort<'a, P> {
    schedule: Schedule<'a>,
    provider: &'a mut P,
}

impl<P: Provider> Port for SimPort<'_, P> {
    fn carry_out(&mut self, now: SimTime, input: &Input, commands: &mut [Command]) {
        self.provider.after_input(now, input, &mut self.schedule);
        for c in commands.iter() {
            if let Command::StartStep { job, duration_ms, step, token, .. } = c {
                let done = Input::StepDone { job: *job, step: *step, token: *token };
                self.schedule.input(now + *duration_ms, done);
            }
            self.provider.command(now, c, &mut self.schedule);
        }
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
    fn next_job(
        &mut self,
        _: &mut Fleet,
        _: &mut Pipelines,
    ) -> Result<Option<(SimTime, JobSpec)>, Self::Error> {
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
