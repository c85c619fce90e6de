//! Hostile and mistaken input (issue 16): a fuzz suite of the project's own.
//!
//! Property-based generation of hostile inputs for every input kind (`config.toml`, scenario,
//! trace CSV, GitLab jobs JSON, generator flags, `--set`, `--vary`, `--seeds`, shard files,
//! special files) and every command that reads it (`run`, `sweep`, `plan`, `merge`,
//! `migrate`, `compare`, `trace gen/stats/import`). Each case runs the `sim` binary as a
//! subprocess under a wall-clock limit (`timeout -s KILL`), an address-space limit and a
//! file-size limit (`prlimit`), and asserts:
//!
//! - it ends by itself (no hang), with no signal (no abort, no out-of-memory kill, no
//!   SIGXFSZ) and no panic (exit 101 or "panicked");
//! - the exit code is 0, 1 (a run that failed, such as a stall, with an `error:` line) or 2
//!   with a located message (`error: FILE[:LINE[:COL]][: `KEY`]: …`);
//! - stdout, stderr and every file it wrote stay under [`MAX_OUTPUT_BYTES`];
//! - no planted secret appears in stdout, stderr or any file it wrote.
//!
//! The fast slice ([`DEFAULT_CASES`] cases per property) runs with the normal tests. The
//! whole suite: `FLEETSIM_FUZZ_CASES=64 cargo test --release -p fleetsim --test it hostile`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};

const SIM: &str = env!("CARGO_BIN_EXE_sim");

/// Cases per property in the normal test run.
const DEFAULT_CASES: u32 = 3;

/// Wall-clock limit of one command, in seconds.
const WALL_S: u64 = 20;

/// Address-space limit of one command.
const MEMORY_BYTES: u64 = 4 << 30;

/// File-size limit of one command (any single file it writes).
const FILE_BYTES: u64 = 256 << 20;

/// The most bytes one command may write in total (stdout, stderr, files).
const MAX_OUTPUT_BYTES: u64 = 64 << 20;

/// Secrets planted in the inputs; none may come out.
const SECRETS: [&str; 16] = [
    "PLANTtok3nRUNNER",
    "PLANTs3ACCESSkey",
    "PLANTs3SECRETkey",
    "PLANTs3SESSIONtok",
    "PLANTec2ACCESS",
    "PLANTec2SECRET",
    "PLANTec2SPACED",
    "PLANTexoKEY",
    "PLANTvultrKEY",
    "PLANTpacketKEY",
    "PLANTcloudstackKEY",
    "PLANTsoftlayerKEY",
    "PLANTenvSECRET",
    "PLANTurlPASS",
    "PLANTsentryDSN",
    "PLANTdoTOKEN",
];

fn cases() -> u32 {
    std::env::var("FLEETSIM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES)
}

fn config() -> Config {
    Config { cases: cases(), failure_persistence: None, ..Config::default() }
}

/// A config.toml with every kind of credential planted, and a slot for one hostile line.
fn base_config(extra_global: &str, extra_runner: &str, extra_machine: &str) -> String {
    format!(
        r#"concurrent = 4
check_interval = 3
sentry_dsn = "https://PLANTsentryDSN@sentry.example/1"
{extra_global}
[[runners]]
  name = "m"
  url = "https://user:PLANTurlPASS@gitlab.example.com"
  token = "PLANTtok3nRUNNER"
  executor = "docker+machine"
  limit = 4
  environment = ["AWS_SECRET_ACCESS_KEY=PLANTenvSECRET"]
  {extra_runner}
  [runners.docker]
    image = "alpine"
  [runners.cache]
    Type = "s3"
    Shared = true
    [runners.cache.s3]
      ServerAddress = "s3.amazonaws.com"
      AccessKey = "PLANTs3ACCESSkey"
      SecretKey = "PLANTs3SECRETkey"
      SessionToken = "PLANTs3SESSIONtok"
      BucketName = "b"
  [runners.machine]
    IdleCount = 1
    IdleTime = 600
    MachineDriver = "amazonec2"
    MachineName = "m-%s"
    MachineOptions = ["--amazonec2-access-key=PLANTec2ACCESS", "amazonec2-secret-key=PLANTec2SECRET", "amazonec2-session-token PLANTec2SPACED", "exoscale-api-key=PLANTexoKEY", "vultr-api-key=PLANTvultrKEY", "packet-api-key=PLANTpacketKEY", "cloudstack-api-key=PLANTcloudstackKEY", "softlayer-api-key=PLANTsoftlayerKEY", "digitalocean-access-token=PLANTdoTOKEN", "amazonec2-instance-type=t3.medium", "amazonec2-region=us-east-1"]
    {extra_machine}
"#
    )
}

const TRACE: &str = "job_id,created_at,duration\n1,0,60\n2,5,30\n3,70,45\n";

/// A folder with `s.toml`, `config.toml` and `trace.csv`.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new(config: &str, trace: &str, scenario_extra: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        std::fs::write(dir.path().join("trace.csv"), trace).unwrap();
        std::fs::write(
            dir.path().join("s.toml"),
            format!(
                "[scenario]\nname = \"h\"\nseed = 1\n[runner]\nconfig = \"config.toml\"\n\
                 [workload]\ntrace = \"trace.csv\"\n{scenario_extra}\n"
            ),
        )
        .unwrap();
        Case { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// Runs `sim` under the limits, then checks every property of the module documentation.
#[allow(clippy::disallowed_methods)] // the wall time of a subprocess, for the hang message
fn check(args: &[String], out_dir: &Path) -> Result<Output, TestCaseError> {
    let started = Instant::now();
    let output = Command::new("timeout")
        .args(["-s", "KILL", &WALL_S.to_string()])
        .arg("prlimit")
        .arg(format!("--as={MEMORY_BYTES}"))
        .arg(format!("--fsize={FILE_BYTES}"))
        .arg("--")
        .arg(SIM)
        .args(args)
        .current_dir(out_dir)
        .output()
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    let what = format!("sim {}", args.join(" "));
    let code = output.status.code();
    prop_assert!(code.is_some(), "{what}: killed by a signal after {took:.1} s; stderr: {err}");
    let code = code.unwrap_or_default();
    prop_assert!(code != 137 && code != 124, "{what}: hung ({took:.1} s); stderr: {err}");
    prop_assert!(code != 101 && !err.contains("panicked"), "{what}: panicked: {err}");
    prop_assert!(matches!(code, 0..=2), "{what}: exit {code}; stderr: {err}");
    if code != 0 {
        prop_assert!(err.contains("error: "), "{what}: exit {code} without an error line: {err}");
    }
    if code == 2 {
        let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_default();
        let located = line.trim_start_matches("error: ").split_once(": ").is_some_and(|(at, _)| {
            // A file path, a flag (`--set`, `--vary`), an override (`--set KEY=VALUE`) or a
            // command (`sim merge`).
            (!at.is_empty() && !at.contains(' '))
                || at.starts_with("sim ")
                || at.starts_with("--set ")
                || at.starts_with("--vary ")
        });
        prop_assert!(located, "{what}: exit 2 without a located message: {line}");
    }
    let mut total = (output.stdout.len() + output.stderr.len()) as u64;
    for secret in SECRETS {
        prop_assert!(!out.contains(secret), "{what}: {secret} on stdout: {out}");
        prop_assert!(!err.contains(secret), "{what}: {secret} on stderr: {err}");
    }
    for file in files_under(out_dir) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        if is_input(&file) {
            continue;
        }
        total += bytes.len() as u64;
        let text = String::from_utf8_lossy(&bytes);
        for secret in SECRETS {
            prop_assert!(!text.contains(secret), "{what}: {secret} in {}", file.display());
        }
    }
    prop_assert!(total <= MAX_OUTPUT_BYTES, "{what}: wrote {total} bytes");
    Ok(output)
}

/// The inputs a case wrote itself (they hold the planted secrets on purpose).
fn is_input(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    matches!(name, "s.toml" | "config.toml" | "trace.csv" | "jobs.json" | "model.toml")
        || name.starts_with("in-")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Hostile values for numeric, string and table keys.
fn hostile_value() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "0",
        "-1",
        "4294967295",
        "4294967296",
        "9223372036854775807",
        "-9223372036854775808",
        "1e308",
        "nan",
        "inf",
        "1.5",
        "true",
        "\"\"",
        "\"x\"",
        "[]",
        "[\"amazonec2-secret-key=x\"]",
        "{ a = 1 }",
        "\"9999-12-31T23:59:59Z\"",
        "\"1000000000000h\"",
        "\"-5s\"",
    ])
    .prop_map(str::to_owned)
}

/// Keys of `config.toml` to give a hostile value, with where they go.
fn config_key() -> impl Strategy<Value = (u8, String)> {
    prop::sample::select(vec![
        (0u8, "concurrent"),
        (0, "check_interval"),
        (0, "shutdown_timeout"),
        (1, "token"),
        (1, "limit"),
        (1, "request_concurrency"),
        (1, "url"),
        (1, "environment"),
        (1, "output_limit"),
        (2, "IdleCount"),
        (2, "IdleTime"),
        (2, "MaxBuilds"),
        (2, "MachineOptions"),
        (2, "MaxGrowthRate"),
        (2, "IdleScaleFactor"),
        (2, "IdleCountMin"),
    ])
    .prop_map(|(k, v)| (k, v.to_owned()))
}

fn config_with(slot: u8, line: &str) -> String {
    match slot {
        0 => base_config(line, "", ""),
        1 => base_config("", line, ""),
        _ => base_config("", "", line),
    }
}

/// A TOML line `key = value`, where a key set twice would be a syntax error: the base
/// config's own line is dropped first.
fn config_setting(slot: u8, key: &str, value: &str) -> String {
    let base = config_with(slot, &format!("{key} = {value}"));
    let mut seen = false;
    base.lines()
        .rev()
        .filter(|l| {
            let is_key = l.trim_start().starts_with(&format!("{key} ="));
            let keep = !is_key || !seen;
            seen |= is_key;
            keep
        })
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
}

fn hostile_cell() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "0",
        "-1",
        "1e308",
        "18446744073709551615",
        "18446744073709551.615",
        "1700000000",
        "1700000000000",
        "nan",
        "inf",
        "",
        "abc",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "2026-03-02T09:00:00Z",
    ])
    .prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(config())]

    /// `config.toml`: one key given a hostile value, read by `run` and `migrate`.
    #[test]
    fn config_values((slot, key) in config_key(), value in hostile_value()) {
        let case = Case::new(&config_setting(slot, &key, &value), TRACE, "");
        check(&args(&["run", &case.path("s.toml"), "--out", &case.path("out")]), case.dir.path())?;
        check(&args(&["migrate", &case.path("config.toml"), "--out", &case.path("in-migrated.toml")]), case.dir.path())?;
        // The migrated config is the user's own file (it keeps `token`, as `config.toml`
        // must), but the MachineOptions credentials it reports must not be in it.
        let migrated = std::fs::read_to_string(case.path("in-migrated.toml")).unwrap_or_default();
        for secret in ["PLANTec2ACCESS", "PLANTec2SECRET", "PLANTec2SPACED", "PLANTexoKEY", "PLANTvultrKEY"] {
            prop_assert!(!migrated.contains(secret), "{secret} in the migrated config");
        }
    }

    /// A trace with one hostile cell, read by `run` and `trace stats`.
    #[test]
    fn trace_cells(column in 0usize..3, row in 0usize..3, cell in hostile_cell()) {
        let mut rows: Vec<Vec<String>> = TRACE.lines().skip(1)
            .map(|l| l.split(',').map(str::to_owned).collect()).collect();
        rows[row][column] = cell;
        let trace = std::iter::once("job_id,created_at,duration".to_owned())
            .chain(rows.iter().map(|r| r.join(","))).collect::<Vec<_>>().join("\n") + "\n";
        let case = Case::new(&base_config("", "", ""), &trace, "");
        check(&args(&["run", &case.path("s.toml"), "--out", &case.path("out")]), case.dir.path())?;
        check(&args(&["trace", "stats", &case.path("trace.csv")]), case.dir.path())?;
    }

    /// `--set` of a credential key (any value, planted secret or hostile): the value never
    /// comes out. A URL's userinfo is a credential whatever the key.
    #[test]
    fn set_secret_keys(key in prop::sample::select(vec![
        "runners[0].token", "runners[0].cache.s3.SecretKey", "runners[0].cache.s3.AccessKey",
        "runners[0].machine.MachineOptions", "runners[0].environment", "sentry_dsn",
        "runners[0].machine.MachineOptions[0]", "runners[0].kubernetes.bearer_token",
    ]), value in prop::sample::select(vec![
        "PLANTtok3nRUNNER", "\"PLANTs3SECRETkey\"", "[\"amazonec2-secret-key=PLANTec2SECRET\"]",
        "12345", "[\"PLANTenvSECRET\"]", "{ a = \"PLANTdoTOKEN\" }",
    ]), url_key in prop::sample::select(vec!["runners[0].url", "runners[0].clone_url", "concurrent"])) {
        let case = Case::new(&base_config("", "", ""), TRACE, "");
        let set = format!("{key}={value}");
        let url = format!("{url_key}=\"https://u:PLANTurlPASS@gitlab.example.com\"");
        check(&args(&["run", &case.path("s.toml"), "--out", &case.path("out"), "--set", &set,
            "--set", &url]), case.dir.path())?;
    }

    /// `--set` of any key with a hostile value: exit 0 or 2, never a panic or a hang.
    #[test]
    fn set_overrides(key in prop::sample::select(vec![
        "concurrent", "runners[0].limit", "runners[0].machine.IdleCount", "runners[0].machine.IdleTime",
        "check_interval", "workload.start", "scenario.seed", "runner.hosts", "nosuch.key",
        "runners[0].request_concurrency", "cloud.reclaims_per_month", "runners[0]", "runners[5].limit",
    ]), value in hostile_value()) {
        let case = Case::new(&base_config("", "", ""), TRACE, "");
        let set = format!("{key}={value}");
        check(&args(&["run", &case.path("s.toml"), "--out", &case.path("out"), "--set", &set]), case.dir.path())?;
    }

    /// `--vary` and `--seeds`: secret axes, huge grids, huge seed counts; `sweep` and `plan`.
    #[test]
    fn grids(axis in prop::sample::select(vec![
        "runners[0].token=PLANTtok3nRUNNER,PLANTs3SECRETkey",
        "runners[0].cache.s3.SecretKey=PLANTs3SECRETkey",
        "concurrent=1..1000000",
        "concurrent=1..100001",
        "runners[0].limt=1,2",
        "runners[0].url=\"https://u:PLANTurlPASS@h\"",
    ]), second in prop::sample::select(vec!["", "check_interval=0..200000", "concurrent=1,2"]),
       seeds in prop::sample::select(vec!["1", "0", "4294967295", "20000"])) {
        let case = Case::new(&base_config("", "", ""), TRACE, "");
        let mut a = args(&["sweep", &case.path("s.toml"), "--out", &case.path("out"), "--threads", "1",
            "--vary", axis, "--seeds", seeds]);
        if !second.is_empty() {
            a.extend(args(&["--vary", second]));
        }
        check(&a, case.dir.path())?;
        let mut p = a.clone();
        p[0] = "plan".into();
        p.extend(args(&["--slo", "p95_pending<=60s"]));
        check(&p, case.dir.path())?;
    }

    /// Shard files with bad cells or missing shards; `merge` then `compare` on garbage.
    #[test]
    fn merges(cell in prop::sample::select(vec!["abc", "NaN", "-1", "inf", "", "1e400", "0"]),
              col in 2usize..17, second_of in 2u32..4) {
        let case = Case::new(&base_config("", "", ""), TRACE, "");
        let header = "point,concurrent,seeds,pending_p50_s,pending_p95_s,pending_p95_min_s,pending_p95_max_s,pending_p99_s,pending_mean_s,to_script_p95_s,window_pending_p95_s,cost_per_month_usd,cost_per_job_usd,machines_max,machines_created,jobs_failed,cache_hit_rate,pareto";
        let mut row: Vec<String> = "0,1,1,1,2,2,2,3,1,2,,10,0.1,1,1,0,0,".split(',').map(str::to_owned).collect();
        row[col] = cell.to_owned();
        std::fs::write(case.path("shard-1-of-2.csv"), format!("{header}\n{}\n", row.join(","))).unwrap();
        std::fs::write(case.path(&format!("shard-2-of-{second_of}.csv")),
            format!("{header}\n1,2,1,1,2,2,2,3,1,2,,10,0.1,1,1,0,0,\n")).unwrap();
        check(&args(&["merge", "--out", &case.path("out"), &case.path("shard-1-of-2.csv"),
            &case.path(&format!("shard-2-of-{second_of}.csv"))]), case.dir.path())?;
        check(&args(&["compare", &case.path("out"), &case.path("trace.csv")]), case.dir.path())?;
    }

    /// `trace gen` and `trace stats` flags at the edges.
    #[test]
    fn generator_flags(start in prop::sample::select(vec![
        "2026-03-02T00:00:00Z", "9999-12-31T23:00:00Z", "1969-12-31T00:00:00Z", "garbage"]),
        pushes in prop::sample::select(vec!["15", "1e12", "1e308", "0"]),
        release in prop::sample::select(vec!["2", "1e9", "0"]),
        days in prop::sample::select(vec!["1", "36500", "1e9", "0.01"])) {
        let case = Case::new(&base_config("", "", ""), TRACE, "");
        check(&args(&["trace", "gen", "--out", &case.path("gen.csv"), "--start", start,
            "--pushes-per-hour", pushes, "--release-factor", release, "--days", days,
            "--max-jobs", "2000"]), case.dir.path())?;
        check(&args(&["trace", "stats", &case.path("trace.csv"), "--start", start]), case.dir.path())?;
    }

    /// GitLab jobs JSON with hostile numbers and times.
    #[test]
    fn jobs_json(duration in prop::sample::select(vec!["10", "1e308", "-1", "1e15", "null"]),
                 queued in prop::sample::select(vec!["5", "1e308", "1e12", "null"]),
                 started in prop::sample::select(vec!["2026-03-02T10:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])) {
        let case = Case::new(&base_config("", "", ""), TRACE, "");
        std::fs::write(case.path("jobs.json"), format!(
            r#"[{{"id": 1, "name": "a", "stage": "test", "created_at": "2026-03-02T09:59:00Z",
                "started_at": "{started}", "finished_at": "2026-03-02T11:00:00Z",
                "duration": {duration}, "queued_duration": {queued}, "pipeline": {{"id": 7}}}}]"#)).unwrap();
        check(&args(&["trace", "import", &case.path("jobs.json"), "--out", &case.path("in-imported.csv")]), case.dir.path())?;
        if case.dir.path().join("in-imported.csv").exists() {
            std::fs::copy(case.path("in-imported.csv"), case.path("trace.csv")).unwrap();
            check(&args(&["run", &case.path("s.toml"), "--out", &case.path("out")]), case.dir.path())?;
        }
    }

    /// Scenario keys at the edges (dates near year 9999, huge seeds and hosts).
    #[test]
    fn scenario_values(extra in prop::sample::select(vec![
        "start = \"9999-12-31T00:00:00Z\"",
        "start = \"1900-01-01T00:00:00Z\"",
        "start = 5",
        "[cache]\nmodel = \"nope\"",
        "[gitlab]\npickup = \"sometimes\"",
    ])) {
        let case = Case::new(&base_config("", "", ""), TRACE, extra);
        check(&args(&["run", &case.path("s.toml"), "--out", &case.path("out"),
            "--window", "* 9-17 * * mon-fri"]), case.dir.path())?;
    }
}

/// Special files as every input: refused at once, never read without end or blocked on.
#[test]
fn special_files_are_refused() {
    let case = Case::new(&base_config("", "", ""), TRACE, "");
    let fifo = case.path("in-fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
    let mut specials = vec!["/dev/zero".to_owned(), "/dev/urandom".to_owned()];
    if made {
        specials.push(fifo);
    }
    for special in &specials {
        let scenario_with = |key: &str| {
            let text = format!(
                "[scenario]\nname = \"h\"\n[runner]\nconfig = \"{}\"\n[workload]\ntrace = \"{}\"\n",
                if key == "config" { special.as_str() } else { "config.toml" },
                if key == "trace" { special.as_str() } else { "trace.csv" },
            );
            let p = case.path(&format!("in-{key}.toml"));
            std::fs::write(&p, text).unwrap();
            p
        };
        let out = case.path("out");
        let commands: Vec<Vec<String>> = vec![
            args(&["run", special, "--out", &out]),
            args(&["run", &scenario_with("config"), "--out", &out]),
            args(&["run", &scenario_with("trace"), "--out", &out]),
            args(&["migrate", special]),
            args(&["trace", "stats", special]),
            args(&["trace", "import", special, "--out", &case.path("x.csv")]),
            args(&["trace", "import", "--csv", special, "--out", &case.path("x.csv")]),
            args(&["trace", "gen", "--model", special, "--out", &case.path("x.csv")]),
            args(&["merge", "--out", &out, special]),
            args(&["compare", special, special]),
        ];
        for a in commands {
            let o = check(&a, case.dir.path()).unwrap();
            assert_eq!(
                o.status.code(),
                Some(2),
                "sim {}: {}",
                a.join(" "),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

/// Every planted secret, every command that can surface one: `run` (summary.json,
/// report.html, stdout), `sweep` (sweep.csv, sweep.html), `plan`, `migrate` (stdout and its
/// report on stderr), type errors of secret keys.
#[test]
fn no_planted_secret_comes_out_of_any_command() {
    let case = Case::new(&base_config("", "", ""), TRACE, "");
    let dir = case.dir.path();
    let s = case.path("s.toml");
    let out = case.path("out");
    let sets = [
        "runners[0].token=PLANTtok3nRUNNER",
        "runners[0].cache.s3.SecretKey=PLANTs3SECRETkey",
        "runners[0].url=\"https://u:PLANTurlPASS@gitlab.example.com\"",
        "runners[0].machine.MachineOptions=[\"amazonec2-secret-key=PLANTec2SECRET\",\"amazonec2-instance-type=t3.medium\"]",
    ];
    let mut run = args(&["run", &s, "--out", &out]);
    for set in sets {
        run.extend(args(&["--set", set]));
    }
    let o = check(&run, dir).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = std::fs::read_to_string(case.path("out/summary.json")).unwrap();
    assert!(summary.contains("runners[0].token=[redacted]"), "{summary}");
    let sweep = args(&[
        "sweep",
        &s,
        "--out",
        &case.path("sw"),
        "--threads",
        "1",
        "--vary",
        "runners[0].token=PLANTtok3nRUNNER,PLANTs3SECRETkey",
        "--set",
        sets[1],
    ]);
    let o = check(&sweep, dir).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(case.path("sw/sweep.csv")).unwrap();
    assert!(csv.contains("[redacted]#1") && csv.contains("[redacted]#2"), "{csv}");
    // The migrated config is the user's own config.toml, token and all: written to a file
    // (stdout would carry the token, as `cat config.toml` does). Its report on stderr, and
    // the file itself, carry no MachineOptions credential.
    let migrated = case.path("in-migrated.toml");
    let o = check(&args(&["migrate", &case.path("config.toml"), "--out", &migrated]), dir).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&migrated).unwrap();
    for secret in &SECRETS[4..12] {
        assert!(!text.contains(secret), "{secret} in the migrated config");
    }
    // Wrong types under secret keys: the value is not quoted back.
    for line in
        ["MachineOptions = \"amazonec2-secret-key=PLANTec2SECRET\"", "token = 98765432109876"]
    {
        let config = config_setting(
            if line.starts_with("token") { 1 } else { 2 },
            line.split(' ').next().unwrap(),
            line.split_once("= ").unwrap().1,
        );
        let c = Case::new(&config, TRACE, "");
        let o = check(&args(&["run", &c.path("s.toml"), "--out", &c.path("out")]), c.dir.path())
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(!err.contains("98765432109876"), "{err}");
    }
}

/// Runs `sim` (under the limits of [`check`]) expecting exit 2, and returns its `error:` line.
fn error_line(a: &[String], dir: &Path) -> String {
    let o = check(a, dir).unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "sim {}: {err}", a.join(" "));
    err.lines().find(|l| l.starts_with("error: ")).unwrap_or_default().to_owned()
}

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    text[..text.find(needle).unwrap()].matches('\n').count() + 1
}

/// Issue 16 class 9: a value given with `--set` is blamed on `--set KEY=VALUE`, not on a line
/// of the edited text; other errors keep the line of the file as written.
#[test]
fn set_errors_name_the_set_argument() {
    let case = Case::new(&base_config("", "", ""), TRACE, "[gitlab]\npickup = \"sometimes\"");
    let run = |sets: &[&str]| {
        let mut a = args(&["run", &case.path("s.toml"), "--out", &case.path("out")]);
        for s in sets {
            a.extend(args(&["--set", s]));
        }
        error_line(&a, case.dir.path())
    };
    let e = run(&["runners[0].limit=abc"]);
    assert!(e.starts_with("error: --set runners[0].limit=abc: "), "{e}");
    assert!(e.contains("expected an integer"), "{e}");
    let e = run(&["concurrent=0"]);
    assert!(e.starts_with("error: --set concurrent=0: must be ≥ 1"), "{e}");
    let e = run(&["scenario.seed=-1"]);
    assert!(e.starts_with("error: --set scenario.seed=-1: expected a non-negative integer"), "{e}");
    let e = run(&["runner.hosts=abc"]);
    assert!(e.starts_with("error: --set runner.hosts=abc: "), "{e}");
    assert!(e.contains("expected an integer"), "{e}");
    let e = run(&["runners[3].limit=1"]);
    assert!(e.starts_with("error: --set runners[3].limit=1: index 3 is out of range"), "{e}");
    // A --set that adds a line before the bad key: the line is the file's own.
    let text = std::fs::read_to_string(case.path("s.toml")).unwrap();
    let e = run(&["runner.hosts=2", "scenario.description=\"x\""]);
    let line = line_of(&text, "pickup");
    assert!(e.starts_with(&format!("error: {}:{line}:", case.path("s.toml"))), "{e}");
    assert!(e.contains("`gitlab.pickup`"), "{e}");
    // A secret's value is not repeated.
    let e = run(&["runners[0].token=12345"]);
    assert!(!e.contains("12345"), "{e}");
    // A grid's value names --vary.
    let a = args(&[
        "sweep",
        &case.path("s.toml"),
        "--out",
        &case.path("sw"),
        "--vary",
        "concurrent=0,1",
    ]);
    let e = error_line(&a, case.dir.path());
    assert!(e.starts_with("error: --vary concurrent=0: must be ≥ 1"), "{e}");
}

/// Issue 16 class 9: a config written inline in a scenario (`[runner.config]`) is blamed on
/// the scenario's own lines, not on the table serialised again.
#[test]
fn inline_config_errors_name_the_scenario_line() {
    let case = Case::new(&base_config("", "", ""), TRACE, "");
    let scenario = "[scenario]\nname = \"i\"\n\n[workload]\ntrace = \"trace.csv\"\n\n[runner]\nhosts = 1\n\n\
                    [runner.config]\nconcurrent = 2\ncheck_interval = 3\n\n[[runner.config.runners]]\n\
                    name = \"r\"\nurl = \"https://gitlab.example.com\"\ntoken = \"glrt-abc\"\n\
                    executor = \"docker\"\nlimit = 1\n";
    let path = case.path("in-inline.toml");
    let out = case.path("out");
    for (bad, good, key) in [
        ("limit = \"x\"", "limit = 1", "runner.config.runners[0].limit"),
        ("limit = -3", "limit = 1", "runner.config.runners[0].limit"),
        ("executor = \"shell\"", "executor = \"docker\"", "runner.config.runners[0].executor"),
        ("concurrent = 0", "concurrent = 2", "runner.config.concurrent"),
    ] {
        let text = scenario.replace(good, bad);
        std::fs::write(&path, &text).unwrap();
        let e = error_line(&args(&["run", &path, "--out", &out]), case.dir.path());
        let line = line_of(&text, bad);
        assert!(e.starts_with(&format!("error: {path}:{line}:")), "{bad}: {e}");
        assert!(e.contains(&format!("`{key}`")), "{bad}: {e}");
    }
}

/// Issue 16 class 9: `trace gen --model` errors name the model file's line, or the flag.
#[test]
fn generator_model_errors_name_the_line_or_flag() {
    let case = Case::new(&base_config("", "", ""), TRACE, "");
    let dir = case.dir.path();
    let out = case.path("gen.csv");
    let model = case.path("model.toml");
    std::fs::write(&model, "days = 3\n\ntimezone = \"Mars/Olympus\"\n").unwrap();
    let e = error_line(&args(&["trace", "gen", "--model", &model, "--out", &out]), dir);
    assert!(e.starts_with(&format!("error: {model}:3:")), "{e}");
    std::fs::write(
        &model,
        "days = 3\n[[projects]]\nname = \"a\"\n[[projects.jobs]]\nname = \"b\"\nstage = \"s\"\nmedian = -1\n",
    )
    .unwrap();
    let e = error_line(&args(&["trace", "gen", "--model", &model, "--out", &out]), dir);
    assert!(e.starts_with(&format!("error: {model}:7:")), "{e}");
    let e = error_line(&args(&["trace", "gen", "--out", &out, "--days", "0"]), dir);
    assert!(e.starts_with("error: --days: days = 0"), "{e}");
    let e = error_line(&args(&["trace", "gen", "--out", &out, "--pushes-per-hour", "1e9"]), dir);
    assert!(e.starts_with("error: --pushes-per-hour: "), "{e}");
}

/// Issue 16 class 9: values the scenario build checks (executor, instance types, ports, the
/// creation-failure range) name their file and line; an instance type is blamed on the file
/// it was written in.
#[test]
fn build_time_errors_name_file_line_and_key() {
    // docker+machine: the type comes from MachineOptions in config.toml.
    let config = base_config("", "", "").replace("t3.medium", "z9.huge");
    let case = Case::new(&config, TRACE, "");
    let run = |case: &Case| {
        error_line(
            &args(&["run", &case.path("s.toml"), "--out", &case.path("out")]),
            case.dir.path(),
        )
    };
    let e = run(&case);
    let line = line_of(&config, "z9.huge");
    assert!(e.starts_with(&format!("error: {}:{line}:", case.path("config.toml"))), "{e}");
    assert!(e.contains("`runners[0].machine.MachineOptions[9]`"), "{e}");
    // An executor fleetsim does not simulate.
    let config = base_config("", "", "").replace("docker+machine", "shell");
    let case = Case::new(&config, TRACE, "");
    let e = run(&case);
    let line = line_of(&config, "executor = \"shell\"");
    assert!(e.starts_with(&format!("error: {}:{line}:", case.path("config.toml"))), "{e}");
    // The creation-failure range in the scenario.
    let extra = "[cloud]\ncreation_failure_min = \"10m\"\ncreation_failure_max = \"1m\"";
    let case = Case::new(&base_config("", "", ""), TRACE, extra);
    let e = run(&case);
    let text = std::fs::read_to_string(case.path("s.toml")).unwrap();
    let line = line_of(&text, "creation_failure_min");
    assert!(e.starts_with(&format!("error: {}:{line}:", case.path("s.toml"))), "{e}");
    // docker-autoscaler: the type comes from the scenario; the port from config.toml.
    let autoscaler = "concurrent = 4\n[[runners]]\n  name = \"a\"\n  url = \"https://gitlab.example.com\"\n  \
                      token = \"glrt-x\"\n  executor = \"docker-autoscaler\"\n  [runners.docker]\n    image = \"alpine\"\n  \
                      [runners.autoscaler]\n    plugin = \"aws\"\n    max_instances = 4\n    \
                      [runners.autoscaler.connector_config]\n      protocol_port = 22\n";
    let case = Case::new(autoscaler, TRACE, "[autoscaler]\ninstance_type = \"q1.mega\"");
    let e = run(&case);
    let text = std::fs::read_to_string(case.path("s.toml")).unwrap();
    let line = line_of(&text, "q1.mega");
    assert!(e.starts_with(&format!("error: {}:{line}:", case.path("s.toml"))), "{e}");
    assert!(e.contains("`autoscaler.instance_type`"), "{e}");
    let config = autoscaler.replace("protocol_port = 22", "protocol_port = -22");
    let case = Case::new(&config, TRACE, "[autoscaler]\ninstance_type = \"t3.medium\"");
    let e = run(&case);
    let line = line_of(&config, "protocol_port");
    assert!(e.starts_with(&format!("error: {}:{line}:", case.path("config.toml"))), "{e}");
}

/// Issue 16 class 9: `merge` errors name the shard file (and the line of a bad or repeated
/// point).
#[test]
fn merge_errors_name_the_shard_file() {
    let case = Case::new(&base_config("", "", ""), TRACE, "");
    let dir = case.dir.path();
    let header = "point,concurrent,seeds,pending_p50_s,pending_p95_s,pending_p95_min_s,pending_p95_max_s,pending_p99_s,pending_mean_s,to_script_p95_s,window_pending_p95_s,cost_per_month_usd,cost_per_job_usd,machines_max,machines_created,jobs_failed,cache_hit_rate,pareto";
    let row = |p: u32| format!("{p},1,1,1,2,2,2,3,1,2,,10,0.1,1,1,0,0,");
    let (a, b) = (case.path("shard-1-of-2.csv"), case.path("shard-2-of-2.csv"));
    let out = case.path("out");
    std::fs::write(&a, format!("{header}\n{}\n", row(0))).unwrap();
    std::fs::write(&b, format!("{header}\n{}\n{}\n", row(1), row(0))).unwrap();
    let e = error_line(&args(&["merge", "--out", &out, &a, &b]), dir);
    assert!(e.starts_with(&format!("error: {b}:3: `point`: point 0 appears twice")), "{e}");
    assert!(e.contains(&a), "{e}");
    let c = case.path("shard-1-of-3.csv");
    std::fs::write(&c, format!("{header}\n{}\n", row(0))).unwrap();
    let e = error_line(&args(&["merge", "--out", &out, &c]), dir);
    assert!(e.starts_with(&format!("error: {c}: ")) && e.contains("2/3, 3/3"), "{e}");
    std::fs::write(&b, format!("{header}\n{}\n", row(1).replace(",10,", ",abc,"))).unwrap();
    let e = error_line(&args(&["merge", "--out", &out, &a, &b]), dir);
    assert!(e.starts_with(&format!("error: {b}:2: `cost_per_month_usd`")), "{e}");
}

/// Issue 16 class 9: a negative number for a numeric flag is that flag's bad value (exit 2,
/// naming it), not clap's "unexpected argument '-1'".
#[test]
fn negative_numbers_for_flags_name_the_flag() {
    let case = Case::new(&base_config("", "", ""), TRACE, "");
    let dir = case.dir.path();
    let s = case.path("s.toml");
    let out = case.path("gen.csv");
    for (a, flag) in [
        (args(&["sweep", &s, "--vary", "concurrent=1,2", "--seeds", "-1"]), "--seeds"),
        (args(&["run", &s, "--seed", "-1"]), "--seed"),
        (args(&["trace", "gen", "--out", &out, "--max-jobs", "-1"]), "--max-jobs"),
        (args(&["migrate", &case.path("config.toml"), "--capacity", "-2"]), "--capacity"),
    ] {
        let e = error_line(&a, dir);
        assert!(e.starts_with(&format!("error: {flag}: expected an integer from 0 to ")), "{e}");
        assert!(e.ends_with("got -1") || e.ends_with("got -2"), "{e}");
    }
    let e = error_line(&args(&["trace", "gen", "--out", &out, "--days", "-1"]), dir);
    assert!(e.starts_with("error: --days: days = -1"), "{e}");
}

/// Issue 16 class 9: an unbalanced quote in a TOML file is reported where the quote opens
/// (the parser only notices it on a later line), in LF and CRLF files alike.
#[test]
fn an_unbalanced_quote_names_the_line_it_opens() {
    let case = Case::new(&base_config("", "", ""), TRACE, "");
    let dir = case.dir.path();
    for eol in ["\n", "\r\n"] {
        let text = ["concurrent = 1", "log_level = [\"a\", \"b]", "x = 1", ""].join(eol);
        let path = case.path("in-quote.toml");
        std::fs::write(&path, &text).unwrap();
        let e = error_line(&args(&["migrate", &path]), dir);
        assert!(e.starts_with(&format!("error: {path}:2:19: ")), "{eol:?}: {e}");
        assert!(e.contains("a string opens here and is not closed"), "{e}");
        let text = ["[scenario]", "name = '''h", "", "[runner]", ""].join(eol);
        std::fs::write(&path, &text).unwrap();
        let e = error_line(&args(&["run", &path]), dir);
        assert!(e.starts_with(&format!("error: {path}:2:8: ")), "{eol:?}: {e}");
    }
}

/// Issue 16 (loose end): an unclosed quote in a trace swallowed the rows after it into one
/// cell, and those jobs vanished with exit 0 (a 4-job trace ran as 2 jobs). Now the cell that
/// runs over a line break is refused where the quote opens, in `sim run` and `trace stats`
/// alike, in LF and CRLF files.
#[test]
fn an_unclosed_quote_in_a_trace_is_refused_where_it_opens() {
    for eol in ["\n", "\r\n"] {
        let trace = [
            "job_id,created_at,duration,image",
            "1,0,60,a",
            "2,5,30,\"b",
            "3,70,45,c",
            "4,80,10,d\"",
            "",
        ]
        .join(eol);
        let case = Case::new(&base_config("", "", ""), &trace, "");
        let dir = case.dir.path();
        let path = case.path("trace.csv");
        let out = case.path("out");
        for a in
            [args(&["run", &case.path("s.toml"), "--out", &out]), args(&["trace", "stats", &path])]
        {
            let e = error_line(&a, dir);
            assert!(
                e.contains("trace.csv:3: `image`: this cell runs over 3 lines (to line 5)"),
                "{eol:?} {a:?}: {e}"
            );
        }
    }
}

/// Issue 16 (loose end): huge delays. `check_interval` past what GitLab Runner's
/// `time.Duration` holds is refused, above an hour it draws a warning (GitLab Runner accepts
/// it); fleetsim's own delays (`poll_phase`, boot times, latencies) stop at 24 h.
#[test]
fn huge_delays_are_refused_or_warned_about() {
    let config = config_setting(0, "check_interval", "9999999999");
    let case = Case::new(&config, TRACE, "");
    let run = |case: &Case| {
        check(&args(&["run", &case.path("s.toml"), "--out", &case.path("out")]), case.dir.path())
            .unwrap()
    };
    let o = run(&case);
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{e}");
    let line = line_of(&config, "check_interval");
    assert!(
        e.contains(&format!(
            "config.toml:{line}:18: `check_interval`: must be at most 9223372036 s"
        )),
        "{e}"
    );
    let case = Case::new(&config_setting(0, "check_interval", "7200"), TRACE, "");
    let o = run(&case);
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(
        e.contains("`check_interval`: 7200 s") && e.contains("GitLab Runner accepts it"),
        "{e}"
    );
    for extra in [
        "[cloud]\nboot_time = \"1000000h\"",
        "[cloud]\nboot_time = { median = \"60s\", p99 = \"25h\" }",
        "[cache]\nlatency = \"48h\"",
    ] {
        let case = Case::new(&base_config("", "", ""), TRACE, extra);
        let o = run(&case);
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{extra}: {e}");
        let text = std::fs::read_to_string(case.path("s.toml")).unwrap();
        let key = extra.lines().nth(1).unwrap().split(' ').next().unwrap();
        let line = line_of(&text, key);
        assert!(
            e.contains(&format!("s.toml:{line}:")) && e.contains("longer than 24h"),
            "{extra}: {e}"
        );
    }
    let case = Case::new(&base_config("", "", ""), TRACE, "");
    let o = check(
        &args(&[
            "run",
            &case.path("s.toml"),
            "--out",
            &case.path("out"),
            "--set",
            "runner.poll_phase=48h",
        ]),
        case.dir.path(),
    )
    .unwrap();
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        e.starts_with("error: --set runner.poll_phase=48h: ") && e.contains("longer than 24h"),
        "{e}"
    );
}

/// A real `summary.json` (from a run of the base case), mutated: one number replaced by a
/// hostile JSON token, the file cut short, deep nesting, an empty file, a byte-order mark.
fn mutated_summary(summary: &str, kind: u8, index: usize, token: &str, cut: f64) -> String {
    match kind {
        0 => {
            // The index-th number (a run of digits after `: `) replaced by the token.
            let starts: Vec<usize> = summary
                .match_indices(": ")
                .map(|(i, _)| i + 2)
                .filter(|&i| summary[i..].starts_with(|c: char| c.is_ascii_digit() || c == '-'))
                .collect();
            let Some(&at) = starts.get(index % starts.len().max(1)) else {
                return summary.to_owned();
            };
            let end = summary[at..]
                .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '.' | 'e' | 'E' | '+')))
                .map_or(summary.len(), |n| at + n);
            format!("{}{token}{}", &summary[..at], &summary[end..])
        }
        1 => {
            let mut at = ((summary.len() as f64) * cut) as usize;
            while !summary.is_char_boundary(at) {
                at -= 1;
            }
            summary[..at].to_owned()
        }
        2 => "[".repeat(100_000),
        3 => String::new(),
        _ => format!("\u{feff}{summary}"),
    }
}

proptest! {
    #![proptest_config(config())]

    /// `sim compare` on a malformed `summary.json` (and its HTML page): exit 0 or 2 with the
    /// file named, never a panic, a hang or a huge output.
    #[test]
    fn compare_inputs(kind in 0u8..5, index in 0usize..64, cut in 0.0f64..1.0,
                      token in prop::sample::select(vec![
                          "1e308", "-1e308", "1e400", "-0", "null", "\"x\"", "[]", "{}", "NaN",
                          "18446744073709551616", "-9223372036854775809", "true",
                      ])) {
        let case = Case::new(&base_config("", "", ""), TRACE, "");
        let dir = case.dir.path();
        let o = check(&args(&["run", &case.path("s.toml"), "--out", &case.path("a")]), dir)?;
        prop_assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let summary = std::fs::read_to_string(case.path("a/summary.json")).unwrap();
        std::fs::create_dir_all(case.path("b")).unwrap();
        std::fs::write(case.path("b/summary.json"), mutated_summary(&summary, kind, index, token, cut)).unwrap();
        for (x, y) in [("a", "b"), ("b", "a"), ("b", "b")] {
            let o = check(&args(&["compare", &case.path(x), &case.path(y), "--out", &case.path("c.html")]), dir)?;
            if o.status.code() == Some(2) {
                let err = String::from_utf8_lossy(&o.stderr);
                prop_assert!(err.contains("b/summary.json"), "the file is named: {}", err);
            }
        }
    }
}
