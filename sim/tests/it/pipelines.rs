//! Pipelines: stage and `needs` release timing worked by hand, skipped dependants of a failed
//! job, and the errors of a bad DAG (through the library and through `sim run`, exit 2).

use fleetsim::engine::{CollectRecords, Engine};
use fleetsim::run::TraceSource;
use fleetsim::trace::TraceReader;
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
    let mut source = TraceSource::new(reader);
    let mut records = CollectRecords::default();
    Engine::new().run(&mut fleet, &mut source, &mut records).expect("run ends");
    assert_eq!(source.live_pipelines(), 0);
    records.records.sort_by_key(|r| (r.id, r.attempt));
    (records.records, source.skipped())
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
    let mut source = TraceSource::new(reader);
    let mut cloud_spec = fixed_cloud(30);
    cloud_spec.failure_probability = 1.0;
    let mut cloud = t2_medium_cloud(cloud_spec, 2, 0.0, 1);
    let mut records = CollectRecords::default();
    Engine::new().run_with(&mut fleet, &mut source, &mut records, &mut cloud).expect("run ends");
    let mut ran: Vec<(u64, bool)> = records.records.iter().map(|r| (r.id.0, r.failed)).collect();
    ran.sort_unstable();
    assert_eq!(ran, vec![(1, true), (2, false), (4, false), (7, false), (8, false)]);
    assert_eq!(source.skipped(), 3, "jobs 3, 5 and 6");
    assert_eq!(source.live_pipelines(), 0);
    let four = records.records.iter().find(|r| r.id.0 == 4).unwrap();
    let two = records.records.iter().find(|r| r.id.0 == 2).unwrap();
    assert_eq!(four.queued, two.finished, "released when job 2 finished");
    assert_eq!(four.created.as_ms(), 0);
}

/// Reads `trace` into a run and returns the error.
fn dag_error(trace: &str) -> fleetsim::input_error::InputError {
    let mut fleet = Fleet::new(immediate(1));
    let reader = TraceReader::from_reader(trace.as_bytes(), "trace.csv").unwrap();
    let mut source = TraceSource::new(reader);
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
