//! Simulated EC2 behind the engine's [`Provider`] port: creation time and failures,
//! removal time, spot interruptions (an independent hazard per machine and correlated
//! reclaim events that take every spot machine of a type), and per-second billing with a
//! 60-second minimum. Every finished machine is written to `machines.csv` as it goes.
//!
//! Random streams (from the run's seed tree): `ec2.boot`, `ec2.failure`, `ec2.spot`,
//! `ec2.reclaim`.

use std::io::Write;

use fleetsim_core::{Command, Input, MachineId, MachineLife, Placement, RunnerId, SimTime, Step};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use rustc_hash::FxHashMap;

use super::ledger::MachineLedger;
pub use super::ledger::{Bill, COLUMNS, CloudTotals, EC2_PENDING_MS, bill};
use super::prices::Market;
use crate::engine::{Provider, Schedule};
use crate::seeds::SeedTree;

/// How long a machine or instance takes from creation to ready for jobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BootTime {
    /// Always this many ms.
    Fixed(u64),
    /// Log-normal with this median and 99th percentile, in ms.
    LogNormal {
        /// Median.
        median_ms: u64,
        /// 99th percentile (must be above the median).
        p99_ms: u64,
    },
}

/// z of the 99th percentile of the standard normal.
const Z99: f64 = 2.326_347_874;

impl BootTime {
    /// The docker+machine default (prices-and-timings.md, "Machine creation time"):
    /// log-normal, median 60 s, p99 4 min. `docker-machine create` waits for the EC2 boot
    /// (≈ 29 s to SSH, ec2-boot-bench 2021) and then provisions the VM over SSH (Docker
    /// install, TLS certificates): "Machine created … 43.9 s" (GitLab.com runbook log, 2017),
    /// about 1 min per VM (gitlab-runner issue 3437); GitLab Runner's creation histogram
    /// expects 30 s to ≈ 223 s (`ExponentialBuckets(30, 1.25, 10)`).
    pub const DEFAULT: BootTime = BootTime::LogNormal { median_ms: 60_000, p99_ms: 240_000 };

    /// The docker-autoscaler default (fidelity audit item 8): log-normal, median 30 s, p99
    /// 2 min. A fleeting instance comes from a launch template whose image already has
    /// Docker, so there is no provisioning: the EC2 boot to SSH (≈ 29 s median, C. Percival's
    /// ec2-boot-bench on c5.xlarge, 2021-08-12), the plugin's instance-state poll
    /// (`update_interval_when_expecting`, 2 s) and a connection. The median is sourced; the
    /// p99 is an assumption (the same 4× tail as docker+machine's).
    pub const INSTANCE_DEFAULT: BootTime =
        BootTime::LogNormal { median_ms: 30_000, p99_ms: 120_000 };

    /// Draws one creation time, in ms (live mode draws from the same stream as the sim).
    pub fn sample(self, rng: &mut ChaCha8Rng) -> u64 {
        match self {
            BootTime::Fixed(ms) => ms,
            BootTime::LogNormal { median_ms, p99_ms } => {
                let mu = (median_ms as f64).ln();
                let sigma = ((p99_ms as f64).ln() - mu) / Z99;
                let d = LogNormal::new(mu, sigma).expect("validated log-normal");
                d.sample(rng).round() as u64
            }
        }
    }
}

/// The simulated cloud's knobs (`[cloud]` in a scenario).
#[derive(Debug, Clone, PartialEq)]
pub struct CloudSpec {
    /// On-demand or spot machines.
    pub market: Market,
    /// Creation time of a docker+machine machine (`docker-machine create`: VM boot plus
    /// Docker provisioning).
    pub boot: BootTime,
    /// Creation time of a docker-autoscaler instance (fleeting plugin, prepared image: the
    /// VM boot only).
    pub instance_boot: BootTime,
    /// Probability that a creation fails.
    pub failure_probability: f64,
    /// A failed creation takes a uniform time in this range, in ms.
    pub failure_ms: (u64, u64),
    /// Time from `RemoveMachine` until the machine is gone, in ms: GitLab Runner 19.4
    /// `provider.go` `removeMachine` runs `docker-machine stop` (cut off after
    /// `machineStopCommandTimeout`, 1 min) and then `docker-machine rm`. No source gives
    /// their durations on EC2; the default 10 s is an assumption. Not billed.
    pub removal_ms: u64,
    /// Spot: probability that a machine running for a month is interrupted; `None` = the
    /// Spot Advisor band of its type and region.
    pub interruption_per_month: Option<f64>,
    /// Spot: correlated reclaim events per month per instance type, each taking every spot
    /// machine of the type at once.
    pub reclaims_per_month: f64,
}

impl Default for CloudSpec {
    fn default() -> Self {
        CloudSpec {
            market: Market::OnDemand,
            boot: BootTime::DEFAULT,
            instance_boot: BootTime::INSTANCE_DEFAULT,
            failure_probability: 0.0,
            failure_ms: (1_000, 120_000),
            removal_ms: 10_000,
            interruption_per_month: None,
            reclaims_per_month: 0.0,
        }
    }
}

/// What the machines of one `[[runners]]` entry are.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineType {
    /// EC2 instance type (`amazonec2-instance-type`).
    pub instance_type: String,
    /// Region (`amazonec2-region`).
    pub region: String,
    /// USD per hour on the scenario's market.
    pub price_per_hour: f64,
    /// Spot interruption hazard per hour (0 on demand).
    pub hazard_per_hour: f64,
    /// Jobs one machine runs at once (1 for docker+machine, `capacity_per_instance` for
    /// docker-autoscaler): a machine is fully busy when every slot runs a job.
    pub slots: u32,
    /// How long one takes to become ready: [`CloudSpec::boot`] for docker+machine,
    /// [`CloudSpec::instance_boot`] for docker-autoscaler.
    pub boot: BootTime,
}

#[derive(Debug, Clone)]
struct Alive {
    runner: RunnerId,
    created: SimTime,
    ready: Option<SimTime>,
    removal_started: Option<SimTime>,
    reason: &'static str,
    lost_at: Option<SimTime>,
    jobs: u32,
    busy_ms: u64,
}

const TOKEN_INTERRUPT: u64 = 1 << 56;
const TOKEN_RECLAIM: u64 = 2 << 56;
const TOKEN_READY: u64 = 3 << 56;
const TOKEN_FAILED: u64 = 4 << 56;
const TOKEN_MASK: u64 = (1 << 56) - 1;

const MS_PER_MONTH: f64 = 730.0 * 3_600_000.0;

/// The simulated EC2 account.
pub struct SimCloud<W: Write> {
    spec: CloudSpec,
    boot: ChaCha8Rng,
    failure: ChaCha8Rng,
    spot: ChaCha8Rng,
    reclaim: ChaCha8Rng,
    /// The machines not yet removed, by id (written in id order at the end).
    alive: FxHashMap<MachineId, Alive>,
    ledger: MachineLedger<W>,
    /// The first error writing `machines.csv`, reported by [`SimCloud::finish`].
    error: Option<std::io::Error>,
}

impl<W: Write> SimCloud<W> {
    /// A cloud for a fleet whose runners (indexed by `RunnerId`) have these machine types
    /// (`None` for runners without autoscaling), writing `machines.csv` rows to `out` (none
    /// without it).
    pub fn new(
        spec: CloudSpec,
        types: Vec<Option<MachineType>>,
        runner_names: &[String],
        seeds: SeedTree,
        out: Option<W>,
    ) -> std::io::Result<SimCloud<W>> {
        let ledger = MachineLedger::new(types, runner_names, spec.market, out)?;
        Ok(SimCloud {
            spec,
            boot: seeds.stream("ec2.boot"),
            failure: seeds.stream("ec2.failure"),
            spot: seeds.stream("ec2.spot"),
            reclaim: seeds.stream("ec2.reclaim"),
            alive: FxHashMap::default(),
            ledger,
            error: None,
        })
    }

    /// Totals so far.
    pub fn totals(&self) -> CloudTotals {
        self.ledger.totals
    }

    /// Bills and writes every machine still alive at the end of the run; returns the writer.
    pub fn finish(mut self, end: SimTime) -> std::io::Result<(Option<W>, CloudTotals)> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut ids: Vec<MachineId> = self.alive.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.retire(id, end, None)?;
        }
        self.ledger.finish()
    }

    fn machine_type(&self, runner: RunnerId) -> &MachineType {
        self.ledger.machine_type(runner).expect("a machine runner has a machine type")
    }

    /// Bills a machine for its time `running`, and writes its row. EC2 bills instance usage
    /// only in the `running` state: not `pending`, `stopping`, `stopped`, `shutting-down` or
    /// `terminated` (Amazon EC2 User Guide, "Amazon EC2 instance state changes", billing by
    /// instance state). So billing starts [`EC2_PENDING_MS`] after the creation started (at
    /// readiness if sooner), and ends when the removal starts — GitLab Runner 19.4
    /// `executors/docker/machine/provider.go` `removeMachine` runs `docker-machine stop` first
    /// (`StopInstances`: `stopping`, then `stopped`), then `rm` (terminate); a fleeting
    /// instance is terminated (`shutting-down`) — or when the cloud took it, or at `end`. The
    /// machine still counts against `limit` until its removal ends (`MachineRemoved`). A
    /// creation that failed before the instance ran is not billed; any running time is billed
    /// for at least 60 s.
    fn retire(
        &mut self,
        id: MachineId,
        end: SimTime,
        removed: Option<SimTime>,
    ) -> std::io::Result<()> {
        let a = self.alive.remove(&id).expect("alive machine");
        let life = MachineLife {
            runner: a.runner,
            created: a.created,
            ready: a.ready,
            removal_started: a.removal_started,
            removed,
            reason: a.reason,
            jobs: a.jobs,
            busy_ms: a.busy_ms,
        };
        self.ledger.retire(id, &life, a.lost_at.or(a.removal_started).unwrap_or(end))
    }

    fn schedule_reclaim(&mut self, now: SimTime, type_idx: usize, schedule: &mut Schedule<'_>) {
        let rate_per_ms = self.spec.reclaims_per_month / MS_PER_MONTH;
        let gap = Exp::new(rate_per_ms).expect("positive rate").sample(&mut self.reclaim);
        // At least 1 ms apart: reclaims at one instant would never let the clock move.
        schedule.provider(now + (gap.round() as u64).max(1), TOKEN_RECLAIM | type_idx as u64);
    }

    /// Distinct spot instance types, in runner order.
    fn spot_types(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for t in self.ledger.types().iter().flatten() {
            if !v.contains(&t.instance_type) {
                v.push(t.instance_type.clone());
            }
        }
        v
    }
}

impl<W: Write> std::fmt::Debug for SimCloud<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCloud")
            .field("spec", &self.spec)
            .field("alive", &self.alive.len())
            .finish()
    }
}

impl<W: Write> Provider for SimCloud<W> {
    fn start(&mut self, schedule: &mut Schedule<'_>) {
        if self.spec.market == Market::Spot && self.spec.reclaims_per_month > 0.0 {
            for i in 0..self.spot_types().len() {
                self.schedule_reclaim(SimTime::ZERO, i, schedule);
            }
        }
    }

    fn command(&mut self, now: SimTime, command: &Command, schedule: &mut Schedule<'_>) {
        match *command {
            Command::CreateMachine { machine, runner } => {
                let _ = self.machine_type(runner);
                self.alive.insert(
                    machine,
                    Alive {
                        runner,
                        created: now,
                        ready: None,
                        removal_started: None,
                        reason: "",
                        lost_at: None,
                        jobs: 0,
                        busy_ms: 0,
                    },
                );
                self.ledger.totals.created += 1;
                self.ledger.totals.max_alive =
                    self.ledger.totals.max_alive.max(self.alive.len() as u64);
                let p = self.spec.failure_probability;
                if p > 0.0 && self.failure.random::<f64>() < p {
                    let (lo, hi) = self.spec.failure_ms;
                    let delay = if hi > lo { self.failure.random_range(lo..=hi) } else { lo };
                    // Completions go through provider events, so a machine lost while being
                    // created never reports back.
                    schedule.provider(now + delay, TOKEN_FAILED | u64::from(machine.0));
                } else {
                    let boot = self.machine_type(runner).boot;
                    let delay = boot.sample(&mut self.boot);
                    schedule.provider(now + delay, TOKEN_READY | u64::from(machine.0));
                }
            }
            Command::RemoveMachine { machine, reason } => {
                if let Some(a) = self.alive.get_mut(&machine) {
                    a.removal_started = Some(now);
                    a.reason = reason.as_str();
                }
                schedule.input(now + self.spec.removal_ms, Input::MachineRemoved { machine });
            }
            Command::StartStep { on: Placement::Machine(m), step: Step::Script, .. } => {
                if let Some(a) = self.alive.get_mut(&m) {
                    a.jobs += 1;
                }
            }
            Command::JobFinished(r) => {
                if let Some(a) = r.machine.and_then(|m| self.alive.get_mut(&m)) {
                    // Busy from the first step (image pull) to the end of the job.
                    a.busy_ms += r.machine_busy_ms();
                }
            }
            Command::StartStep { .. } => {}
        }
    }

    fn event(
        &mut self,
        now: SimTime,
        token: u64,
        schedule: &mut Schedule<'_>,
        inputs: &mut Vec<Input>,
    ) {
        let id = token & TOKEN_MASK;
        match token & !TOKEN_MASK {
            TOKEN_READY | TOKEN_FAILED => {
                let machine = MachineId(id as u32);
                if self.alive.get(&machine).is_some_and(|a| a.lost_at.is_none()) {
                    if token & !TOKEN_MASK == TOKEN_READY {
                        inputs.push(Input::MachineReady { machine });
                    } else {
                        self.ledger.totals.creation_failed += 1;
                        inputs.push(Input::MachineFailed { machine });
                    }
                }
            }
            TOKEN_INTERRUPT => {
                let machine = MachineId(id as u32);
                if let Some(a) = self.alive.get_mut(&machine)
                    && a.lost_at.is_none()
                    && a.removal_started.is_none()
                {
                    a.lost_at = Some(now);
                    self.ledger.totals.interrupted += 1;
                    inputs.push(Input::MachineLost { machine });
                }
            }
            TOKEN_RECLAIM => {
                let types = self.spot_types();
                let name = &types[id as usize];
                let mut victims: Vec<MachineId> = self
                    .alive
                    .iter()
                    .filter(|(_, a)| a.lost_at.is_none() && a.removal_started.is_none())
                    .filter(|(_, a)| {
                        self.ledger.machine_type(a.runner).is_some_and(|t| &t.instance_type == name)
                    })
                    .map(|(&m, _)| m)
                    .collect();
                // The capacity reclaim takes them all at once; they are lost in id order.
                victims.sort_unstable();
                for machine in victims {
                    if let Some(a) = self.alive.get_mut(&machine) {
                        a.lost_at = Some(now);
                    }
                    self.ledger.totals.interrupted += 1;
                    inputs.push(Input::MachineLost { machine });
                }
                self.schedule_reclaim(now, id as usize, schedule);
            }
            _ => unreachable!("unknown provider token {token:#x}"),
        }
    }

    fn after_input(&mut self, now: SimTime, input: &Input, schedule: &mut Schedule<'_>) {
        match *input {
            Input::MachineReady { machine } => {
                let Some(a) = self.alive.get_mut(&machine) else { return };
                a.ready = Some(now);
                let hazard = self.ledger.machine_type(a.runner).map_or(0.0, |t| t.hazard_per_hour);
                if self.spec.market == Market::Spot && hazard > 0.0 {
                    let hours = Exp::new(hazard).expect("positive hazard").sample(&mut self.spot);
                    let at = now + (hours * 3_600_000.0).round() as u64;
                    schedule.provider(at, TOKEN_INTERRUPT | u64::from(machine.0));
                }
            }
            Input::MachineRemoved { machine } => {
                if let Err(e) = self.retire(machine, now, Some(now)) {
                    self.error.get_or_insert(e);
                }
            }
            _ => {}
        }
    }
}
