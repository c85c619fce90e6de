//! Pipelines: stage and `needs` release timing worked by hand, skipped dependants of a failed
//! job, and the errors of a bad DAG (through the library and through `sim run`, exit 2).

use fleetsim::engine::{CollectRecords, Engine};
use fleetsim::trace::TraceReader;
use fleetsim::trace::source::{CacheKeys, TraceSource};
use fleetsim_core::spec::{FleetSpec, Pickup, RunnerSpec};
use fleetsim_core::{Fleet, JobRecord};

use crate::common::{fixed_cloud, machine_runner, one_process, t2_medium_cloud};

/// A fleet of `concurrent` docker workers that take jobs the instant they are pending.
fn immediate(concurrent: u32) -> FleetSpec {
    let mut spec = one_process(concurrent, 3_000, 0, vec![RunnerSpec::docker("r")]);
    spec.pickup = Pickup::Immediate;
    spec
}

/// Runs `trace` on `spec` without machines; records by job id, and jobs skipped.
fn run_trace(spec: FleetSpec, trace: &str) -> (Vec<JobRecord>, u64) {
    let mut fleet = Fleet::new(spec);
    let reader = TraceReader::from_reader(trace.as_bytes(), "trace.csv").unwrap();
    let mut source = TraceSource::new(reader, CacheKeys::default());
    let mut records = CollectRecords::default();
    let mut engine = Engine::new();
    engine.run(&mut fleet, &mut source, &mut records).expect("run ends");
    assert_eq!(engine.pipelines().live(), 0);
    records.records.sort_by_key(|r| (r.id, r.attempt));
    (records.records, engine.pipelines().skipped())
}

/// `(id, created s, queued s, started s, finished s)` of each record.
fn times(records: &[JobRecord]) -> Vec<(u64, u64, u64, u64, u64)> {
    records
        .iter()
        .map(|r| {
            let s = |t: fleetsim_core::SimTime| t.as_ms() / 1000;
            (r.id.0, s(r.created), s(r.queued), s(r.started), s(r.finished))
        })
        .collect()
}

#[test]
fn stages_release_when_every_job_of_the_earlier_stages_has_finished() {
    // Pipeline 1 at t=10: build (30 s) and lint (50 s); test-a (20 s) and test-b (40 s);
    // deploy (5 s). Enough workers for all. By hand:
    //   build 10→40, lint 10→60; the test stage waits for both: released at 60;
    //   test-a 60→80, test-b 60→100; deploy released at 100, runs 100→105.
    // Pipeline 2 at t=20 has one stage: its job runs 20→21, unaffected by pipeline 1.
    let trace = "\
job_id,pipeline_id,stage,name,created_at,duration
1,1,build,build,10,30
2,1,build,lint,10,50
3,1,test,test-a,10,20
4,1,test,test-b,10,40
5,1,deploy,deploy,10,5
6,2,,solo,20,1
";
    let (records, skipped) = run_trace(immediate(4), trace);
    assert_eq!(skipped, 0);
    assert_eq!(
        times(&records),
        vec![
            (1, 10, 10, 10, 40),
            (2, 10, 10, 10, 60),
            (3, 10, 60, 60, 80),
            (4, 10, 60, 60, 100),
            (5, 10, 100, 100, 105),
            (6, 20, 20, 20, 21),
        ]
    );
    // Pending time stays queued → started: zero here, although deploy was created 90 s
    // before it could run.
    assert!(records.iter().all(|r| r.pending_ms() == 0));
}

#[test]
fn released_jobs_are_handed_over_in_file_order() {
    // One worker: the test stage (3 jobs) is released at once when build ends at 10. The
    // source hands them over in file order (9, 7, 8); with immediate pick-up the first one
    // handed takes the free worker at once, and the others wait in GitLab's queue, which
    // orders by job id (7, then 8).
    let trace = "\
job_id,pipeline_id,stage,created_at,duration
1,1,build,0,10
9,1,test,0,5
7,1,test,0,5
8,1,test,0,5
";
    let (records, _) = run_trace(immediate(1), trace);
    let t = times(&records);
    assert_eq!(t[0], (1, 0, 0, 0, 10));
    assert_eq!(t[3], (9, 0, 10, 10, 15));
    assert_eq!(t[1], (7, 0, 10, 15, 20));
    assert_eq!(t[2], (8, 0, 10, 20, 25));
}

#[test]
fn needs_release_a_job_as_soon_as_its_listed_jobs_finish() {
    // build-a 0→10, build-b 0→40. test-a needs build-a only: 10→30. test-b needs build-b:
    // 40→45. deploy (no needs, stage deploy) waits for both stages: 45→46. docs has
    // `needs: []` in the last stage: it runs at 0. lint (stage test, no needs) waits for the
    // whole build stage: 40→41.
    let trace = "\
job_id,pipeline_id,stage,needs,created_at,duration
1,1,build,,0,10
2,1,build,,0,40
3,1,test,1,0,20
4,1,test,2,0,5
5,1,test,,0,1
6,1,deploy,,0,1
7,1,deploy,[],0,3
";
    let (records, _) = run_trace(immediate(8), trace);
    assert_eq!(
        times(&records),
        vec![
            (1, 0, 0, 0, 10),
            (2, 0, 0, 0, 40),
            (3, 0, 10, 10, 30),
            (4, 0, 40, 40, 45),
            (5, 0, 40, 40, 41),
            (6, 0, 45, 45, 46),
            (7, 0, 0, 0, 3),
        ]
    );
}

#[test]
fn needs_within_a_stage_and_repeated_ids() {
    // GitLab allows needs on the same stage: 2 needs 1 (listed twice), 3 needs 1 and 2.
    let trace = "\
job_id,pipeline_id,stage,needs,created_at,duration
1,5,test,,0,10
2,5,test,1;1,0,10
3,5,test,2;1,0,10
";
    let (records, _) = run_trace(immediate(3), trace);
    let t = times(&records);
    assert_eq!((t[1].2, t[2].2), (10, 20));
}

#[test]
fn a_trace_without_stage_or_needs_keeps_created_at_as_the_release() {
    // The same rows as a DAG would delay; without the columns every job is pending at once.
    let trace = "job_id,pipeline_id,created_at,duration\n1,1,0,10\n2,1,0,10\n";
    let (records, _) = run_trace(immediate(2), trace);
    assert_eq!(times(&records), vec![(1, 0, 0, 0, 10), (2, 0, 0, 0, 10)]);
}

#[test]
fn a_failed_job_skips_its_dependants_transitively() {
    // Two runners: `ok` (docker, tag ok) and `dm` (docker+machine, tag dm) whose machine
    // creations always fail, so job 1 fails after its creation attempts. Pipeline 1:
    //   stage build: 1 (dm, fails), 2 (ok, 10 s)
    //   stage test:  3 (no needs: waits for stage build → skipped), 4 (needs 2 → runs),
    //                5 (needs 3 → skipped through 3)
    //   stage deploy: 6 (no needs → skipped), 7 (needs [] → runs)
    // Pipeline 2 is untouched.
    let trace = "\
job_id,pipeline_id,stage,needs,created_at,duration,tags
1,1,build,,0,10,dm
2,1,build,,0,10,ok
3,1,test,,0,10,ok
4,1,test,2,0,10,ok
5,1,test,3,0,10,ok
6,1,deploy,,0,10,ok
7,1,deploy,[],0,10,ok
8,2,build,,5,10,ok
";
    let ok =
        RunnerSpec { tags: vec!["ok".into()], run_untagged: false, ..RunnerSpec::docker("ok") };
    let dm = RunnerSpec {
        tags: vec!["dm".into()],
        run_untagged: false,
        ..machine_runner(0, 60, 2, 0, 0)
    };
    let spec = one_process(8, 3_000, 0, vec![ok, dm]);
    let mut fleet = Fleet::new(spec);
    let reader = TraceReader::from_reader(trace.as_bytes(), "trace.csv").unwrap();
    let mut source = TraceSource::new(reader, CacheKeys::default());
    let mut cloud_spec = fixed_cloud(30);
    cloud_spec.failure_probability = 1.0;
    let mut cloud = t2_medium_cloud(cloud_spec, 2, 0.0, 1);
    let mut records = CollectRecords::default();
    let mut engine = Engine::new();
    engine.run_with(&mut fleet, &mut source, &mut records, &mut cloud).expect("run ends");
    let mut ran: Vec<(u64, bool)> = records.records.iter().map(|r| (r.id.0, r.failed)).collect();
    ran.sort_unstable();
    assert_eq!(ran, vec![(1, true), (2, false), (4, false), (7, false), (8, false)]);
    assert_eq!(engine.pipelines().skipped(), 3, "jobs 3, 5 and 6");
    assert_eq!(engine.pipelines().live(), 0);
    let four = records.records.iter().find(|r| r.id.0 == 4).unwrap();
    let two = records.records.iter().find(|r| r.id.0 == 2).unwrap();
    assert_eq!(four.queued, two.finished, "released when job 2 finished");
    assert_eq!(four.created.as_ms(), 0);
}

/// Reads `trace` into a run and returns the error.
fn dag_error(trace: &str) -> fleetsim::input_error::InputError {
    let mut fleet = Fleet::new(immediate(1));
    let reader = TraceReader::from_reader(trace.as_bytes(), "trace.csv").unwrap();
    let mut source = TraceSource::new(reader, CacheKeys::default());
    match Engine::new().run(&mut fleet, &mut source, &mut CollectRecords::default()) {
        Err(fleetsim::engine::RunError::Source(e)) => e,
        other => panic!("expected a trace error, got {other:?}"),
    }
}

fn assert_dag_error(trace: &str, line: usize, key: &str, needles: &[&str]) {
    let e = dag_error(trace);
    assert_eq!((e.line, e.key.as_deref()), (Some(line), Some(key)), "{e}");
    for n in needles {
        assert!(e.message.contains(n), "{n:?} not in {e}");
    }
}

const H: &str = "job_id,pipeline_id,stage,needs,created_at,duration\n";

#[test]
fn bad_dags_are_errors_naming_the_jobs_and_lines() {
    // A cycle 2 → 3 → 4 → 2 (line 3, 4, 5).
    assert_dag_error(
        &format!("{H}1,1,test,,0,1\n2,1,test,4,0,1\n3,1,test,2,0,1\n4,1,test,3,0,1\n"),
        3,
        "needs",
        &["pipeline 1 has a cycle", "job 2 (line 3)", "job 3 (line 4)", "job 4 (line 5)"],
    );
    // A job needing itself.
    assert_dag_error(&format!("{H}1,1,test,1,0,1\n"), 2, "needs", &["cycle", "job 1 (line 2)"]);
    // An unknown id.
    assert_dag_error(
        &format!("{H}1,1,build,,0,1\n2,1,test,99,0,1\n"),
        3,
        "needs",
        &["job 2 needs job 99", "not in its pipeline 1", "no job 99"],
    );
    // Across pipelines.
    assert_dag_error(
        &format!("{H}1,1,build,,0,1\n2,2,test,1,0,1\n"),
        3,
        "needs",
        &["job 2 needs job 1", "belongs to another pipeline"],
    );
    // A need on a later stage.
    assert_dag_error(
        &format!("{H}1,1,build,2,0,1\n2,1,test,,0,1\n"),
        2,
        "needs",
        &["later stage `test`"],
    );
    // A stage coming back.
    assert_dag_error(
        &format!("{H}1,1,build,,0,1\n2,1,test,,0,1\n3,1,build,,0,1\n"),
        4,
        "stage",
        &["stage `build`", "stage by stage"],
    );
    // A pipeline interrupted by another.
    assert_dag_error(
        &format!("{H}1,1,build,,0,1\n2,2,build,,0,1\n3,1,test,,0,1\n"),
        4,
        "pipeline_id",
        &["pipeline 1 comes back"],
    );
    // Jobs of a pipeline created at different times.
    assert_dag_error(
        &format!("{H}1,1,build,,0,1\n2,1,test,,5,1\n"),
        3,
        "created_at",
        &["pipeline 1 was created at 0 s (line 2)"],
    );
    // Needs without a pipeline.
    assert_dag_error(&format!("{H}1,,,,0,1\n2,,,1,0,1\n"), 3, "needs", &["no pipeline_id"]);
}

#[test]
fn sim_run_exits_2_on_a_cycle_naming_the_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let config = "concurrent = 2\n[[runners]]\n  name = \"r\"\n  url = \"http://gitlab.example\"\n  token = \"t\"\n  executor = \"docker\"\n";
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    std::fs::write(dir.path().join("trace.csv"), format!("{H}1,1,test,2,0,1\n2,1,test,1,0,1\n"))
        .unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[scenario]\nname = \"t\"\n[runner]\nconfig = \"config.toml\"\n[workload]\ntrace = \"trace.csv\"\n",
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["run", "s.toml", "--out", "out"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("trace.csv:2"), "{err}");
    assert!(err.contains("job 1 (line 2) needs job 2 (line 3) needs job 1 (line 2)"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn sim_run_reports_skipped_jobs_in_summary_and_jobs_csv_has_creation_and_release() {
    // Every machine creation fails, so the build job (1) fails after its creation attempts;
    // its pipeline's test (2) and deploy (3) are skipped. Job 4 (its own pipeline, tag
    // `host`) runs on the docker runner.
    let dir = tempfile::tempdir().unwrap();
    let config = r#"concurrent = 4
[[runners]]
  name = "host"
  url = "http://gitlab.example"
  token = "t1"
  executor = "docker"
[[runners]]
  name = "dm"
  url = "http://gitlab.example"
  token = "t2"
  executor = "docker+machine"
  limit = 2
  [runners.machine]
    IdleCount = 0
    IdleTime = 600
    MachineDriver = "amazonec2"
    MachineName = "runner-%s"
    MachineOptions = ["amazonec2-instance-type=t3.medium", "amazonec2-region=us-east-1"]
"#;
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    std::fs::write(
        dir.path().join("trace.csv"),
        "job_id,pipeline_id,stage,created_at,duration,tags\n1,1,build,0,10,dm\n2,1,test,0,10,dm\n3,1,deploy,0,10,dm\n4,2,build,5,10,host\n5,2,test,5,20,host\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        r#"[scenario]
name = "t"
[runner]
config = "config.toml"
[workload]
trace = "trace.csv"
[cloud]
creation_failure_probability = 1.0
[[gitlab.runners]]
tags = ["host"]
run_untagged = false
[[gitlab.runners]]
tags = ["dm"]
run_untagged = false
"#,
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["run", "s.toml", "--out", "out"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("2 skipped (a pipeline predecessor failed)"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["jobs"]["total"], 5);
    assert_eq!(summary["jobs"]["skipped"], 2);
    assert_eq!(summary["jobs"]["failed"], 1);
    assert_eq!(summary["jobs"]["finished"], 2);
    // Job 5 was created with its pipeline at 5 s and released when job 4 finished.
    let jobs = std::fs::read_to_string(dir.path().join("out/jobs.csv")).unwrap();
    let row = |id: &str| -> Vec<String> {
        jobs.lines()
            .find(|l| l.starts_with(&format!("{id},")))
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect()
    };
    let header: Vec<&str> = jobs.lines().next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (four, five) = (row("4"), row("5"));
    assert_eq!(five[at("created_at")], "5.000");
    assert_eq!(five[at("queued_at")], four[at("finished_at")]);
    assert!(jobs.lines().all(|l| !l.starts_with("2,") && !l.starts_with("3,")), "{jobs}");
}

/// One random pipeline: per job, its stage (non-decreasing), duration (s) and, maybe, needs
/// (indexes of earlier jobs of the same or an earlier stage).
type RandomJob = (u32, u64, Option<Vec<usize>>);

/// What the property test expects of a job: id, pipeline index, stage, creation (s), needs.
type ExpectedJob = (u64, usize, u32, u64, Option<Vec<u64>>);

fn pipeline_strategy() -> impl proptest::strategy::Strategy<Value = Vec<RandomJob>> {
    use proptest::prelude::*;
    prop::collection::vec(
        (
            0u32..2,
            1u64..50,
            any::<bool>(),
            prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        ),
        1..9,
    )
    .prop_map(|raw| {
        let mut stage = 0;
        raw.into_iter()
            .enumerate()
            .map(|(i, (step, duration, has_needs, picks))| {
                stage += step;
                let needs = has_needs.then(|| {
                    let mut n: Vec<usize> = if i == 0 {
                        Vec::new()
                    } else {
                        picks.iter().map(|p| p.index(i)).collect()
                    };
                    n.sort_unstable();
                    n.dedup();
                    n
                });
                (stage, duration, needs)
            })
            .collect()
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]

    /// With unlimited immediate capacity, each job is queued exactly when its last
    /// predecessor finishes (the pipeline's creation if it has none) and runs once.
    #[test]
    fn jobs_are_released_exactly_when_their_predecessors_finish(
        pipelines in proptest::collection::vec(pipeline_strategy(), 1..5),
        gap in 0u64..30,
    ) {
        let mut trace = String::from(H);
        let mut id = 0u64;
        let mut expected: Vec<ExpectedJob> = Vec::new();
        for (p, jobs) in pipelines.iter().enumerate() {
            let created = p as u64 * gap;
            let first = id + 1;
            for (stage, duration, needs) in jobs {
                id += 1;
                let needs_ids = needs.as_ref().map(|n| n.iter().map(|&k| first + k as u64).collect::<Vec<_>>());
                let cell = match &needs_ids {
                    None => String::new(),
                    Some(v) if v.is_empty() => "[]".into(),
                    Some(v) => v.iter().map(u64::to_string).collect::<Vec<_>>().join(";"),
                };
                trace.push_str(&format!("{id},{},s{stage},{cell},{created},{duration}\n", p + 1));
                expected.push((id, p, *stage, created, needs_ids));
            }
        }
        let (records, skipped) = run_trace(immediate(64), &trace);
        proptest::prop_assert_eq!(skipped, 0);
        proptest::prop_assert_eq!(records.len(), expected.len());
        let finished = |id: u64| records.iter().find(|r| r.id.0 == id).unwrap().finished.as_ms();
        for (k, (id, pipeline, stage, created, needs)) in expected.iter().enumerate() {
            let r = records.iter().find(|r| r.id.0 == *id).unwrap();
            let preds: Vec<u64> = match needs {
                Some(n) => n.clone(),
                None => expected[..k]
                    .iter()
                    .filter(|(_, q, s, ..)| *q == *pipeline && *s < *stage)
                    .map(|(other, ..)| *other)
                    .collect(),
            };
            let release = preds.iter().map(|&p| finished(p)).max().unwrap_or(created * 1000);
            proptest::prop_assert_eq!(r.queued.as_ms(), release, "job {} of\n{}", id, trace);
            proptest::prop_assert_eq!(r.created.as_ms(), created * 1000);
            proptest::prop_assert_eq!(r.started, r.queued);
        }
    }
}
