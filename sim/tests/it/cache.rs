//! Caches through the whole fleet: a hand-worked docker+machine sequence, and bad cache
//! input in a trace.

use fleetsim_core::cache::{MissReason, Outcome, Policy};
use fleetsim_core::{Fleet, JobId, JobSpec, JobWork, ProjectId, TagSetId};

use crate::common::{fixed_cloud, machine_runner, one_process};

#[test]
fn a_cold_machine_misses_without_a_distributed_cache_and_hits_with_one() {
    // Two jobs of one project, far apart, on docker+machine with MaxBuilds 1 (every job gets
    // a fresh machine). The first job (cache `main`, changed) saves; the second restores.
    // Local cache only: the second machine is cold. With S3: it downloads the object.
    use fleetsim::engine::{CollectRecords, Engine, ListSource};
    for distributed in [false, true] {
        let mut runner = machine_runner(0, 0, 0, 0, 1);
        runner.cache.distributed = distributed;
        let spec = one_process(2, 3000, 0, vec![runner]);
        let mut fleet = Fleet::new(spec);
        let cache = fleet.declare_cache("main", &[] as &[&str], Policy::PullPush);
        let image = fleet.intern_image("node:20");
        let work = JobWork {
            cache: Some(cache),
            cache_size: 100_000_000,
            cache_changed: true,
            cache_miss_penalty_ms: 120_000,
            image: Some(image),
            image_size: 500_000_000,
            ..Default::default()
        };
        let job = |id: u64, at: u64| {
            (
                at,
                JobSpec {
                    id: JobId(id),
                    project: ProjectId(1),
                    tags: TagSetId::UNTAGGED,
                    duration_ms: 60_000,
                    retry: 0,
                    work,
                },
            )
        };
        let mut cloud = crate::common::t2_medium_cloud(fixed_cloud(30), 1, 0.0, 1);
        let mut records = CollectRecords::default();
        Engine::new()
            .run_with(
                &mut fleet,
                &mut ListSource::new(vec![job(1, 0), job(2, 600_000)]),
                &mut records,
                &mut cloud,
            )
            .unwrap();
        records.records.sort_by_key(|r| r.id);
        let (first, second) = (records.records[0], records.records[1]);
        // Defaults: registry 50 MB/s + 500 ms; cache 100 MB/s + 30 ms; local disk 400 MB/s.
        assert_eq!(first.pull_ms, 10_500, "a fresh machine pulls the 500 MB image");
        assert_eq!(first.cache, Outcome::Miss(MissReason::NeverUploaded));
        assert_eq!(
            first.finished - first.script_started,
            180_000 + first.save_ms,
            "60 s script + 120 s miss penalty, then save"
        );
        if distributed {
            assert_eq!(first.save_ms, 250 + 30 + 1000, "archive 100 MB locally, then PUT it");
            assert_eq!(second.cache, Outcome::HitRemote { fallback: 0 });
            assert_eq!(second.restore_ms, 30 + 1000 + 250, "GET, download, extract");
            assert_eq!(second.bytes_down, 100_000_000);
            assert_eq!(fleet.cache_stats().puts, 2, "both jobs changed the cache");
        } else {
            assert_eq!(first.save_ms, 250, "archive only");
            assert_eq!(second.cache, Outcome::Miss(MissReason::ColdMachine));
            assert_eq!(fleet.cache_stats().gets, 0);
        }
    }
}

#[test]
fn bad_cache_columns_are_refused_with_their_line() {
    let dir = one_slot_scenario();
    let cases: [(&str, &[&str]); 6] = [
        (
            "job_id,created_at,duration,cache_key,cache_when\n1,0,60,k,sometimes\n",
            &["t.csv:2", "cache_when", "on_success, on_failure or always"],
        ),
        (
            "job_id,created_at,duration,cache_key,protected\n1,0,60,k,maybe\n",
            &["t.csv:2", "protected"],
        ),
        (
            "job_id,created_at,duration,status\n1,0,60,canceled\n",
            &["t.csv:2", "status", "success or failed"],
        ),
        (
            "job_id,created_at,duration,cache_key,cache_size\n1,0,60,k,12XB\n",
            &["t.csv:2", "cache_size", "12XB"],
        ),
        (
            "job_id,created_at,duration,cache_key,cache_size\n1,0,60,k,-5MB\n",
            &["t.csv:2", "cache_size"],
        ),
        (
            "job_id,created_at,duration,cache_key,cache_policy\n1,0,60,k,sometimes\n",
            &["t.csv:2", "cache_policy", "sometimes"],
        ),
    ];
    for (trace, needles) in cases {
        std::fs::write(dir.path().join("t.csv"), trace).unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
            .args([
                "run",
                dir.path().join("s.toml").to_str().unwrap(),
                "--out",
                dir.path().join("o").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        for n in needles {
            assert!(err.contains(n), "{n:?} in {err}");
        }
    }
}

mod fast_path {
    //! With caches and images a job has up to four timed steps; the fast path skips the
    //! fleet's bookkeeping after the intermediate ones. It must change nothing.

    use fleetsim::engine::{CollectRecords, Engine, ListSource};
    use fleetsim_core::cache::Policy;
    use fleetsim_core::spec::{FleetSpec, RunnerSpec};
    use fleetsim_core::{Fleet, JobId, JobSpec, JobWork, ProjectId, TagSetId};
    use proptest::prelude::*;

    use crate::common::{fixed_cloud, machine_runner, one_process, t2_medium_cloud};

    fn run(
        spec: FleetSpec,
        jobs: &[(u64, u64, u8, bool)],
    ) -> (Vec<fleetsim_core::JobRecord>, String, u64) {
        let mut fleet = Fleet::new(spec);
        let keys: Vec<_> = (0..3)
            .map(|k| {
                let fallback = ["k0"];
                let fallbacks: &[&str] = if k > 0 { &fallback } else { &[] };
                fleet.declare_cache(&format!("k{k}"), fallbacks, Policy::PullPush)
            })
            .collect();
        let image = fleet.intern_image("node:20");
        let list = jobs
            .iter()
            .enumerate()
            .map(|(i, &(at, duration_ms, key, changed))| {
                let work = JobWork {
                    cache: Some(keys[key as usize % 3]),
                    cache_size: 200_000_000,
                    cache_changed: changed,
                    cache_miss_penalty_ms: 30_000,
                    image: Some(image),
                    image_size: 300_000_000,
                    ..Default::default()
                };
                let spec = JobSpec {
                    id: JobId(i as u64 + 1),
                    project: ProjectId(1 + (key as u64 % 2)),
                    tags: TagSetId::UNTAGGED,
                    duration_ms,
                    retry: 1,
                    work,
                };
                (at, spec)
            })
            .collect();
        let mut cloud = t2_medium_cloud(fixed_cloud(40), 1, 0.5, 3);
        let mut records = CollectRecords::default();
        let end = Engine::new()
            .run_with(&mut fleet, &mut ListSource::new(list), &mut records, &mut cloud)
            .unwrap();
        let (csv, _) = cloud.finish(end.end).unwrap();
        records.records.sort_by_key(|r| (r.id, r.attempt));
        (records.records, String::from_utf8(csv.unwrap()).unwrap(), fleet.cache_stats().puts)
    }

    fn runner(kind: u8, distributed: bool) -> RunnerSpec {
        let mut r = match kind {
            0 => RunnerSpec::docker("d"),
            1 => machine_runner(1, 60, 0, 0, 3),
            _ => crate::docker_autoscaler::scaler(2, crate::docker_autoscaler::idle(1, 60), 4, 3),
        };
        r.cache.distributed = distributed;
        r
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn skipping_step_bookkeeping_changes_nothing(
            kind in 0u8..3,
            distributed in any::<bool>(),
            arrivals in prop::collection::vec((0u64..400_000, 1_000u64..90_000, 0u8..4, any::<bool>()), 1..30),
        ) {
            let mut arrivals = arrivals;
            arrivals.sort();
            let fast = one_process(3, 3000, 500, vec![runner(kind, distributed)]);
            let mut tick = fast.clone();
            tick.skip_idle_offers = false;
            prop_assert_eq!(run(fast, &arrivals), run(tick, &arrivals));
        }
    }
}

/// Runs a trace on one docker host with one slot and no distributed cache (so every job
/// sees the previous jobs' local archives) and returns each job's
/// `(job_id, attempt, failed, cache)` from jobs.csv.
fn one_slot_run(trace: &str) -> Vec<(String, String, String, String)> {
    let dir = one_slot_scenario();
    std::fs::write(dir.path().join("t.csv"), trace).unwrap();
    let out = dir.path().join("o");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["run", dir.path().join("s.toml").to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let mut r = csv::Reader::from_path(out.join("jobs.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (id, attempt, failed, cache) = (col("job_id"), col("attempt"), col("failed"), col("cache"));
    let mut rows: Vec<_> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[id].to_owned(),
                rec[attempt].to_owned(),
                rec[failed].to_owned(),
                rec[cache].to_owned(),
            )
        })
        .collect();
    rows.sort_by_key(|r| (r.0.parse::<u64>().unwrap(), r.1.clone()));
    rows
}

#[test]
fn protected_and_unprotected_refs_do_not_share_a_cache() {
    // GitLab's separated caches (§4.2): the key becomes `k-protected` or `k-non_protected`.
    let rows = one_slot_run(
        "job_id,created_at,duration,cache_key,cache_size,protected\n\
         1,0,10,k,10MB,true\n2,100,10,k,10MB,false\n3,200,10,k,10MB,true\n4,300,10,k,10MB,false\n",
    );
    let cache: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    // Job 2's miss is `key_changed`: its project has a cache, under the other suffix.
    assert_eq!(cache, ["miss_never_uploaded", "miss_key_changed", "hit_local", "hit_local"]);
    // Without the column the key is used as written: all four share it.
    let rows = one_slot_run(
        "job_id,created_at,duration,cache_key,cache_size\n1,0,10,k,10MB\n2,100,10,k,10MB\n",
    );
    assert_eq!(rows[1].3, "hit_local");
}

#[test]
fn a_failed_script_saves_only_when_cache_when_allows_it_and_is_retried() {
    // Job 1 fails with `on_success` (the default): nothing saved, job 2 misses. Job 3 fails
    // with `always`: saved, job 4 hits. Job 5 fails with `on_failure` and retry 1: both
    // attempts fail and save; the second attempt finds the first one's archive.
    let rows = one_slot_run(
        "job_id,created_at,duration,cache_key,cache_size,status,cache_when,retry\n\
         1,0,10,a,10MB,failed,,0\n2,100,10,a,10MB,success,,0\n\
         3,200,10,b,10MB,failed,always,0\n4,300,10,b,10MB,,,0\n\
         5,400,10,c,10MB,failed,on_failure,1\n",
    );
    let got: Vec<(&str, &str, &str, &str)> =
        rows.iter().map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str(), r.3.as_str())).collect();
    assert_eq!(
        got,
        [
            ("1", "1", "true", "miss_never_uploaded"),
            ("2", "1", "false", "miss_never_uploaded"),
            ("3", "1", "true", "miss_key_changed"), // the project has `a` (job 2 saved it)
            ("4", "1", "false", "hit_local"),
            ("5", "1", "true", "miss_key_changed"),
            ("5", "2", "true", "hit_local"),
        ]
    );
}

#[test]
fn a_failed_script_skips_the_later_stages_of_its_pipeline() {
    let rows = one_slot_run(
        "job_id,pipeline_id,stage,created_at,duration,status\n\
         1,1,build,0,10,failed\n2,1,test,0,10,\n3,2,build,50,10,\n4,2,test,50,10,\n",
    );
    let ran: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.2.as_str())).collect();
    assert_eq!(ran, [("1", "true"), ("3", "false"), ("4", "false")], "job 2 was skipped");
}

/// A folder with `s.toml`, a scenario of one docker host with one slot reading `t.csv`
/// (written by the caller), and its `c.toml`.
fn one_slot_scenario() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "concurrent = 1\n[[runners]]\n  name = \"r\"\n  token = \"glrt-t\"\n  executor = \"docker\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        "[scenario]\nname = \"t\"\n[runner]\nconfig = \"c.toml\"\n[workload]\ntrace = \"t.csv\"\n",
    )
    .unwrap();
    dir
}

/// Runs `sim run s.toml` in `dir` (it must succeed); returns each job's `cache` column in job
/// id order, and stderr.
fn cache_column(dir: &std::path::Path) -> (Vec<String>, String) {
    let out = dir.join("out");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["run", dir.join("s.toml").to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{err}");
    let csv = std::fs::read_to_string(out.join("jobs.csv")).unwrap();
    let mut rows: Vec<(u64, String)> = crate::common::machine_rows(&csv)
        .into_iter()
        .map(|r| (r["job_id"].parse().unwrap(), r["cache"].clone()))
        .collect();
    rows.sort();
    (rows.into_iter().map(|r| r.1).collect(), err)
}

mod sanitised_cache_keys {
    //! GitLab Runner 19.4 sanitises every cache key before it names the archive
    //! (`shells/abstract.go` `newCacheConfig` → `cache/cachekey/cachekey.go` `Sanitize`)
    //! unless `FF_HASH_CACHE_KEYS` is on (`helpers/featureflags/flags.go`, default false).
    //! The `Sanitize` table itself is ported in `core/tests/go_cachekey.rs`.

    /// Runs `trace` on the one-slot docker host of [`super::one_slot_scenario`] with
    /// `config` as `c.toml`; returns each job's `cache` column (by job id) and stderr.
    fn run(config: &str, trace: &str) -> (Vec<String>, String) {
        let dir = super::one_slot_scenario();
        std::fs::write(dir.path().join("c.toml"), config).unwrap();
        std::fs::write(dir.path().join("t.csv"), trace).unwrap();
        super::cache_column(dir.path())
    }

    const TRACE: &str = "job_id,created_at,duration,cache_key,cache_size\n\
                         1,0,10,foo/,10MB\n2,100,10,foo,10MB\n3,200,10,..,10MB\n";
    const ONE_RUNNER: &str = "concurrent = 1\n[[runners]]\n  name = \"r\"\n  token = \"glrt-t\"\n  executor = \"docker\"\n";

    #[test]
    fn foo_slash_and_foo_share_a_cache_and_dot_dot_runs_without_one() {
        let (cache, err) = run(ONE_RUNNER, TRACE);
        // Job 1 saves `foo` (sanitised from `foo/`); job 2 finds it; job 3's `..` cannot be
        // sanitised: "Skipping cache extraction due to empty cache key", no cache at all.
        assert_eq!(cache, ["miss_never_uploaded", "hit_local", ""], "{err}");
        assert!(
            err.contains(
                "1 jobs' cache keys were sanitised as GitLab Runner 19.4 does (cache/cachekey \
                 Sanitize; e.g. \"foo/\" → \"foo\")"
            ),
            "{err}"
        );
        assert!(
            err.contains("1 jobs had a cache key that cannot be sanitised (e.g. \"..\")"),
            "{err}"
        );
        assert!(err.contains("FF_HASH_CACHE_KEYS"), "{err}");
    }

    /// The source remembers what each key gave (issue 15: sanitising every job's key again
    /// was a fifth of the engine's time); a key met again still counts once per job.
    #[test]
    fn a_repeated_key_counts_once_per_job() {
        let trace = "job_id,created_at,duration,cache_key,cache_size\n\
                     1,0,10,foo/,10MB\n2,100,10,foo/,10MB\n3,200,10,..,10MB\n4,300,10,..,10MB\n";
        let (cache, err) = run(ONE_RUNNER, trace);
        assert_eq!(cache, ["miss_never_uploaded", "hit_local", "", ""], "{err}");
        assert!(err.contains("2 jobs' cache keys were sanitised"), "{err}");
        assert!(err.contains("2 jobs had a cache key that cannot be sanitised"), "{err}");
    }

    #[test]
    fn with_ff_hash_cache_keys_foo_slash_and_foo_are_two_caches() {
        let config =
            format!("{ONE_RUNNER}  [runners.feature_flags]\n    FF_HASH_CACHE_KEYS = true\n");
        let (cache, err) = run(&config, TRACE);
        // `foo` is not `foo/`: job 2 misses (its project has another key); `..` is a key.
        assert_eq!(cache, ["miss_never_uploaded", "miss_key_changed", "miss_key_changed"], "{err}");
        assert!(!err.contains("sanitised"), "{err}");
    }

    #[test]
    fn clean_keys_give_no_warning() {
        let (cache, err) = run(
            ONE_RUNNER,
            "job_id,created_at,duration,cache_key,cache_size\n1,0,10,foo,10MB\n2,100,10,foo,10MB\n",
        );
        assert_eq!(cache, ["miss_never_uploaded", "hit_local"]);
        assert!(!err.contains("cache key"), "{err}");
    }

    #[test]
    fn the_protected_suffix_comes_before_sanitising() {
        // GitLab appends `-protected` before the runner sees the key: `foo/` becomes
        // `foo/-protected`, which is clean, so it and `foo` (`foo-protected`) stay two caches;
        // `..` becomes `..-protected`, a valid key.
        let (cache, err) = run(
            ONE_RUNNER,
            "job_id,created_at,duration,cache_key,cache_size,protected\n\
             1,0,10,foo/,10MB,true\n2,100,10,foo,10MB,true\n3,200,10,..,10MB,true\n",
        );
        assert_eq!(cache, ["miss_never_uploaded", "miss_key_changed", "miss_key_changed"], "{err}");
        assert!(!err.contains("sanitised"), "{err}");
    }

    #[test]
    fn a_fallback_key_is_sanitised_and_a_bad_one_skipped_alone() {
        // Job 2's fallbacks: `..` (skipped, as `extractCacheOrFallbackCachesWrapper` skips it)
        // and `a\` (sanitised to `a`), so its first fallback in use is `a`: index 1.
        let (cache, err) = run(
            ONE_RUNNER,
            "job_id,created_at,duration,cache_key,cache_fallback_keys,cache_size\n\
             1,0,10,a,,10MB\n2,100,10,b,..;a\\,10MB\n",
        );
        assert_eq!(cache, ["miss_never_uploaded", "hit_local_fallback_1"], "{err}");
        assert!(err.contains("1 jobs' cache keys were sanitised"), "{err}");
        assert!(err.contains("1 jobs had a cache key that cannot be sanitised"), "{err}");
    }

    #[test]
    fn runners_that_disagree_on_ff_hash_cache_keys_are_told_what_fleetsim_does() {
        let config = "concurrent = 2\n\
            [[runners]]\n  name = \"hashing\"\n  token = \"glrt-a\"\n  executor = \"docker\"\n\
            [runners.feature_flags]\n    FF_HASH_CACHE_KEYS = true\n\
            [[runners]]\n  name = \"plain\"\n  token = \"glrt-b\"\n  executor = \"docker\"\n";
        let (cache, err) = run(config, TRACE);
        // fleetsim sanitises: `..` has no cache, whichever runner took it.
        assert_eq!(cache[2], "", "{err}");
        assert!(
            err.contains(
                "runner(s) [\"hashing\"] set FF_HASH_CACHE_KEYS = true and runner(s) \
                 [\"plain\"] do not"
            ),
            "{err}"
        );
        assert!(err.contains("sanitises every cache key"), "{err}");
    }
}

mod legacy_flat_s3_keys {
    //! Audit item 2: S3 keys directly under `[runners.cache]` (the seed's autoscaling config).
    //! GitLab Runner 19.4 reads S3 settings only from `[runners.cache.s3]`
    //! (`cache/cacheconfig/cacheconfig.go` `Config.S3`); `cache/s3v2/adapter.go` (and
    //! `cache/s3/adapter.go`) `New` answer "missing S3 configuration" without it, and
    //! `cache/cache.go` `GetAdapter` falls back to `nopAdapter{}`: local cache only.

    const FLAT: &str = "  [runners.cache]\n    Type = \"s3\"\n    ServerAddress = \"s3.amazonaws.com\"\n    BucketName = \"b\"\n    BucketLocation = \"ap-northeast-2\"\n";
    const SECTION: &str = "  [runners.cache]\n    Type = \"s3\"\n    [runners.cache.s3]\n    ServerAddress = \"s3.amazonaws.com\"\n    BucketName = \"b\"\n    BucketLocation = \"ap-northeast-2\"\n";

    /// Runs the audit's scenario: two jobs of project 1 with cache key `k`, far apart, on
    /// docker+machine with `MaxBuilds = 1` (so on different machines). Returns the `cache`
    /// column of both jobs and the run's stderr.
    fn run(cache: &str, scenario_extra: &str) -> (Vec<String>, String) {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "concurrent = 2\ncheck_interval = 3\n[[runners]]\n  name = \"r\"\n  url = \"http://gitlab.example\"\n  token = \"glrt-SECRETTOKEN123\"\n  executor = \"docker+machine\"\n  [runners.docker]\n    image = \"alpine\"\n  [runners.machine]\n    IdleCount = 0\n    MaxBuilds = 1\n    MachineDriver = \"amazonec2\"\n    MachineName = \"m-%s\"\n    MachineOptions = [\"amazonec2-instance-type=t2.medium\"]\n{cache}"
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        std::fs::write(
            dir.path().join("trace.csv"),
            "job_id,project_id,created_at,duration,cache_key,cache_size,cache_changed,cache_miss_penalty\n1,1,0,60,k,100MB,true,120\n2,1,600,60,k,100MB,true,120\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("s.toml"),
            format!("[scenario]\nname = \"t\"\nseed = 7\n[runner]\nconfig = \"config.toml\"\n[workload]\ntrace = \"trace.csv\"\n[cloud]\nboot_time = \"30s\"\n{scenario_extra}"),
        )
        .unwrap();
        super::cache_column(dir.path())
    }

    #[test]
    fn flat_keys_give_the_local_cache_only_with_a_warning_that_says_the_fix() {
        let (cache, err) = run(FLAT, "");
        assert_eq!(cache, ["miss_never_uploaded", "miss_cold_machine"], "{err}");
        for needle in
            ["missing S3", "[runners.cache.s3]", "cache_miss_penalty", "distributed = true"]
        {
            assert!(err.contains(needle), "{needle:?} in {err}");
        }
    }

    #[test]
    fn the_section_gives_the_s3_cache_and_the_switch_models_the_cache_meant() {
        let (cache, err) = run(SECTION, "");
        assert_eq!(cache, ["miss_never_uploaded", "hit_remote"], "{err}");
        assert!(!err.contains("12.0"), "{err}");
        let (cache, _) = run(FLAT, "[cache]\ndistributed = true\n");
        assert_eq!(cache, ["miss_never_uploaded", "hit_remote"]);
    }
}
