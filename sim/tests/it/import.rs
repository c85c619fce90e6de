//! `sim trace import` end to end: GitLab JSON to a trace that replays stage release, CSV with
//! a column map round trips a generated trace, bad input exits 2 naming the place.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use fleetsim::trace::{TraceReader, TraceRecord};

const SIM: &str = env!("CARGO_BIN_EXE_sim");

fn sim(dir: &Path, args: &[&str]) -> Output {
    Command::new(SIM).args(args).current_dir(dir).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn records(path: &Path) -> Vec<TraceRecord> {
    let mut reader = TraceReader::open(path).unwrap();
    let mut r = TraceRecord::new();
    let mut all = Vec::new();
    while reader.read_next(&mut r).unwrap() {
        r.line = 0;
        all.push(r.clone());
    }
    all
}

#[test]
fn imported_gitlab_jobs_replay_with_stage_release() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let p1 = fixtures.join("gitlab-jobs-page1.json");
    let p2 = fixtures.join("gitlab-jobs-page2.json");
    let o =
        sim(d, &["trace", "import", p1.to_str().unwrap(), p2.to_str().unwrap(), "--out", "t.csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(
        d.join("config.toml"),
        "concurrent = 4\n[[runners]]\n  name = \"r\"\n  url = \"http://g\"\n  token = \"t\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"alpine\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("s.toml"),
        "[scenario]\nname = \"i\"\n[runner]\nconfig = \"config.toml\"\n[workload]\ntrace = \"t.csv\"\n[gitlab]\npickup = \"immediate\"\n[[gitlab.runners]]\ntags = [\"docker\", \"linux\"]\nrun_untagged = true\n",
    )
    .unwrap();
    let o = sim(d, &["run", "s.toml", "--out", "out"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // jobs.csv: job id → (created_at, queued_at, finished_at).
    let mut rows: BTreeMap<u64, (f64, f64, f64)> = BTreeMap::new();
    let mut csv = csv::Reader::from_path(d.join("out/jobs.csv")).unwrap();
    let h = csv.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (id, c, q, f) = (col("job_id"), col("created_at"), col("queued_at"), col("finished_at"));
    for rec in csv.records() {
        let rec = rec.unwrap();
        let num = |i: usize| rec[i].parse::<f64>().unwrap();
        rows.insert(rec[id].parse().unwrap(), (num(c), num(q), num(f)));
    }
    // Pipeline 1001 (created at 0): compile (5001, 35.679 s) then the test stage (5002,
    // 5003) released when it finishes. Pipeline 1002 (created at 600 s): build (5004,
    // 91.5 s) then rspec 1/2 (5005).
    assert_eq!(rows[&5001], (0.0, 0.0, 35.679));
    assert_eq!(rows[&5002].1, 35.679);
    assert_eq!(rows[&5003].1, 35.679);
    assert_eq!(rows[&5002].0, 0.0);
    assert_eq!(rows[&5004].1, 600.0);
    assert_eq!(rows[&5005], (600.0, 691.5, 691.5 + 240.25));
}

#[test]
fn csv_with_renamed_columns_round_trips_a_generated_trace() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = sim(d, &["trace", "gen", "--out", "g.csv", "--days", "2", "--seed", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Rename three columns as another tool would write them.
    let text = std::fs::read_to_string(d.join("g.csv")).unwrap();
    let (header, rest) = text.split_once('\n').unwrap();
    let header = header
        .replace("job_id", "id")
        .replace("created_at", "queued")
        .replace(",duration,", ",seconds,");
    std::fs::write(d.join("other.csv"), format!("{header}\n{rest}")).unwrap();
    let map = "job_id=id,created_at=queued,duration=seconds";
    let o = sim(d, &["trace", "import", "--csv", "other.csv", "--map", map, "--out", "back.csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (records(&d.join("g.csv")), records(&d.join("back.csv")));
    assert!(a.len() > 100);
    assert_eq!(a, b, "the same jobs, field by field");
    // The canonical form is a fixed point.
    let o = sim(d, &["trace", "import", "--csv", "back.csv", "--out", "again.csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(d.join("back.csv")).unwrap(),
        std::fs::read(d.join("again.csv")).unwrap()
    );
}

#[test]
fn bad_csv_and_json_exit_2_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("in.csv"), "id,at,secs\n1,0,4\n2,1,4\n3,2,-4\n").unwrap();
    let o = sim(
        d,
        &[
            "trace",
            "import",
            "--csv",
            "in.csv",
            "--map",
            "job_id=id,created_at=at,duration=secs",
            "--out",
            "o.csv",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("in.csv:4") && err.contains("secs") && err.contains("negative"), "{err}");

    let o = sim(d, &["trace", "import", "--csv", "in.csv", "--map", "job=id", "--out", "o.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--map"), "{}", stderr(&o));

    std::fs::write(
        d.join("j.json"),
        "[{\"id\": 1, \"pipeline\": {\"id\": 2, \"created_at\": \"soon\"}}]",
    )
    .unwrap();
    let o = sim(d, &["trace", "import", "j.json", "--out", "o.csv"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pipeline.created_at") && stderr(&o).contains("`soon`"),
        "{}",
        stderr(&o)
    );
}
