//! The driver contract, written once: where jobs come from ([`JobSource`]), who carries out
//! the commands ([`Port`]), who watches ([`Observer`]), and the one input handler both drivers
//! call ([`Drive::handle`]).
//!
//! The simulator's engine and the live driver differ only in where inputs come from (a
//! `(time, seq)` event queue, or completions and timers on the wall clock) and in how commands
//! are carried out (scheduled completions on a simulated cloud, or containers and S3 requests).
//! Everything between an input and the next is here:
//!
//! ```text
//!   inputs at `now` ─► Fleet::handle ─► Port::carry_out ─► Pipelines::ended ─► Observer::after_input
//!        ▲                                  (completions,      (release and skip
//!        └── jobs released, same instant ◄── corrections)       pipeline jobs)
//! ```
//!
//! ## Ordering rule (a determinism contract)
//! The inputs of one call are handled in the order given. Jobs *released* by a job end (the
//! next stage of a pipeline, a `needs` dependant) are appended to that list as they are
//! released and handled at the same instant, after the inputs before them: they are a direct
//! consequence of an input, as GitLab queues the dependants when it processes the job's
//! completion, and come before any later event. Among themselves they keep pipeline order.
//!
//! Across instants, the core's own wakeup ([`Fleet::next_wakeup`]) is an input like the
//! others and comes last at its instant. A driver must never hand the fleet an input later
//! than a wakeup it has not handled yet: the fast path skips the feeder offers before an input
//! in bulk, assuming none of them could change anything, and the wakeup is the first offer
//! that can (one at which the feeder blocks, say). The simulator's event queue keeps this by
//! construction; a driver that stamps inputs with a clock uses [`Drive::handle_stamped`].

use crate::fleet::Fleet;
use crate::job::{Command, Input, JobSpec};
use crate::pipelines::Pipelines;
use crate::time::SimTime;

/// Where jobs come from: a trace reader, a generator, a list in a test.
pub trait JobSource {
    /// The error a source can fail with (a bad trace line, say).
    type Error;

    /// The next job and the instant it becomes pending, or `None` at the end. Instants must
    /// not decrease. The fleet is passed so the source can intern tags, caches and images and
    /// check that the job is servable; a source of pipelines hands each pipeline whole to
    /// `pipelines` ([`Pipelines::insert`]) and returns its jobs pending at once, one by one.
    ///
    /// # Errors
    /// Whatever the source cannot read or accept.
    fn next_job(
        &mut self,
        fleet: &mut Fleet,
        pipelines: &mut Pipelines,
    ) -> Result<Option<(SimTime, JobSpec)>, Self::Error>;
}

/// Carries out the commands of an input: the simulated cloud and step timer, or the real
/// engine and S3 server.
pub trait Port {
    /// The fleet handled `input` at `now` and returned `commands`. Start what they ask for;
    /// completions come back later as inputs. A port that observes what really happened (the
    /// live port) corrects the [`Command::JobFinished`] records here, before pipelines and
    /// observers see them.
    fn carry_out(&mut self, now: SimTime, input: &Input, commands: &mut [Command]);
}

/// Sees everything the run does, in order: for reports and invariant checks.
pub trait Observer {
    /// Called after the fleet handled an input at `now`, with the commands it returned (job
    /// records as the port corrected them); `arrival` says whether the input was a new job.
    fn after_input(&mut self, now: SimTime, fleet: &Fleet, arrival: bool, commands: &[Command]);
}

/// What one [`Drive::handle`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Handled {
    /// Inputs handled, released jobs included.
    pub inputs: u64,
    /// Jobs handed to the fleet: arrivals and released jobs.
    pub jobs: u64,
}

/// The one input handler of both drivers, with the pipelines of the run (GitLab-side state).
#[derive(Debug, Default)]
pub struct Drive {
    pipelines: Pipelines,
    commands: Vec<Command>,
    released: Vec<JobSpec>,
    /// The one-input batch of [`Drive::handle_stamped`], kept to reuse its allocation.
    stamped: Vec<Input>,
}

impl Drive {
    /// A handler with no pipelines yet.
    pub fn new() -> Drive {
        Drive::default()
    }

    /// The run's pipelines (jobs skipped, pipelines still live).
    pub fn pipelines(&self) -> &Pipelines {
        &self.pipelines
    }

    /// The next job of `source` (see [`JobSource::next_job`]).
    ///
    /// # Errors
    /// The source's.
    pub fn next_job<S: JobSource>(
        &mut self,
        fleet: &mut Fleet,
        source: &mut S,
    ) -> Result<Option<(SimTime, JobSpec)>, S::Error> {
        source.next_job(fleet, &mut self.pipelines)
    }

    /// Handles `inputs` at `now` in order, then the jobs their job ends release, at the same
    /// instant (the module's ordering rule). `inputs` is left holding everything handled.
    pub fn handle<P: Port, O: Observer>(
        &mut self,
        fleet: &mut Fleet,
        now: SimTime,
        inputs: &mut Vec<Input>,
        port: &mut P,
        observer: &mut O,
    ) -> Handled {
        let mut done = Handled::default();
        // Released jobs are appended while the list is walked, so the walk goes by index
        // until the list stops growing.
        let mut k = 0;
        while k < inputs.len() {
            let input = inputs[k];
            k += 1;
            done.inputs += 1;
            let arrival = matches!(input, Input::JobCreated(_));
            if arrival {
                done.jobs += 1;
            }
            self.commands.clear();
            fleet.handle(now, input, &mut self.commands);
            port.carry_out(now, &input, &mut self.commands);
            // Without a live pipeline no job end can release anything (the common case of a
            // flat trace): the records are not even looked at.
            if self.pipelines.live() > 0 {
                for c in &mut self.commands {
                    if let Command::JobFinished(r) = c {
                        self.pipelines.ended(r, &mut self.released);
                    }
                }
                if !self.released.is_empty() {
                    inputs.extend(self.released.drain(..).map(Input::JobCreated));
                }
            }
            observer.after_input(now, fleet, arrival, &self.commands);
        }
        done
    }

    /// Handles `inputs` stamped with the instants a clock gave them (sorted by instant),
    /// merged with the fleet's wakeups by the ordering rule: a wakeup due before an input's
    /// instant is handled first, at its own instant; at one instant the inputs come first.
    /// Then every wakeup due by `until`. Nothing is handled before `last` (the instant of the
    /// previous input, updated here): a completion that arrives late is handled at `last`.
    pub fn handle_stamped<P: Port, O: Observer>(
        &mut self,
        fleet: &mut Fleet,
        inputs: impl IntoIterator<Item = (SimTime, Input)>,
        until: SimTime,
        last: &mut SimTime,
        port: &mut P,
        observer: &mut O,
    ) -> Handled {
        let mut done = Handled::default();
        let mut woken: Option<SimTime> = None;
        // The wakeups due before the input's instant (or by `until`, after the last input),
        // then the input. A handled wakeup never asks for its own instant again; the check
        // stops a loop if one did.
        for next in inputs.into_iter().map(Some).chain(std::iter::once(None)) {
            let (limit, inclusive) = match next {
                Some((t, _)) => (t.max(*last), false),
                None => (until, true),
            };
            while let Some(w) = fleet.next_wakeup()
                && (w < limit || (inclusive && w == limit))
                && woken.is_none_or(|prev| w > prev)
            {
                woken = Some(w);
                self.handle_one(fleet, w, Input::Wakeup, last, port, observer, &mut done);
            }
            if let Some((t, input)) = next {
                self.handle_one(fleet, t, input, last, port, observer, &mut done);
            }
        }
        done
    }

    /// One input of [`Drive::handle_stamped`], at `at` or `last` if later.
    #[allow(clippy::too_many_arguments)]
    fn handle_one<P: Port, O: Observer>(
        &mut self,
        fleet: &mut Fleet,
        at: SimTime,
        input: Input,
        last: &mut SimTime,
        port: &mut P,
        observer: &mut O,
        done: &mut Handled,
    ) {
        *last = at.max(*last);
        // `handle` borrows the drive and the batch apart: the batch is lent out and back.
        let mut batch = std::mem::take(&mut self.stamped);
        batch.clear();
        batch.push(input);
        let h = self.handle(fleet, *last, &mut batch, port, observer);
        self.stamped = batch;
        done.inputs += h.inputs;
        done.jobs += h.jobs;
    }
}
