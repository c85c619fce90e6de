//! Sweeps, shards and the planner: determinism across threads, shard/merge equality, the
//! monotone planner against the exhaustive one.

use std::path::{Path, PathBuf};

use fleetsim::plan::{Slo, plan};
use fleetsim::run::JobWindow;
use fleetsim::sweep::grid::{Shard, parse_axis};
use fleetsim::sweep::{SweepSpec, SweepTable, sweep};

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/seed-single-server.toml")
}

fn spec(vary: &[&str], threads: usize, shard: Shard) -> SweepSpec {
    SweepSpec {
        scenario: scenario(),
        sets: vec![],
        axes: vary.iter().map(|v| parse_axis(v).unwrap()).collect(),
        seeds: 2,
        base_seed: None,
        threads,
        shard,
        window: None,
    }
}

#[test]
fn a_sweep_is_the_same_whatever_the_threads_and_shards() {
    let vary = ["runner.hosts=1..2", "concurrent=4,6,8"];
    let tmp = tempfile::tempdir().unwrap();
    let (one, results) = sweep(&spec(&vary, 1, Shard::ALL), &tmp.path().join("t1"), false).unwrap();
    let (two, _) = sweep(&spec(&vary, 2, Shard::ALL), &tmp.path().join("t2"), false).unwrap();
    assert_eq!(results.len(), 6);
    let single = std::fs::read(&one).unwrap();
    assert_eq!(
        single,
        std::fs::read(&two).unwrap(),
        "1 thread and 2 threads give the same sweep.csv"
    );
    // Three shards, merged, give the same bytes.
    let shards: Vec<PathBuf> = (1..=3)
        .map(|i| {
            sweep(&spec(&vary, 2, Shard { index: i, count: 3 }), &tmp.path().join("shards"), false)
                .unwrap()
                .0
        })
        .collect();
    let mut merged = SweepTable::merge(&shards).unwrap();
    merged.mark_pareto().unwrap();
    let path = tmp.path().join("merged.csv");
    merged.write(&path).unwrap();
    assert_eq!(single, std::fs::read(&path).unwrap(), "merged shards equal the single run");
    // A missing shard is an error, not a silently shorter table.
    assert!(
        SweepTable::merge(&shards[..2]).is_err()
            && SweepTable::merge(&[shards[0].clone(), shards[2].clone()]).is_err()
    );
    // The seeds' spread is reported and brackets the mean.
    let text = String::from_utf8(single).unwrap();
    let table = SweepTable::read(&one).unwrap();
    assert!(
        text.contains("pending_p95_min_s")
            && table.rows.iter().any(|r| r.last().unwrap() == "true")
    );
    for r in &results {
        assert!(r.p95_min_s <= r.p95_s && r.p95_s <= r.p95_max_s);
        assert_eq!(r.seeds, 2);
    }
}

#[test]
fn the_monotone_planner_finds_what_the_exhaustive_one_finds_with_fewer_runs() {
    let vary = ["concurrent=4,8", "runner.hosts=1..5"];
    let mut s = spec(&vary, 2, Shard::ALL);
    s.seeds = 1;
    s.window = Some(JobWindow::parse("* 9-17 * * mon-fri", "Asia/Seoul").unwrap());
    for slo in ["window_p95_pending<=20s", "p99_pending<=60s"] {
        let slos = [Slo::parse(slo).unwrap()];
        let full = plan(&s, &slos, None, false).unwrap();
        let quick = plan(&s, &slos, Some("runner.hosts"), false).unwrap();
        assert_eq!(full.evaluated.len(), 10);
        assert!(
            quick.evaluated.len() < full.evaluated.len(),
            "{slo}: {} runs",
            quick.evaluated.len()
        );
        let (a, b) = (full.best.unwrap(), quick.best.unwrap());
        assert_eq!(a.values, b.values, "{slo}");
        assert!(slos[0].met(&a));
        // Nothing cheaper in the whole grid meets the SLO.
        for r in &full.evaluated {
            if r.cost_per_month_usd < a.cost_per_month_usd {
                assert!(!slos[0].met(r), "{slo}: point {} is cheaper and feasible", r.point);
            }
        }
    }
}

#[test]
fn sweep_and_merge_on_the_command_line() {
    let sim = env!("CARGO_BIN_EXE_sim");
    let tmp = tempfile::tempdir().unwrap();
    let scenario = scenario();
    let run = |args: &[&str]| std::process::Command::new(sim).args(args).output().unwrap();
    let out = tmp.path().join("s").display().to_string();
    let o = run(&["sweep", scenario.to_str().unwrap(), "--vary", "concurrent=4..6", "--out", &out]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut shards = Vec::new();
    for i in 1..=2 {
        let shard = format!("{i}/2");
        let o = run(&[
            "sweep",
            scenario.to_str().unwrap(),
            "--vary",
            "concurrent=4..6",
            "--shard",
            &shard,
            "--out",
            &out,
        ]);
        assert!(o.status.success());
        shards.push(tmp.path().join(format!("s/shard-{i}-of-2.csv")).display().to_string());
    }
    let merged = tmp.path().join("m").display().to_string();
    let o = run(&["merge", "--out", &merged, &shards[0], &shards[1]]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(tmp.path().join("s/sweep.csv")).unwrap(),
        std::fs::read(tmp.path().join("m/sweep.csv")).unwrap()
    );
    assert_eq!(
        std::fs::read(tmp.path().join("s/sweep.html")).unwrap(),
        std::fs::read(tmp.path().join("m/sweep.html")).unwrap(),
        "the sweep's page exists and the merged shards give the same bytes"
    );
    let o = run(&["sweep", scenario.to_str().unwrap(), "--vary", "concurrent=9..1", "--out", &out]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&[
        "plan",
        scenario.to_str().unwrap(),
        "--vary",
        "concurrent=4,8",
        "--slo",
        "p95<=1s",
        "--out",
        &out,
    ]);
    assert_eq!(o.status.code(), Some(2), "unknown SLO metric is bad input");
}
