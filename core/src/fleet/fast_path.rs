//! The fast path: no work per `check_interval` tick while nothing can change.
//!
//! Between inputs the fleet's state is constant, so the only instants that matter are the
//! feeder offers that can change something. For each process, [`Fleet::compute_wakeup`]
//! finds the first such offer:
//! - any offer, when no worker is idle (the feeder will block there);
//! - for a docker runner: an offer to it while it has a pending job it may take (or, with long
//!   polling, any offer to it: a request would be held);
//! - for a docker+machine runner: an offer to it once `Acquire` would create a machine,
//!   remove one (the exact instant a surplus idle machine passes `IdleTime`), or find the
//!   period changed, or once a job is pending and `Acquire` would let the request go out.
//!
//! Runners at `limit` or at their request cap return before `Acquire`, so their offers are
//! no-ops. The skipped offers' only effects are applied in bulk when time next moves: each
//! took the front idle worker and put it back at the end, and each that got a request slot
//! gave it back empty (the adaptive-concurrency decay), whether its job request found no job
//! or `Acquire` refused to send one.
//!
//! With `[gitlab] request_latency`, a docker runner's empty request holds its worker until
//! Rails answers. While every answer comes before the next offer (each process's offers are
//! further apart than a request takes, and no runner autoscales) the skipped offers still
//! only rotate the idle workers and decay the adaptive caps, and the one request that may
//! still be on its way when time next moves is sent for real, at its own instant. Otherwise
//! every offer counts.
//!
//! `skip_idle_offers = false` visits every offer instead, and a proptest
//! (`sim/tests/it/equivalence.rs`) checks that both give the same records.

use super::{Fleet, RunnerState};
use crate::docker_machine::{can_create_idle, can_create_on_demand};
use crate::ids::RunnerId;
use crate::queue::Queue;
use crate::runner_process::Feeder;
use crate::spec::Pickup;
use crate::time::SimTime;

impl Fleet {
    /// Moves each feeder past the offers before `now` that changed nothing, applying their
    /// effects.
    ///
    /// With request latency ([`Fleet::latency_skips`]) each skipped offer sent an empty
    /// request that held its worker (and a `limit` slot) until it was answered, before the
    /// next offer; the last one may still be on its way at `now`, and is then sent for real
    /// (at its own instant): its answer comes after this input and may find the job it
    /// brings.
    pub(super) fn skip_no_op_offers(&mut self, now: SimTime) {
        if self.pickup != Pickup::Polling {
            return;
        }
        let latency = if self.latency_skips { self.request_latency_ms } else { 0 };
        for p in 0..self.processes.len() {
            let proc = &mut self.processes[p];
            let Some((skipped, first, first_at)) = proc.skip_offers_before(now) else { continue };
            assert!(self.skip_idle_offers, "an offer was missed in tick-by-tick mode");
            let idle = proc.idle.len();
            assert!(idle > 0, "offers were skipped while the feeder should have blocked");
            let n = proc.runners.len();
            let last = (first + ((skipped - 1) % n as u64) as usize) % n;
            let last_at = first_at + (skipped - 1) * proc.gap_ms;
            let last_runner = proc.runner_at(last);
            let in_flight = latency > 0
                && last_at + latency >= now
                && self.runners[last_runner.0 as usize].spec.has_token;
            let bulk = skipped - u64::from(in_flight);
            // Each skipped offer to a runner with a token took the first idle worker and put
            // it back last (at once, or when its request came back before the next offer);
            // offers to runners without one took none (`feedRunner`).
            let untaken: u64 =
                self.tokenless[p].iter().map(|&l| proc.offers_to(bulk, first, l)).sum();
            proc.idle.rotate_left(((bulk - untaken) % idle as u64) as usize);
            self.skip_requests(p, bulk, first);
            if in_flight {
                self.send_skipped_request(p, last_runner, last_at + latency);
            }
        }
    }

    /// The requests of `bulk` skipped offers of process `p` (the first to local runner index
    /// `first`), each answered empty before the next offer.
    ///
    /// Each offer that got a request slot gave it back empty: its job request had no job
    /// (docker) or `Acquire` refused (GitLab Runner 19.4 `processRunner` then calls
    /// `releaseRequest(runner, false, false)` too), so an adaptive cap decays once per
    /// request. A decay can lower the cap to the requests held, so the check comes before
    /// each one. Only runners off the floor of 1 can change (`unsettled`).
    ///
    /// With request latency, an empty request that filled its runner's `limit` also set
    /// `limit_free_since` when it came back (`answer_requests`). That is left out: it can
    /// only matter to a job queued before it, and a job pending for the runner would have
    /// made its offers count.
    fn skip_requests(&mut self, p: usize, bulk: u64, first: usize) {
        if bulk == 0 {
            return;
        }
        let mut settled = Vec::new();
        for &id in &self.unsettled {
            let r = &mut self.runners[id.0 as usize];
            if r.process != p {
                continue;
            }
            for _ in 0..self.processes[p].offers_to(bulk, first, r.local) {
                if r.at_limit() || r.requests_full() {
                    break;
                }
                r.adaptive.after_request(false, r.spec.request_concurrency);
                if r.adaptive.at_floor() {
                    break; // further decays change nothing
                }
            }
            if r.adaptive.at_floor() {
                settled.push(id);
            }
        }
        for id in settled {
            self.unsettled.remove(&id);
        }
    }

    /// The last skipped offer of process `p`, to `runner`, whose request is still on its way:
    /// sent for real now, answered at `answer_at` (as `request` does).
    fn send_skipped_request(&mut self, p: usize, runner: RunnerId, answer_at: SimTime) {
        let w = self.processes[p].idle.pop_front().expect("an idle worker took the offer");
        let r = &mut self.runners[runner.0 as usize];
        if r.at_limit() || r.requests_full() {
            self.processes[p].idle.push_back(w); // no request: the worker is free at once
            return;
        }
        r.builds += 1;
        r.requests += 1;
        self.dirty.push(runner);
        self.processes[p].start_request(w, runner, None, answer_at);
    }

    pub(super) fn compute_wakeup(&mut self) -> Option<SimTime> {
        self.refresh_ready();
        if self.pickup != Pickup::Polling {
            return None;
        }
        let mut best: Option<SimTime> = self.next_use_retry();
        if self.has_scalers {
            let now = self.now;
            let scalers = self
                .runners
                .iter_mut()
                .filter_map(|r| r.executor.scaler_mut()?.next_event(now))
                .min();
            best = [best, scalers].into_iter().flatten().min();
        }
        // The runners whose offers can matter: the scaled runners, visited one by one, and
        // the docker runners whose offers would send a request while each request matters,
        // else those with a pending job they may take (`ready`); both searched in the
        // feeder's order (`next_offer_in_order`).
        let every_request =
            self.long_poll_ms > 0 || (self.request_latency_ms > 0 && !self.latency_skips);
        for p in 0..self.processes.len() {
            let c = &mut self.candidates[p];
            c.clear();
            c.extend_from_slice(&self.scaled[p]);
        }
        for p in 0..self.processes.len() {
            let poll = self.processes[p].next_poll_deadline();
            let answer = self.processes[p].next_answer();
            let offer = self.next_useful_offer(p, every_request);
            for t in [poll, answer, offer].into_iter().flatten() {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        }
        best
    }

    /// Brings [`Fleet::ready`] up to date for the runners whose `limit` count or pending jobs
    /// changed since the last call.
    fn refresh_ready(&mut self) {
        self.queue.take_flips(&mut self.dirty);
        for id in self.dirty.drain(..) {
            let r = &self.runners[id.0 as usize];
            let ready = !r.executor.autoscales()
                && r.spec.has_token
                && !r.at_limit()
                && self.queue.has_job_for(id);
            if ready {
                self.ready.insert(id);
            } else {
                self.ready.remove(id);
            }
        }
    }

    /// The first feeder offer of process `p` that can change anything, among the offers to
    /// the runners in `candidates[p]` (the others' offers change nothing).
    fn next_useful_offer(&mut self, p: usize, every_request: bool) -> Option<SimTime> {
        let (next_at, idx, n, gap) = match self.processes[p].feeder {
            Feeder::Blocked { .. } => return None,
            Feeder::Sleeping { next_at, idx } => {
                (next_at, idx, self.processes[p].runners.len(), self.processes[p].gap_ms)
            }
        };
        if !self.skip_idle_offers || self.processes[p].idle.is_empty() {
            return Some(next_at); // tick-by-tick, or the feeder will block there
        }
        let mut best: Option<SimTime> = None;
        let mut candidates = std::mem::take(&mut self.candidates[p]);
        if !self.next_offer_in_order(p, (next_at, idx, gap), every_request, &mut best) {
            // Not in the feeder's order: visit every runner, or every ready one.
            if every_request {
                candidates.clear();
                candidates.extend(0..n);
            } else {
                let first = self.processes[p].runners[0];
                let end = RunnerId(first.0 + n as u16);
                let ready = self.ready.range(first, end);
                candidates.extend(ready.map(|id| (id.0 - first.0) as usize));
            }
        }
        for &local in &candidates {
            let runner = self.processes[p].runners[local];
            let now = self.now;
            // A request that is held, or that takes time to answer, ties up a worker even
            // without a job: every offer that sends one matters.
            let Some(from) =
                useful_from(&mut self.runners[runner.0 as usize], &self.queue, now, every_request)
            else {
                continue;
            };
            let at = offer_from(next_at, idx, n, gap, local, from);
            best = Some(best.map_or(at, |b| b.min(at)));
        }
        self.candidates[p] = candidates;
        best
    }

    /// The first useful offer of process `p` among the runners whose offers can be taken in
    /// the feeder's order, into `best`; `false` when the next offer is in the past and they
    /// cannot. Autoscaled runners are left to the `candidates`.
    ///
    /// Those runners are the docker runners whose offers would send a request while every
    /// request matters (long polls, or request latency that the offers do not outlast), else
    /// the `ready` ones (a pending job they may take). Either way a runner's offer matters
    /// from now on, or never (at `limit`, at its request cap, or without a token:
    /// [`useful_from`]). So when the next offer is not in the past, the offers come in the
    /// feeder's order from `idx` (each within one round), and the first runner in that order
    /// whose offer matters gives the earliest one: a few steps instead of one per runner
    /// (issue 15: at 500 runners, ~8 ready ones per input; and with the default 300 ms
    /// request latency every runner on every input, 24× slower).
    fn next_offer_in_order(
        &mut self,
        p: usize,
        (next_at, idx, gap): (SimTime, usize, u64),
        every_request: bool,
        best: &mut Option<SimTime>,
    ) -> bool {
        let now = self.now;
        if next_at < now {
            return false;
        }
        // A process's runners have consecutive ids in the feeder's order (`Fleet::new`).
        let n = self.processes[p].runners.len();
        let first = self.processes[p].runners[0];
        let at_idx = RunnerId(first.0 + idx as u16);
        let end = RunnerId(first.0 + n as u16);
        // Disjoint borrows: the mask is read while a runner's state is updated.
        let (ready, runners, queue) = (&self.ready, &mut self.runners, &self.queue);
        let mut every = (0..n).map(|k| RunnerId(first.0 + ((idx + k) % n) as u16));
        let mut ready_ones = ready.range(at_idx, end).chain(ready.range(first, at_idx));
        let order: &mut dyn Iterator<Item = RunnerId> =
            if every_request { &mut every } else { &mut ready_ones };
        for id in order {
            let local = (id.0 - first.0) as usize;
            let at = next_at + ((local + n - idx) % n) as u64 * gap;
            if best.is_some_and(|b| b <= at) {
                break; // this and every later runner's offer comes after `best`
            }
            let r = &mut runners[id.0 as usize];
            if r.executor.autoscales() {
                continue;
            }
            if let Some(from) = useful_from(r, queue, now, every_request) {
                let at = offer_from(next_at, idx, n, gap, local, from);
                *best = Some(best.map_or(at, |b| b.min(at)));
                break;
            }
        }
        true
    }
}

/// The first offer of a process's feeder (next offer at `next_at` to local runner `idx`, `n`
/// runners, `gap` apart) to local runner `local` at or after `from`.
fn offer_from(
    next_at: SimTime,
    idx: usize,
    n: usize,
    gap: u64,
    local: usize,
    from: SimTime,
) -> SimTime {
    // Offers to this runner: base, base + n·gap, …
    let base = next_at + ((local + n - idx) % n) as u64 * gap;
    let period = n as u64 * gap;
    if from <= base { base } else { base + (from - base).div_ceil(period) * period }
}

/// The earliest instant from which an offer to runner `r` can change something, given that
/// nothing else changes; `None` if never.
fn useful_from(
    r: &mut RunnerState,
    queue: &Queue,
    now: SimTime,
    every_request: bool,
) -> Option<SimTime> {
    if !r.spec.has_token || r.at_limit() || r.requests_full() {
        return None; // never fed (no token), or a request would not go out
    }
    let has_job = queue.has_job_for(r.id);
    if let Some(s) = r.executor.scaler_mut() {
        // Scaling runs on its own (after every input and at the scaler's own wakeups), so an
        // offer matters only when its request would go out and could get or hold a job.
        return (s.can_reserve(now) && (has_job || every_request)).then_some(now);
    }
    let caps = if r.executor.machines().is_some() { Some(r.caps()) } else { None };
    let (Some(m), Some(caps)) = (r.executor.machines_mut(), caps) else {
        return (has_job || every_request).then_some(now);
    };
    let s = m.settings(now);
    let c = m.pool.counts();
    let request_goes_out = c.idle > 0 || (s.idle_count == 0 && can_create_on_demand(&s, &caps, &c));
    if can_create_idle(&s, &caps, &c) || (request_goes_out && (has_job || every_request)) {
        return Some(now);
    }
    let removal = m.pool.next_removal_at(now, &s, &caps);
    let period_change = m.periods.next_change_after(now);
    match (removal, period_change) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
