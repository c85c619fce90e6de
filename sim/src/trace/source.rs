//! The simulator's job source: trace rows become the core's jobs (tags, caches and images
//! interned; GitLab's protected-ref key suffix and the runner's key sanitising applied), and a
//! DAG trace's pipelines are read whole and handed to the core, which releases their jobs.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

use fleetsim_core::cache::key::{KeyHandling, Unsanitizable, runner_key};
use fleetsim_core::cache::{CacheUseId, Policy, When};
use fleetsim_core::drive::JobSource;
use fleetsim_core::pipelines::Pipelines;
use fleetsim_core::{Fleet, JobId, JobSpec, JobWork, ProjectId, SimTime};
use rustc_hash::FxHashMap;

use crate::input_error::InputError;
use crate::offload::TraceReadAhead;
use crate::scenario::Scenario;
use crate::trace::pipelines::{PipelineReader, check_needs_have_a_pipeline};
use crate::trace::{CachePolicy, CacheWhen, TraceReader, TraceRecord};

/// Feeds trace records to the engine: interns tags, refuses jobs no runner can take and, in
/// a trace with `stage` or `needs` columns, holds each job until its predecessors finish
/// ([`crate::trace::pipelines`]). A trace without those columns gives every job at its
/// `created_at`, row by row.
pub struct TraceSource<R: Read> {
    records: Records<R>,
    /// The trace's path, as errors name it.
    path: PathBuf,
    /// `Some` for a DAG trace.
    pipelines: Option<PipelineReader>,
    /// Jobs of the last pipeline read that are pending at its creation, in reverse order.
    roots: Vec<(SimTime, JobSpec)>,
    /// The cache keys as the runners use them.
    keys: CacheKeys,
}

/// The trace's rows: read here when asked for, or parsed ahead on another thread.
#[allow(clippy::large_enum_variant)] // one per run, never moved while it runs
enum Records<R: Read> {
    Here {
        reader: TraceReader<R>,
        record: TraceRecord,
        /// Whether `record` is to be handed out again (the first row after a pipeline).
        unread: bool,
    },
    Ahead(TraceReadAhead),
}

impl<R: Read> Records<R> {
    fn next_record(&mut self) -> Result<Option<&TraceRecord>, InputError> {
        match self {
            Records::Here { reader, record, unread } => {
                if std::mem::take(unread) || reader.read_next(record)? {
                    Ok(Some(record))
                } else {
                    Ok(None)
                }
            }
            Records::Ahead(ahead) => ahead.next_record(),
        }
    }

    /// Hands out the last row again on the next call of `next_record`.
    fn unread(&mut self) {
        match self {
            Records::Here { unread, .. } => *unread = true,
            Records::Ahead(ahead) => ahead.unread(),
        }
    }

    fn has_seen(&self, id: u64) -> bool {
        match self {
            Records::Here { reader, .. } => reader.has_seen(id),
            Records::Ahead(ahead) => ahead.has_seen(id),
        }
    }
}

/// Whether a trace has pipelines to release (a `stage` or `needs` column).
fn has_pipelines<R: Read>(reader: &TraceReader<R>) -> bool {
    reader.has_column("stage") || reader.has_column("needs")
}

impl<R: Read> TraceSource<R> {
    /// A source over a trace reader; `keys` turns cache keys into the runners' keys.
    pub fn new(reader: TraceReader<R>, keys: CacheKeys) -> Self {
        let pipelines = has_pipelines(&reader).then(|| PipelineReader::new(reader.path()));
        let path = reader.path().to_path_buf();
        let records = Records::Here { reader, record: TraceRecord::new(), unread: false };
        TraceSource { records, path, pipelines, roots: Vec::new(), keys }
    }

    /// The cache keys' handling and what it changed so far.
    pub fn cache_keys(&self) -> &CacheKeys {
        &self.keys
    }
}

impl<R: Read + Send + 'static> TraceSource<R> {
    /// [`TraceSource::new`], with the trace parsed ahead on another thread
    /// ([`TraceReadAhead`]): the same jobs and the same errors at the same points.
    pub fn read_ahead(reader: TraceReader<R>, keys: CacheKeys) -> Self {
        let pipelines = has_pipelines(&reader).then(|| PipelineReader::new(reader.path()));
        let path = reader.path().to_path_buf();
        let records = Records::Ahead(TraceReadAhead::start(reader, pipelines.is_some()));
        TraceSource { records, path, pipelines, roots: Vec::new(), keys }
    }
}

/// The core's job for a trace row: interns its tags, cache and image; refuses a job no
/// runner could ever take. The cache keys go through [`CacheKeys::declare`] (GitLab's suffix,
/// then the runner's sanitising).
pub fn job_spec(
    r: &TraceRecord,
    fleet: &mut Fleet,
    path: &Path,
    keys: &mut CacheKeys,
) -> Result<JobSpec, InputError> {
    let cache = if r.cache_key.is_empty() {
        None
    } else {
        let policy = match r.cache_policy {
            CachePolicy::PullPush => Policy::PullPush,
            CachePolicy::Pull => Policy::Pull,
            CachePolicy::Push => Policy::Push,
        };
        let d = KeyDeclaration {
            key: &r.cache_key,
            fallbacks: &r.cache_fallback_keys,
            protected: r.protected,
            policy,
        };
        keys.declare(fleet, d)
    };
    let spec = JobSpec {
        id: JobId(r.job_id),
        project: ProjectId(r.project_id),
        tags: fleet.intern_tags(&r.tags),
        duration_ms: r.duration_ms,
        retry: r.retry,
        work: JobWork {
            cache,
            cache_size: r.cache_size_bytes,
            cache_changed: r.cache_changed,
            cache_miss_penalty_ms: r.cache_miss_penalty_ms,
            image: (!r.image.is_empty()).then(|| fleet.intern_image(&r.image)),
            image_size: r.image_size_bytes,
            cache_when: match r.cache_when {
                CacheWhen::OnSuccess => When::OnSuccess,
                CacheWhen::OnFailure => When::OnFailure,
                CacheWhen::Always => When::Always,
            },
            script_fails: r.script_fails,
        },
    };
    fleet.check_servable(&spec).map_err(|u| {
        InputError::file(path, format!("{}; no runner could ever take it", u.reason))
            .at_line(r.line)
            .key("tags")
    })?;
    Ok(spec)
}

/// The cache keys of a run as the runners use them, and what that changed. GitLab (Rails)
/// appends `-protected`/`-non_protected` before the runner sees a key; the runner then
/// sanitises it (`shells/abstract.go` `newCacheConfig` → `cache/cachekey/cachekey.go`
/// `Sanitize`) unless `FF_HASH_CACHE_KEYS` is on.
#[derive(Debug, Default)]
pub struct CacheKeys {
    handling: KeyHandling,
    /// What each declaration gave, by key as the trace writes it: a trace names a few keys
    /// (with their fallback keys) a million times, and sanitising and interning them again
    /// for every job was a fifth of the engine thread's time on the million-job trace
    /// (issue 15). A key has few variants (fallbacks, protection, policy): a short list.
    memo: FxHashMap<String, Vec<Remembered>>,
    /// Jobs with a key that sanitising changed, and the first such key (raw, sanitised).
    changed: u64,
    changed_example: Option<(String, String)>,
    /// Jobs with a key that cannot be sanitised, and the first such key.
    refused: u64,
    refused_example: Option<String>,
}

/// What one declaration gave: the job's cache, and whether sanitising changed or refused a
/// key (counted per job for the run's warning).
#[derive(Debug, Clone, Copy)]
struct Declared {
    cache: Option<CacheUseId>,
    changed: bool,
    refused: bool,
}

/// A job's cache as its trace row declares it.
#[derive(Debug, Clone, Copy)]
pub struct KeyDeclaration<'a> {
    /// `cache:key`.
    pub key: &'a str,
    /// `cache:fallback_keys`.
    pub fallbacks: &'a [String],
    /// Whether the job's ref is protected (`None`: GitLab's separated caches are off).
    pub protected: Option<bool>,
    /// `cache:policy`.
    pub policy: Policy,
}

/// One variant of a key in [`CacheKeys::memo`], and what declaring it gave.
#[derive(Debug)]
struct Remembered {
    fallbacks: Vec<String>,
    protected: Option<bool>,
    policy: Policy,
    declared: Declared,
}

impl CacheKeys {
    /// Keys handled as `handling` says.
    pub fn new(handling: KeyHandling) -> Self {
        CacheKeys { handling, ..CacheKeys::default() }
    }

    /// How the fleet's runners handle cache keys, and a warning when they disagree:
    /// `FF_HASH_CACHE_KEYS = true` on every runner keeps keys as written; otherwise fleetsim
    /// sanitises every key (it interns a job's cache when the job arrives, before a runner
    /// takes it, so one rule must hold for the whole fleet).
    pub fn for_scenario(scenario: &Scenario) -> (Self, Option<String>) {
        let runners = &scenario.config.runners;
        let (hashing, sanitising): (Vec<_>, Vec<_>) =
            runners.iter().partition(|r| r.hash_cache_keys);
        let names = |rs: &[&crate::config::validated::RunnerEntry]| -> Vec<String> {
            rs.iter().map(|r| r.name.clone()).collect()
        };
        if !hashing.is_empty() && sanitising.is_empty() {
            return (CacheKeys::new(KeyHandling::Hash), None);
        }
        let warning = (!hashing.is_empty()).then(|| {
            format!(
                "{}: runner(s) {:?} set FF_HASH_CACHE_KEYS = true and runner(s) {:?} do not; \
                 fleetsim decides a job's cache before a runner takes it, so it sanitises every \
                 cache key as GitLab Runner does by default (cache/cachekey Sanitize): keys \
                 that sanitising changes (\"foo/\" and \"foo\") share one cache even on the \
                 hashing runners, where they would be two",
                scenario.config_file.display(),
                names(&hashing),
                names(&sanitising)
            )
        });
        (CacheKeys::new(KeyHandling::Sanitize), warning)
    }

    /// Interns a job's cache. `None` when the runner skips the key (`Skipping cache
    /// extraction due to empty cache key`, and the same for archiving: the job has no cache);
    /// a fallback key the runner cannot sanitise is skipped alone
    /// (`extractCacheOrFallbackCachesWrapper`).
    pub fn declare(&mut self, fleet: &mut Fleet, d: KeyDeclaration<'_>) -> Option<CacheUseId> {
        let known = self.memo.get(d.key).and_then(|variants| {
            variants.iter().find(|v| {
                v.protected == d.protected && v.policy == d.policy && v.fallbacks == d.fallbacks
            })
        });
        let declared = match known {
            Some(v) => v.declared,
            None => {
                let declared = self.declare_new(fleet, d);
                let (protected, policy, fallbacks) = (d.protected, d.policy, d.fallbacks.to_vec());
                let v = Remembered { fallbacks, protected, policy, declared };
                self.memo.entry(d.key.to_owned()).or_default().push(v);
                declared
            }
        };
        self.changed += u64::from(declared.changed);
        self.refused += u64::from(declared.refused);
        declared.cache
    }

    /// A declaration not made before: sanitises the keys and interns them in the fleet.
    fn declare_new(&mut self, fleet: &mut Fleet, d: KeyDeclaration<'_>) -> Declared {
        let KeyDeclaration { key, fallbacks, protected, policy } = d;
        // GitLab's separated caches (§4.2): protected and unprotected refs never share a
        // key, fallback keys included.
        let suffix = match protected {
            None => "",
            Some(true) => "-protected",
            Some(false) => "-non_protected",
        };
        fn with_suffix<'a>(k: &'a str, suffix: &str) -> Cow<'a, str> {
            if suffix.is_empty() { Cow::Borrowed(k) } else { Cow::Owned(format!("{k}{suffix}")) }
        }
        // No allocation for a clean key without fallbacks (the common case).
        let handling = self.handling;
        let mut changed: Option<(String, String)> = None;
        let mut refused: Option<String> = None;
        let mut note = |raw: &str, got: &Result<Cow<'_, str>, Unsanitizable>| match got {
            Ok(k) if k.as_ref() != raw && changed.is_none() => {
                changed = Some((raw.to_owned(), k.to_string()));
            }
            Ok(_) => {}
            Err(_) => {
                refused.get_or_insert_with(|| raw.to_owned());
            }
        };
        let raw = with_suffix(key, suffix);
        let main = runner_key(&raw, handling);
        note(&raw, &main);
        let cache = match main {
            Err(_) => None,
            Ok(main) => {
                let raws: Vec<Cow<'_, str>> =
                    fallbacks.iter().map(|f| with_suffix(f, suffix)).collect();
                let mut keys: Vec<Cow<'_, str>> = Vec::with_capacity(raws.len());
                for raw in &raws {
                    let got = runner_key(raw, handling);
                    note(raw, &got);
                    if let Ok(k) = got {
                        keys.push(k);
                    }
                }
                Some(fleet.declare_cache(&main, &keys, policy))
            }
        };
        let declared = Declared { cache, changed: changed.is_some(), refused: refused.is_some() };
        if let Some(example) = changed {
            self.changed_example.get_or_insert(example);
        }
        if let Some(example) = refused {
            self.refused_example.get_or_insert(example);
        }
        declared
    }

    /// One warning for the run when sanitising changed or refused keys.
    pub fn warning(&self) -> Option<String> {
        if self.changed == 0 && self.refused == 0 {
            return None;
        }
        let mut parts = Vec::new();
        if let Some((raw, key)) = &self.changed_example {
            parts.push(format!(
                "{} jobs' cache keys were sanitised as GitLab Runner 19.4 does (cache/cachekey \
                 Sanitize; e.g. {raw:?} → {key:?}), so keys that differ only in that way share \
                 a cache",
                self.changed
            ));
        }
        if let Some(raw) = &self.refused_example {
            parts.push(format!(
                "{} jobs had a cache key that cannot be sanitised (e.g. {raw:?}): GitLab Runner \
                 skips it (\"Skipping cache extraction due to empty cache key\", the same for \
                 archiving), so those jobs ran without that cache (a fallback key: without that \
                 fallback)",
                self.refused
            ));
        }
        Some(format!(
            "{}; FF_HASH_CACHE_KEYS = true under [runners.feature_flags] keeps keys as written",
            parts.join("; ")
        ))
    }
}

impl<R: Read> JobSource for TraceSource<R> {
    type Error = InputError;

    fn next_job(
        &mut self,
        fleet: &mut Fleet,
        core: &mut Pipelines,
    ) -> Result<Option<(SimTime, JobSpec)>, InputError> {
        loop {
            if let Some(root) = self.roots.pop() {
                return Ok(Some(root));
            }
            let Some(record) = self.records.next_record()? else {
                return Ok(None);
            };
            let spec = job_spec(record, fleet, &self.path, &mut self.keys)?;
            let created = SimTime(record.created_at_ms);
            let Some(pipelines) = &mut self.pipelines else {
                return Ok(Some((created, spec)));
            };
            if record.pipeline_id.is_none() {
                check_needs_have_a_pipeline(record, &self.path)?;
                return Ok(Some((created, spec)));
            }
            pipelines.begin(record, spec)?;
            while let Some(record) = self.records.next_record()? {
                if !pipelines.continues(record) {
                    self.records.unread();
                    break;
                }
                let spec = job_spec(record, fleet, &self.path, &mut self.keys)?;
                pipelines.add(record, spec)?;
            }
            let records = &self.records;
            pipelines.seal(|id| records.has_seen(id), core, &mut self.roots)?;
            self.roots.reverse();
        }
    }
}
