//! What the core is told about the fleet: runner processes, their `[[runners]]` entries, and
//! the GitLab-side facts about each runner (scope, tags) that `config.toml` does not hold.
//!
//! These are validated domain values; reading files and applying defaults happens in the
//! `fleetsim` crate. Defaults quoted here are GitLab Runner's, from
//! `reference/gitlab-runner-semantics.md` §1.1.

use crate::cache::{CacheModel, RunnerCache};
use crate::containers::ContainerCosts;
use crate::docker_machine::DockerMachineSpec;
use crate::ids::ProjectId;
use crate::taskscaler::AutoscalerSpec;

/// GitLab Runner's default `check_interval`: 3 s (`common.CheckInterval`).
pub const DEFAULT_CHECK_INTERVAL_MS: u64 = 3_000;

/// Workhorse's long-polling duration when it is turned on (`apiCiLongPollingDuration`).
pub const DEFAULT_LONG_POLL_MS: u64 = 50_000;

/// How long a job request to Rails takes by default, from the worker sending it to the
/// answer: 300 ms. An assumption, not a measured figure: no source at hand gives the
/// latency of `POST /api/v4/jobs/request`; the fidelity audit (item 3) guesses 0.2–0.6 s to
/// GitLab.com (one HTTPS round trip plus `Ci::RegisterJobService`'s queue query). Only the
/// request is on the pick-up path: GitLab Runner 19.4 sends the job's first `running`
/// update from the trace's own goroutine (`network/trace.go` `(*clientJobTrace).start` →
/// `go c.watch()`), after the greedy re-poll.
pub const DEFAULT_REQUEST_LATENCY_MS: u64 = 300;

/// How runners pick jobs up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pickup {
    /// GitLab Runner's real loop: a feeder offers each `[[runners]]` entry to an idle worker
    /// once per `check_interval`, staggered by `check_interval / N` (§1.2–1.3).
    Polling,
    /// No polling delay: a pending job starts the instant an eligible runner has a free
    /// worker and `limit` slot. Not how GitLab behaves; it exists to validate the queueing
    /// core against queueing theory and to show what polling costs.
    Immediate,
}

/// The whole fleet as the core sees it.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    /// One entry per GitLab Runner process (one host each, for the docker executor).
    pub processes: Vec<ProcessSpec>,
    /// Polling (real) or immediate pick-up.
    pub pickup: Pickup,
    /// Workhorse long polling: how long an empty job request is held, in ms; 0 = off (the
    /// default on self-managed GitLab, §1.5).
    pub long_poll_ms: u64,
    /// How long a job request that goes to Rails takes, in ms, from the worker sending it to
    /// the answer (`POST /api/v4/jobs/request` with `Ci::RegisterJobService`): the worker, the
    /// request slot, the `limit` slot and the machine or reservation are held meanwhile, and
    /// the greedy re-poll after a job starts only when the answer is in. 0 = instant (theory
    /// checks). Requests Workhorse holds are not delayed further.
    pub request_latency_ms: u64,
    /// The cache and image transfer model.
    pub cache: CacheModel,
    /// What the Docker engine takes per container operation (zero: not modelled).
    pub containers: ContainerCosts,
    /// Emit every container step, even one the model gives no time (`Sources`, `Cleanup`,
    /// `Restore` and `Save` of a cache that moves nothing): a driver that carries the steps
    /// out for real (live mode) needs each of them. Off in the simulator, where a step of no
    /// time is skipped and costs nothing.
    pub emit_every_step: bool,
    /// Skip work that provably changes nothing: feeder offers with no worker blocked and no
    /// job a runner could take, and the offer and wakeup bookkeeping after a step completion
    /// that only moves a job to its next step. Gives exactly the same job timings as offering
    /// every `check_interval / N` and recomputing after every input (tested); `false` exists
    /// for that test and for benchmarks.
    pub skip_idle_offers: bool,
}

/// One GitLab Runner process: the global section of its `config.toml`.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// A name for reports (e.g. `host-0`).
    pub name: String,
    /// `concurrent`: the size of the worker pool (≥ 1).
    pub concurrent: u32,
    /// `check_interval` in ms (already defaulted: values ≤ 0 mean 3 s).
    pub check_interval_ms: u64,
    /// The instant of the feeder's first offer. The runner process started long before the
    /// trace, so its polling phase is unknown; the simulator draws it from the seed.
    pub first_offer_ms: u64,
    /// The `[[runners]]` entries in file order.
    pub runners: Vec<RunnerSpec>,
}

/// Which jobs a runner may take, and in what order GitLab hands them out (§1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerScope {
    /// Instance (shared) runner: fair-usage order — fewest running jobs of the project on
    /// instance runners first, then lowest job id.
    Instance,
    /// Group runner: FIFO by job id.
    Group,
    /// Project runner: FIFO by job id.
    Project,
}

/// The executor of a `[[runners]]` entry that the core can simulate.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorKind {
    /// `executor = "docker"`: jobs run on the runner's own host; no capacity check in
    /// `Acquire`.
    Docker,
    /// `executor = "docker+machine"`: one job per autoscaled machine (§2).
    DockerMachine(DockerMachineSpec),
    /// `executor = "docker-autoscaler"`: taskscaler instances with
    /// `capacity_per_instance` job slots each (§3).
    DockerAutoscaler(AutoscalerSpec),
}

/// One `[[runners]]` entry with its GitLab-side registration facts.
#[derive(Debug, Clone)]
pub struct RunnerSpec {
    /// `name` from `config.toml`.
    pub name: String,
    /// The executor.
    pub executor: ExecutorKind,
    /// `limit`: maximum concurrent jobs (and in-flight requests) of this entry; 0 = unlimited.
    pub limit: u32,
    /// `request_concurrency` (≥ 1): the ceiling on simultaneous job requests.
    pub request_concurrency: u32,
    /// `FF_USE_ADAPTIVE_REQUEST_CONCURRENCY` (default true in 19.4): adapt the request cap
    /// with AIMD below `request_concurrency` (§1.4).
    pub adaptive_request_concurrency: bool,
    /// `strict_check_interval`: no greedy re-poll after a job is received.
    pub strict_check_interval: bool,
    /// Instance, group or project runner (GitLab side; not in `config.toml`).
    pub scope: RunnerScope,
    /// The projects a group or project runner serves; `None` = every project.
    pub projects: Option<Vec<ProjectId>>,
    /// The runner's tags (GitLab side).
    pub tags: Vec<String>,
    /// Whether the runner takes untagged jobs (GitLab side; GitLab's default is true for
    /// runners registered without tags).
    pub run_untagged: bool,
    /// `[runners.cache]` and the image pull policy.
    pub cache: RunnerCache,
    /// Whether `token` is set (not empty or whitespace only). GitLab Runner 19.4
    /// `commands/multi.go` `(*RunCommand).feedRunner` never feeds a runner without one
    /// (`RunnerCredentials.HasToken`): its offers pass, no worker takes it, no request goes out.
    pub has_token: bool,
}

impl RunnerSpec {
    /// An untagged instance runner with GitLab Runner's defaults for everything else.
    pub fn docker(name: impl Into<String>) -> RunnerSpec {
        RunnerSpec {
            name: name.into(),
            executor: ExecutorKind::Docker,
            limit: 0,
            request_concurrency: 1,
            adaptive_request_concurrency: true,
            strict_check_interval: false,
            scope: RunnerScope::Instance,
            projects: None,
            tags: Vec::new(),
            run_untagged: true,
            cache: RunnerCache::default(),
            has_token: true,
        }
    }
}

impl FleetSpec {
    /// One process with one untagged docker runner: the seed's single server.
    pub fn single_docker(concurrent: u32, pickup: Pickup) -> FleetSpec {
        FleetSpec {
            processes: vec![ProcessSpec {
                name: "host-0".into(),
                concurrent,
                check_interval_ms: DEFAULT_CHECK_INTERVAL_MS,
                first_offer_ms: 0,
                runners: vec![RunnerSpec::docker("runner-0")],
            }],
            pickup,
            long_poll_ms: 0,
            request_latency_ms: 0,
            cache: CacheModel::default(),
            containers: ContainerCosts::default(),
            emit_every_step: false,
            skip_idle_offers: true,
        }
    }

    /// Checks what the types cannot: at least one process, `concurrent ≥ 1`, at least one
    /// runner, at most [`MAX_RUNNERS`] runner entries in all. Returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.processes.is_empty() {
            return Err("the fleet has no runner process".into());
        }
        let mut total = 0usize;
        for p in &self.processes {
            if p.concurrent == 0 {
                return Err(format!("{}: concurrent must be at least 1", p.name));
            }
            if p.runners.is_empty() {
                return Err(format!("{}: no [[runners]] entries", p.name));
            }
            if p.check_interval_ms == 0 {
                return Err(format!("{}: check_interval must be positive", p.name));
            }
            for r in &p.runners {
                if self.pickup == Pickup::Immediate && r.executor != ExecutorKind::Docker {
                    return Err(format!(
                        "{}: immediate pick-up is a validation mode for the docker executor only",
                        r.name
                    ));
                }
                if let ExecutorKind::DockerAutoscaler(a) = &r.executor {
                    a.validate().map_err(|e| format!("{}: {e}", r.name))?;
                }
                if r.request_concurrency == 0 {
                    return Err(format!("{}: request_concurrency must be at least 1", r.name));
                }
            }
            total += p.runners.len();
        }
        if total > MAX_RUNNERS {
            return Err(format!(
                "the fleet has {total} [[runners]] entries; fleetsim supports at most {MAX_RUNNERS}"
            ));
        }
        Ok(())
    }
}

/// The most `[[runners]]` entries a fleet may have in all (runner sets are bit masks of this
/// size; a multiple of 64).
pub const MAX_RUNNERS: usize = 1024;
