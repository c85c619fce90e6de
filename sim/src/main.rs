//! The `sim` command line. Exit codes: 0 ok, 1 the run failed, 2 bad input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use fleetsim::input_error::InputError;
use fleetsim::plan::{Slo, plan};
use fleetsim::report::sweep_html::write_sweep_report;
use fleetsim::run::{JobWindow, RunFailure, RunOptions, run_file};
use fleetsim::sweep::grid::{Shard, parse_axis};
use fleetsim::sweep::{SweepFailure, SweepSpec, SweepTable, sweep};

/// fleetsim: how long GitLab CI jobs stay pending, and what the runner fleet costs.
#[derive(Debug, Parser)]
#[command(name = "sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Options every command that runs a scenario takes.
#[derive(Debug, Args)]
struct Common {
    /// The scenario file (scenario.toml).
    scenario: PathBuf,
    /// Root seed (overrides `[scenario] seed`).
    #[arg(long, allow_negative_numbers = true, value_parser = integer::<u64>)]
    seed: Option<u64>,
    /// Override a scenario or config.toml key, e.g. `--set concurrent=8`,
    /// `--set 'runners[0].limit=4'`, `--set gitlab.pickup=immediate`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Also report the pending time of jobs queued inside this calendar window, a 5-field
    /// cron set such as '* 9-17 * * mon-fri' (weekday office hours).
    #[arg(long)]
    window: Option<String>,
    /// Time zone of --window (IANA name; default UTC).
    #[arg(long, default_value = "")]
    window_tz: String,
}

/// Options of the commands that run a grid.
#[derive(Debug, Args)]
struct GridArgs {
    /// A key to vary: KEY=V1,V2,… or KEY=A..B (inclusive) or KEY=A..B:STEP. Repeatable; the
    /// grid is the product, the last key varying fastest.
    #[arg(long = "vary", value_name = "KEY=VALUES", required = true)]
    vary: Vec<String>,
    /// Seeds per point (the scenario's seed, +1, +2, …); percentiles are averaged and the
    /// spread of p95 is reported.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = integer::<u32>)]
    seeds: u32,
    /// Worker threads (default: all cores).
    #[arg(long, allow_negative_numbers = true, value_parser = integer::<usize>)]
    threads: Option<usize>,
    /// Output folder (default: reports/SCENARIO_NAME-sweep or -plan).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `sim trace gen` flags: each overrides the model's key of the same name.
#[derive(Debug, Args)]
struct GenArgs {
    /// Where to write the trace CSV.
    #[arg(long)]
    out: PathBuf,
    /// A TOML file with the keys of `[workload.generate]` (default: the built-in model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Root seed (the run's seed when a scenario generates the same model).
    #[arg(long, default_value_t = fleetsim::scenario::DEFAULT_SEED, allow_negative_numbers = true, value_parser = integer::<u64>)]
    seed: u64,
    /// The wall-clock instant of time 0 (RFC 3339).
    #[arg(long, default_value = fleetsim::scenario::DEFAULT_START)]
    start: String,
    /// Length in days.
    #[arg(long, allow_negative_numbers = true, value_parser = number)]
    days: Option<f64>,
    /// Stop before the pipeline that would exceed this many jobs.
    #[arg(long, allow_negative_numbers = true, value_parser = integer::<u64>)]
    max_jobs: Option<u64>,
    /// Pushes per hour on weekdays in office hours.
    #[arg(long, allow_negative_numbers = true, value_parser = number)]
    pushes_per_hour: Option<f64>,
    /// IANA time zone of the calendar.
    #[arg(long)]
    tz: Option<String>,
    /// Rate factor inside release windows.
    #[arg(long, allow_negative_numbers = true, value_parser = number)]
    release_factor: Option<f64>,
}

#[derive(Debug, Subcommand)]
enum TraceCmd {
    /// Generate a seeded trace of pipelines (the model is in the README).
    Gen(GenArgs),
    /// What is in a trace: jobs per hour of the week, script-time percentiles, pipeline
    /// sizes, and the peak concurrency with unlimited capacity.
    Stats {
        /// The trace CSV.
        trace: PathBuf,
        /// The wall-clock instant of the trace's time 0 (RFC 3339; a trace with RFC 3339
        /// times brings its own).
        #[arg(long, default_value = fleetsim::scenario::DEFAULT_START)]
        start: String,
        /// Time zone of the hours of the week (IANA name; default UTC).
        #[arg(long, default_value = "UTC")]
        tz: String,
    },
    /// Convert GitLab's jobs API JSON (`GET /projects/:id/jobs` or
    /// `/pipelines/:id/jobs`, one file per page) into a trace CSV; or, with --csv, a CSV with
    /// other column names.
    Import {
        /// The JSON files: each an array of job objects.
        #[arg(required_unless_present = "csv")]
        inputs: Vec<PathBuf>,
        /// A CSV to import instead of JSON, its columns renamed by --map.
        #[arg(long, conflicts_with = "inputs")]
        csv: Option<PathBuf>,
        /// With --csv: TRACE_COLUMN=INPUT_COLUMN pairs, comma-separated
        /// (e.g. job_id=id,created_at=queued,duration=secs).
        #[arg(long, requires = "csv", default_value = "")]
        map: String,
        /// Where to write the trace CSV.
        #[arg(long)]
        out: PathBuf,
        /// Estimate of the preparation inside GitLab's `duration` (machine boot, image pull,
        /// cache), subtracted from each job's duration (a Go duration, e.g. `30s`).
        #[arg(long, default_value = "0s", conflicts_with = "csv")]
        prepare_estimate: String,
    },
}

/// Options of `sim live SCENARIO`.
#[derive(Debug, Args)]
struct LiveArgs {
    /// The scenario file (scenario.toml).
    scenario: Option<PathBuf>,
    /// Root seed (overrides `[scenario] seed`; draws the machine creation times).
    #[arg(long, allow_negative_numbers = true, value_parser = integer::<u64>)]
    seed: Option<u64>,
    /// Override a scenario or config.toml key (as for `sim run`). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Run time per wall time: at 60 a one-hour trace takes a minute.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true, value_parser = number)]
    speed: f64,
    /// The Docker engine: unix:///path/docker.sock, tcp://host:port (default: DOCKER_HOST,
    /// else /var/run/docker.sock).
    #[arg(long)]
    docker: Option<String>,
    /// Report folder (default: reports/SCENARIO_NAME-live).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Factor on the trace's cache sizes for the cache files jobs really write.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true, value_parser = number)]
    cache_scale: f64,
    /// Job image (default: the config's [runners.docker] image); see `sim live prepare-image`.
    #[arg(long)]
    image: Option<String>,
    /// Replay only the first N jobs of the trace.
    #[arg(long, allow_negative_numbers = true, value_parser = integer::<u64>)]
    max_jobs: Option<u64>,
    /// Also run `sim run` on the same scenario and print both side by side.
    #[arg(long)]
    compare: bool,
    /// Also report the pending time of jobs queued inside this calendar window (as for
    /// `sim run`).
    #[arg(long)]
    window: Option<String>,
    /// Time zone of --window (IANA name; default UTC).
    #[arg(long, default_value = "")]
    window_tz: String,
}

#[derive(Debug, Subcommand)]
enum LiveCmd {
    /// Measure the Docker engine and the scenario's S3 cache (container create, stage and
    /// remove; archive copies; S3 latency and throughput) and write the `[calibration]`
    /// section `sim run` reads.
    Calibrate {
        /// The scenario whose engine, image and S3 cache to measure.
        scenario: PathBuf,
        /// Where to write the section (a scenario names it with `[calibration] file = …`).
        #[arg(long, default_value = "calibration.toml")]
        out: PathBuf,
        /// The Docker engine (as for `sim live`).
        #[arg(long)]
        docker: Option<String>,
        /// Job image (default: the config's [runners.docker] image).
        #[arg(long)]
        image: Option<String>,
        /// Container rounds to measure (one job's engine work each).
        #[arg(long, default_value_t = 24, value_parser = integer::<u32>)]
        rounds: u32,
        /// The most rounds side by side: the probe runs them alone, then doubling up to
        /// this, and fits the engine's contention (default: `concurrent`, at most 4).
        #[arg(long, value_parser = integer::<u32>)]
        lanes: Option<u32>,
        /// The `sim live --speed` the calibration is for (1: the real fleet).
        #[arg(long, default_value_t = 1.0, value_parser = number)]
        speed: f64,
    },
    /// Remove every container and volume any live run left (label fleetsim.run).
    Cleanup {
        /// The Docker engine (as for `sim live`).
        #[arg(long)]
        docker: Option<String>,
    },
    /// Build the minimal job image: FROM scratch plus a static busybox (no registry needed).
    PrepareImage {
        /// The Docker engine (as for `sim live`).
        #[arg(long)]
        docker: Option<String>,
        /// The static busybox binary (Debian's busybox-static).
        #[arg(long, default_value = "/bin/busybox")]
        busybox: PathBuf,
        /// The image tag.
        #[arg(long, default_value = "fleetsim/busybox:latest")]
        tag: String,
    },
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Replay a scenario against a real Docker engine and S3 server (a load test), with the
    /// same reports as `sim run`; `sim live cleanup`, `sim live prepare-image`.
    #[command(args_conflicts_with_subcommands = true)]
    Live {
        #[command(subcommand)]
        cmd: Option<LiveCmd>,
        #[command(flatten)]
        args: LiveArgs,
    },
    /// Work with traces.
    Trace {
        #[command(subcommand)]
        cmd: TraceCmd,
    },
    /// Replay a scenario's trace on a simulated clock and write its reports.
    Run {
        #[command(flatten)]
        common: Common,
        /// Report folder (default: reports/SCENARIO_NAME).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a grid of variants in parallel and write sweep.csv with the Pareto front of cost
    /// against p95 pending time.
    Sweep {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        grid: GridArgs,
        /// Run only shard I of N (1-based) and write shard-I-of-N.csv; join with `sim merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
    },
    /// Join shard files of a sweep into the sweep.csv a single run gives.
    Merge {
        /// Where to write sweep.csv.
        #[arg(long)]
        out: PathBuf,
        /// The shard-I-of-N.csv files.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
    },
    /// Find the cheapest point of a grid that meets every SLO.
    Plan {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        grid: GridArgs,
        /// A service-level objective, e.g. 'p95_pending<=60s', 'cost_per_month<=500'.
        /// Repeatable; all must hold.
        #[arg(long = "slo", required = true)]
        slos: Vec<String>,
        /// A --vary key along which cost never falls and the SLO metrics never rise: binary
        /// search along it instead of running every point.
        #[arg(long)]
        monotone: Option<String>,
    },
    /// Rewrite a docker+machine config.toml for the docker-autoscaler executor, and report
    /// every step that loses information.
    Migrate {
        /// The docker+machine config.toml.
        config: PathBuf,
        /// Where to write the new config.toml (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Jobs per instance (`capacity_per_instance`).
        #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = integer::<u32>)]
        capacity: u32,
        /// Write `preemptive_mode` on every policy; by default taskscaler's default applies
        /// (on when idle_count > 0), which matches docker+machine.
        #[arg(long, value_parser = ["on", "off"])]
        preemptive: Option<String>,
        /// The fleeting plugin.
        #[arg(long, default_value = fleetsim::migrate::DEFAULT_PLUGIN)]
        plugin: String,
        /// The instance group (AWS Auto Scaling group) name for `plugin_config.name`.
        #[arg(long, default_value = "gitlab-runner-instances")]
        group_name: String,
    },
    /// Compare two report folders (their summary.json) side by side: B − A for every
    /// numeric field both have.
    Compare {
        /// The first report folder (A).
        a: PathBuf,
        /// The second report folder (B).
        b: PathBuf,
        /// Also write a self-contained HTML page with the table and bar charts.
        #[arg(long, value_name = "FILE.html")]
        out: Option<PathBuf>,
    },
}

/// A whole-number flag: our own message for a negative or malformed value (clap takes `-1`
/// for a flag of its own without `allow_negative_numbers`).
fn integer<T: std::str::FromStr + std::fmt::Display + num_bounds::Max>(
    text: &str,
) -> Result<T, String> {
    text.trim()
        .parse::<T>()
        .map_err(|_| format!("expected an integer from 0 to {}, got {text}", T::MAX_VALUE))
}

/// A number flag (its range is checked where it is used, naming the flag).
fn number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("expected a finite number, got {text}")),
    }
}

mod num_bounds {
    /// The largest value of an unsigned integer type, for messages.
    pub trait Max {
        const MAX_VALUE: u64;
    }
    impl Max for u32 {
        const MAX_VALUE: u64 = u32::MAX as u64;
    }
    impl Max for u64 {
        const MAX_VALUE: u64 = u64::MAX;
    }
    impl Max for usize {
        const MAX_VALUE: u64 = usize::MAX as u64;
    }
}

/// Prints a command-line error and gives its exit code: a bad flag value as
/// ``error: --seeds: expected an integer from 0 to 4294967295, got -1`` (exit 2, as other
/// bad input); clap's own report for the rest (usage errors, `--help`, `--version`).
fn clap_failure(e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(e.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue)
        && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
        && let Some(why) = std::error::Error::source(&e)
    {
        let flag = arg.split([' ', '=']).next().unwrap_or(arg);
        eprintln!("error: {flag}: {}", fleetsim::redact::url_userinfo(&why.to_string()));
        return ExitCode::from(2);
    }
    let _ = e.print();
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// A failure and its exit code.
enum Failure {
    Input(InputError),
    Failed(String),
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Failure::Input(e)
    }
}

impl From<SweepFailure> for Failure {
    fn from(e: SweepFailure) -> Self {
        match e {
            SweepFailure::Input(e) => Failure::Input(e),
            SweepFailure::Failed(m) => Failure::Failed(m),
        }
    }
}

fn window(common: &Common) -> Result<Option<JobWindow>, InputError> {
    parse_window(common.window.as_deref(), &common.window_tz)
}

/// `--window` in `--window-tz`, when given.
fn parse_window(window: Option<&str>, zone: &str) -> Result<Option<JobWindow>, InputError> {
    window
        .map(|w| JobWindow::parse(w, zone).map_err(|e| InputError::file("--window", e)))
        .transpose()
}

fn sweep_spec(common: &Common, grid: &GridArgs, shard: Shard) -> Result<SweepSpec, Failure> {
    let axes = grid.vary.iter().map(|v| parse_axis(v)).collect::<Result<Vec<_>, _>>()?;
    fleetsim::sweep::grid::check_size(&axes, grid.seeds)?;
    // Read the scenario once with the first point's values, as `sim run` would: bad input
    // stops here with exit 2, and its warnings (a misspelled --vary key is an unknown key)
    // are printed once, before any point runs.
    let mut sets = common.sets.clone();
    sets.extend(axes.iter().filter_map(|a| a.values.first().map(|v| format!("{}={v}", a.key))));
    // An error in a value of the grid names `--vary` (the first point's value), not `--set`.
    let from_vary = |e: InputError| {
        let file = e.file.to_string_lossy().into_owned();
        let from_axis = file
            .strip_prefix("--set ")
            .is_some_and(|set| !common.sets.iter().any(|s| fleetsim::redact::assignment(s) == set));
        if from_axis {
            InputError { file: format!("--vary {}", &file["--set ".len()..]).into(), ..e }
        } else {
            e
        }
    };
    let first = fleetsim::scenario::Scenario::load(&common.scenario, &sets).map_err(from_vary)?;
    for w in &first.warnings {
        eprintln!("warning: {}", fleetsim::redact::url_userinfo(w));
    }
    let threads =
        grid.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(SweepSpec {
        scenario: common.scenario.clone(),
        sets: common.sets.clone(),
        axes,
        seeds: grid.seeds,
        base_seed: common.seed,
        threads,
        shard,
        window: window(common)?,
    })
}

fn default_out(scenario: &Path, suffix: &str) -> PathBuf {
    let stem = scenario
        .file_stem()
        .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    Path::new("reports").join(format!("{stem}-{suffix}"))
}

/// Writes the HTML page of a sweep or plan table.
fn write_html(path: &Path, table: &SweepTable, title: &str) -> Result<(), Failure> {
    write_sweep_report(path, table, title).map_err(|e| Failure::Failed(format!("cannot write {e}")))
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the async runtime: {e}")))
}

fn run_failure(e: RunFailure) -> Failure {
    match e {
        RunFailure::Input(e) => Failure::Input(e),
        RunFailure::Failed(m) => Failure::Failed(m),
    }
}

/// `sim live`: cleanup, prepare-image, or a live run (with `--compare`, a sim run too).
fn live(cmd: Option<LiveCmd>, args: LiveArgs) -> Result<(), Failure> {
    use fleetsim::live::{
        LiveOptions, cleanup, compare_rows, compare_table, prepare_image, run_live,
    };
    let rt = runtime()?;
    match cmd {
        Some(LiveCmd::Cleanup { docker }) => {
            let swept = rt.block_on(cleanup(docker.as_deref())).map_err(run_failure)?;
            println!("removed {} container(s) and {} volume(s)", swept.containers, swept.volumes);
            return Ok(());
        }
        Some(LiveCmd::Calibrate { scenario, out, docker, image, rounds, lanes, speed }) => {
            let opts =
                fleetsim::live_calibrate::CalibrateOptions { docker, image, rounds, lanes, speed };
            let (c, p) = rt
                .block_on(fleetsim::live_calibrate::calibrate(&scenario, &opts))
                .map_err(run_failure)?;
            std::fs::write(&out, c.to_toml()).map_err(|e| {
                Failure::Input(InputError::file(&out, format!("cannot write: {e}")))
            })?;
            let q = |l: &fleetsim_live::report::Latency| {
                let q = l.quantiles();
                format!(
                    "mean {:.1} ms, p50 {:.1}, p95 {:.1} (n {})",
                    q.mean_ms, q.p50_ms, q.p95_ms, q.count
                )
            };
            let m = p.alone();
            println!("container create  {} alone", q(&m.create));
            println!("stage             {} alone", q(&m.stage));
            println!("container remove  {} alone", q(&m.remove));
            for (lanes, m) in &p.engine {
                println!(
                    "{lanes} lane(s): a round's engine work {:.1} ms, a stage {}",
                    m.round_us() / 1e3,
                    q(&m.stage)
                );
            }
            println!("contention        {} per other job's container work beside", c.contention);
            println!(
                "archive copies    {:.1} ms + {:.1} MB/s; S3 {:.1} ms + {:.1} MB/s",
                c.archive_latency_us as f64 / 1e3,
                c.archive_bytes_per_s as f64 / 1e6,
                c.s3_latency_us as f64 / 1e3,
                c.s3_bytes_per_s as f64 / 1e6
            );
            println!(
                "wrote {} (name it in a scenario: [calibration] file = {:?})",
                out.display(),
                out.display().to_string()
            );
            return Ok(());
        }
        Some(LiveCmd::PrepareImage { docker, busybox, tag }) => {
            rt.block_on(prepare_image(docker.as_deref(), &busybox, &tag)).map_err(run_failure)?;
            println!("image {tag} ready");
            return Ok(());
        }
        None => {}
    }
    let Some(scenario) = args.scenario else {
        return Err(Failure::Input(InputError::file(
            "sim live",
            "expected a scenario file, or `calibrate`, `cleanup` or `prepare-image`",
        )));
    };
    if args.compare && args.max_jobs.is_some() {
        return Err(Failure::Input(InputError::file(
            "--compare",
            "compares whole traces; drop --max-jobs or use a shorter trace",
        )));
    }
    let opts = LiveOptions {
        seed: args.seed,
        sets: args.sets.clone(),
        out: args.out.clone(),
        speed: args.speed,
        docker: args.docker,
        cache_scale: args.cache_scale,
        image: args.image,
        max_jobs: args.max_jobs,
        window: parse_window(args.window.as_deref(), &args.window_tz)?,
    };
    // Ctrl-C (SIGINT) or SIGTERM (`kill`, `timeout`) end the run the same way: everything it
    // created is removed and the report is written. A handler that cannot be installed is
    // waited on forever rather than taken as a signal.
    let ctrl_c = async {
        let int = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = int => {}
            () = term => {}
        }
        eprintln!("interrupted: removing what the run created");
    };
    let output = rt.block_on(run_live(&scenario, &opts, ctrl_c)).map_err(run_failure)?;
    for w in &output.warnings {
        eprintln!("warning: {}", fleetsim::redact::url_userinfo(w));
    }
    print!("{}", output.summary.table());
    if let Some(l) = &output.summary.live {
        let q = |k: &str| l.latency_ms.get(k).map_or(0.0, |q| q.p50_ms);
        println!(
            "live       {} containers in {:.1} s of wall time, {} job runs failed; p50 container create {:.0} ms, \
             start {:.0} ms, remove {:.0} ms; S3 GET {} MB/s, PUT {} MB/s",
            l.containers,
            l.wall_s,
            l.failed_jobs,
            q("container_create"),
            q("container_start"),
            q("container_remove"),
            l.s3_down_mb_per_s,
            l.s3_up_mb_per_s
        );
        println!(
            "           errors: Docker {}, S3 {}, archives {} ({} refused); the model agreed on {} of {} restores",
            l.docker_errors.count,
            l.s3_errors.count,
            l.archive_errors.count,
            l.cache.refused,
            l.cache.agreed_with_model,
            l.cache.restores
        );
    }
    println!("reports    {}", output.out_dir.display());
    println!(
        "cleanup    removed {} container(s) and {} volume(s) labelled with the run",
        output.swept.containers, output.swept.volumes
    );
    if args.compare {
        let sim_opts = RunOptions {
            seed: args.seed,
            out: Some(output.out_dir.join("sim")),
            sets: args.sets,
            write_reports: true,
            window: opts.window.clone(),
        };
        let sim = run_file(&scenario, &sim_opts).map_err(run_failure)?;
        println!();
        print!("{}", compare_table(&compare_rows(&sim.summary, &output.summary, args.speed)));
        println!("sim reports {}", sim.out_dir.display());
    }
    if output.summary.live.as_ref().is_some_and(|l| l.interrupted) {
        return Err(Failure::Failed("the run was interrupted; its report covers what ran".into()));
    }
    Ok(())
}

fn run(cmd: Cmd) -> Result<(), Failure> {
    match cmd {
        Cmd::Live { cmd, args } => live(cmd, args)?,
        Cmd::Trace { cmd: TraceCmd::Stats { trace, start, tz } } => {
            let start = fleetsim::trace::record::parse_instant(&start)
                .map_err(|e| InputError::file("--start", e))?;
            let zone =
                fleetsim::periods::load_zone(&tz).map_err(|e| InputError::file("--tz", e))?;
            let reader = fleetsim::trace::TraceReader::open(&trace)?;
            let stats = fleetsim::trace::stats::trace_stats(reader, start, &zone)?;
            print!("{}", stats.text());
        }
        Cmd::Trace { cmd: TraceCmd::Gen(g) } => {
            use fleetsim::workload::generate::{GenModel, read_model_file, write_trace};
            let mut raw = g.model.as_deref().map(read_model_file).transpose()?.unwrap_or_default();
            raw.days = g.days.or(raw.days);
            raw.max_jobs = g.max_jobs.or(raw.max_jobs);
            raw.pushes_per_hour = g.pushes_per_hour.or(raw.pushes_per_hour);
            raw.timezone = g.tz.clone().or(raw.timezone);
            raw.release_factor = g.release_factor.or(raw.release_factor);
            // An error names the flag that set the value, else the model file's line.
            let mut flags = Vec::new();
            for (set, key, flag) in [
                (g.days.is_some(), "days", "--days"),
                (g.max_jobs.is_some(), "max_jobs", "--max-jobs"),
                (g.pushes_per_hour.is_some(), "pushes_per_hour", "--pushes-per-hour"),
                (g.tz.is_some(), "timezone", "--tz"),
                (g.release_factor.is_some(), "release_factor", "--release-factor"),
            ] {
                if set {
                    flags.push((key, flag));
                }
            }
            if g.release_factor.is_some() && g.pushes_per_hour.is_none() {
                // The peak-rate message names pushes_per_hour first.
                flags.push(("pushes_per_hour", "--release-factor"));
            }
            let model = GenModel::from_raw(&raw).map_err(|e| {
                let text = g.model.as_deref().map(|p| {
                    (p, fleetsim::input_file::read_text(p, "the model").unwrap_or_default())
                });
                fleetsim::workload::generate::model_error(
                    e,
                    &flags,
                    text.as_ref().map(|(p, t)| (*p, t.as_str())),
                    "sim trace gen",
                )
            })?;
            let start = fleetsim::trace::record::parse_instant(&g.start)
                .map_err(|e| InputError::file("--start", e))?;
            let cannot = |e: std::io::Error| {
                Failure::Failed(format!("cannot write {}: {e}", g.out.display()))
            };
            let file = std::fs::File::create(&g.out).map_err(cannot)?;
            let mut out = std::io::BufWriter::new(file);
            let bytes = write_trace(model, g.seed, start, &mut out).map_err(cannot)?;
            std::io::Write::flush(&mut out).map_err(cannot)?;
            eprintln!("{bytes} bytes → {}", g.out.display());
        }
        Cmd::Trace { cmd: TraceCmd::Import { csv: Some(csv), map, out, .. } } => {
            let map = fleetsim::trace::import_csv::parse_map(&map)?;
            let cannot =
                |e: std::io::Error| Failure::Failed(format!("cannot write {}: {e}", out.display()));
            let mut file = std::io::BufWriter::new(std::fs::File::create(&out).map_err(cannot)?);
            let (rows, warnings) = fleetsim::trace::import_csv::import_csv(&csv, &map, &mut file)?;
            std::io::Write::flush(&mut file).map_err(cannot)?;
            for w in warnings {
                eprintln!("warning: {}", fleetsim::redact::url_userinfo(&w));
            }
            eprintln!("{rows} rows → {}", out.display());
        }
        Cmd::Trace { cmd: TraceCmd::Import { inputs, out, prepare_estimate, .. } } => {
            let prepare_ms = fleetsim::config::parse_go_duration_ms(&prepare_estimate)
                .map_err(|e| InputError::file("--prepare-estimate", e))?;
            let (csv, report) = fleetsim::trace::import::import_jobs(&inputs, prepare_ms)?;
            std::fs::write(&out, csv)
                .map_err(|e| Failure::Failed(format!("cannot write {}: {e}", out.display())))?;
            eprintln!("{} → {}", report.text(), out.display());
        }
        Cmd::Run { common, out } => {
            let opts = RunOptions {
                seed: common.seed,
                out,
                sets: common.sets.clone(),
                write_reports: true,
                window: window(&common)?,
            };
            let output = run_file(&common.scenario, &opts).map_err(|e| match e {
                RunFailure::Input(e) => Failure::Input(e),
                RunFailure::Failed(m) => Failure::Failed(m),
            })?;
            for w in &output.warnings {
                eprintln!("warning: {}", fleetsim::redact::url_userinfo(w));
            }
            print!("{}", output.summary.table());
            println!("reports    {}", output.out_dir.display());
        }
        Cmd::Sweep { common, grid, shard } => {
            let shard = shard.as_deref().map(Shard::parse).transpose()?.unwrap_or(Shard::ALL);
            let spec = sweep_spec(&common, &grid, shard)?;
            let out = grid.out.clone().unwrap_or_else(|| default_out(&common.scenario, "sweep"));
            let (path, results) = sweep(&spec, &out, true)?;
            if shard == Shard::ALL {
                let table = SweepTable::read(&path)?;
                write_html(&path.with_file_name("sweep.html"), &table, "fleetsim sweep")?;
            }
            println!("{} points → {}", results.len(), path.display());
        }
        Cmd::Merge { out, shards } => {
            let mut table = SweepTable::merge(&shards)?;
            table.mark_pareto().map_err(Failure::Failed)?;
            std::fs::create_dir_all(&out)
                .map_err(|e| Failure::Failed(format!("cannot create {}: {e}", out.display())))?;
            let path = out.join("sweep.csv");
            table.write(&path).map_err(Failure::Failed)?;
            write_html(&out.join("sweep.html"), &table, "fleetsim sweep")?;
            println!("{} points → {}", table.rows.len(), path.display());
        }
        Cmd::Plan { common, grid, slos, monotone } => {
            let slos = slos.iter().map(|s| Slo::parse(s)).collect::<Result<Vec<_>, _>>()?;
            let spec = sweep_spec(&common, &grid, Shard::ALL)?;
            let result = plan(&spec, &slos, monotone.as_deref(), true)?;
            let out = grid.out.clone().unwrap_or_else(|| default_out(&common.scenario, "plan"));
            std::fs::create_dir_all(&out)
                .map_err(|e| Failure::Failed(format!("cannot create {}: {e}", out.display())))?;
            let mut table = SweepTable::from_results(&spec.axes, &result.evaluated);
            table.mark_pareto().map_err(Failure::Failed)?;
            table.write(&out.join("plan.csv")).map_err(Failure::Failed)?;
            write_html(&out.join("plan.html"), &table, "fleetsim plan")?;
            print!("{}", result.text(&spec.axes, &slos));
            println!("evaluated points → {}", out.join("plan.csv").display());
            if result.best.is_none() {
                return Err(Failure::Failed("no configuration meets the SLOs".into()));
            }
        }
        Cmd::Migrate { config, out, capacity, preemptive, plugin, group_name } => {
            let text = fleetsim::input_file::read_text(&config, "the file")?;
            let opts = fleetsim::migrate::MigrateOptions {
                capacity,
                preemptive: preemptive.map(|p| p == "on"),
                plugin,
                group_name,
            };
            let m = fleetsim::migrate::migrate(&text, &config, &opts)?;
            match &out {
                Some(path) => std::fs::write(path, &m.config).map_err(|e| {
                    Failure::Failed(format!("cannot write {}: {e}", path.display()))
                })?,
                None => print!("{}", m.config),
            }
            for n in &m.notes {
                eprintln!("{n}");
            }
            for (name, ty, region) in &m.instance_types {
                eprintln!(
                    "scenario: runner {name:?} ran on {} in {}; set [autoscaler] instance_type \
                     (and region) in the scenario to simulate it",
                    ty.as_deref().unwrap_or("t2.micro (docker-machine's default)"),
                    region.as_deref().unwrap_or("us-east-1 (docker-machine's default)")
                );
            }
        }
        Cmd::Compare { a, b, out } => {
            let comparison = fleetsim::compare::compare(&a, &b)?;
            print!("{}", comparison.table());
            if let Some(out) = out {
                comparison
                    .write_html(&out)
                    .map_err(|e| Failure::Failed(format!("cannot write {}: {e}", out.display())))?;
                println!("\nhtml  {}", out.display());
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_failure(e),
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // The last line of defence: whatever a message quotes, a URL's userinfo is dropped.
        Err(Failure::Input(e)) => {
            eprintln!("error: {}", fleetsim::redact::url_userinfo(&e.to_string()));
            ExitCode::from(2)
        }
        Err(Failure::Failed(msg)) => {
            eprintln!("error: {}", fleetsim::redact::url_userinfo(&msg));
            ExitCode::from(1)
        }
    }
}
