//! The machine ledger: one bill and one `machines.csv` row per machine, the same rule for the
//! simulated cloud and for live mode, so that a live run and a simulated run of one fleet bill
//! one machine alike (slots counted).

use std::io::Write;

use fleetsim_core::{MachineId, MachineLife, RunnerId, SimTime};

use super::ec2::MachineType;
use super::prices::{self, Market};
use crate::report::csv_line::{CsvLine, escape, write_header};

/// Totals over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CloudTotals {
    /// Machines whose creation started.
    pub created: u64,
    /// Creations that failed.
    pub creation_failed: u64,
    /// Machines the cloud took (spot interruptions and reclaims).
    pub interrupted: u64,
    /// Most machines alive at once (any state).
    pub max_alive: u64,
    /// Money for all machines.
    pub cost_usd: f64,
    /// Money for machine time not spent running a job.
    pub idle_cost_usd: f64,
    /// Billed machine-seconds.
    pub billed_s: u64,
}

/// How long a new instance is `pending` (not billed) before it is `running`: RunInstances
/// 1.5 s plus pending→running 4.9 s, the median of C. Percival's ec2-boot-bench
/// (prices-and-timings.md). Billing starts then, or when the machine is ready if sooner.
pub const EC2_PENDING_MS: u64 = 6_400;

/// What one machine costs: EC2's billing of the `running` state (see `Ec2::retire`), shared by
/// the simulated cloud and live mode so that both bill the same machine the same way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bill {
    /// USD for the machine's running time (per second, 60 s minimum; 0 if it never ran).
    pub cost: f64,
    /// Seconds billed.
    pub billed_s: u64,
    /// Share of the billed slot-time that ran jobs (1 when nothing was billed).
    pub busy_share: f64,
}

/// Bills a machine of type `t` created at `created`, ready at `ready`, whose `running` state
/// ended at `stop` (removal started, lost, or the run's end), that ran jobs for `busy_ms`
/// slot-milliseconds. Billing starts [`EC2_PENDING_MS`] after the creation started (at
/// readiness if sooner); a multi-slot instance is fully busy only when every slot runs a job.
pub fn bill(
    t: &MachineType,
    created: SimTime,
    ready: Option<SimTime>,
    stop: SimTime,
    busy_ms: u64,
) -> Bill {
    let pending_end = created + EC2_PENDING_MS;
    let running_from = ready.map_or(pending_end, |r| r.min(pending_end));
    let run_ms = stop.saturating_since(running_from);
    let (cost, billed_s) = if run_ms == 0 {
        (0.0, 0)
    } else {
        (prices::billed_usd(t.price_per_hour, run_ms), run_ms.div_ceil(1000).max(60))
    };
    let slot_ms = billed_s * 1000 * u64::from(t.slots.max(1));
    let busy_share = if slot_ms == 0 { 1.0 } else { (busy_ms as f64 / slot_ms as f64).min(1.0) };
    Bill { cost, billed_s, busy_share }
}

/// The columns of `machines.csv`.
pub const COLUMNS: [&str; 14] = [
    "machine_id",
    "runner",
    "instance_type",
    "region",
    "market",
    "created_at",
    "ready_at",
    "removal_started_at",
    "removed_at",
    "removal_reason",
    "jobs",
    "busy_s",
    "billed_s",
    "cost_usd",
];

/// Bills machines and writes their `machines.csv` rows as they go.
pub struct MachineLedger<W: Write> {
    types: Vec<Option<MachineType>>,
    runner_names: Vec<Vec<u8>>,
    market: &'static str,
    /// `None`: the run writes no files (a sweep point); machines are billed, no row is made.
    out: Option<W>,
    line: CsvLine,
    /// Totals so far: the ledger adds the money, the cloud its counts.
    pub totals: CloudTotals,
}

impl<W: Write> MachineLedger<W> {
    /// A ledger for a fleet whose runners (indexed by `RunnerId`) have these machine types
    /// (`None` for runners without autoscaling), on `market`, writing rows to `out` after the
    /// header (no rows without `out`).
    pub fn new(
        types: Vec<Option<MachineType>>,
        runner_names: &[String],
        market: Market,
        mut out: Option<W>,
    ) -> std::io::Result<MachineLedger<W>> {
        if let Some(out) = &mut out {
            write_header(out, &COLUMNS)?;
        }
        let market = match market {
            Market::OnDemand => "on-demand",
            Market::Spot => "spot",
        };
        Ok(MachineLedger {
            types,
            runner_names: runner_names.iter().map(|n| escape(n)).collect(),
            market,
            out,
            line: CsvLine::default(),
            totals: CloudTotals::default(),
        })
    }

    /// The machine type of `runner`'s machines, if it autoscales.
    pub fn machine_type(&self, runner: RunnerId) -> Option<&MachineType> {
        self.types.get(runner.0 as usize).and_then(Option::as_ref)
    }

    /// Every runner's machine type (`None` for runners without autoscaling).
    pub fn types(&self) -> &[Option<MachineType>] {
        &self.types
    }

    /// Bills machine `id` for its time `running`, which ended at `stop` (its removal started,
    /// the cloud took it, or the run ended; [`bill`]), and writes its row. A machine of a
    /// runner without a machine type costs nothing.
    pub fn retire(&mut self, id: MachineId, m: &MachineLife, stop: SimTime) -> std::io::Result<()> {
        let t = self.types.get(m.runner.0 as usize).and_then(Option::as_ref);
        let Bill { cost, billed_s, busy_share } = match t {
            Some(t) => bill(t, m.created, m.ready, stop, m.busy_ms),
            None => Bill { cost: 0.0, billed_s: 0, busy_share: 1.0 },
        };
        self.totals.cost_usd += cost;
        self.totals.idle_cost_usd += cost * (1.0 - busy_share);
        self.totals.billed_s += billed_s;
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        let line = &mut self.line;
        line.clear();
        line.u64(u64::from(id.0));
        line.escaped(self.runner_names.get(m.runner.0 as usize).map_or(b"", Vec::as_slice));
        line.escaped(&escape(t.map_or("", |t| t.instance_type.as_str())));
        line.escaped(&escape(t.map_or("", |t| t.region.as_str())));
        line.escaped(self.market.as_bytes());
        line.milli(m.created.as_ms());
        for at in [m.ready, m.removal_started, m.removed] {
            match at {
                Some(t) => line.milli(t.as_ms()),
                None => line.escaped(b""),
            };
        }
        line.escaped(&escape(m.reason)).u64(u64::from(m.jobs)).milli(m.busy_ms).u64(billed_s);
        line.escaped(format!("{cost:.6}").as_bytes());
        line.write_to(out)
    }

    /// Flushes the rows; returns the writer and the totals.
    pub fn finish(mut self) -> std::io::Result<(Option<W>, CloudTotals)> {
        if let Some(out) = &mut self.out {
            out.flush()?;
        }
        Ok((self.out, self.totals))
    }
}
