//! The cache model (reference §4): the machine-local cache (a Docker volume on the runner
//! host, or on a docker+machine machine, where it dies with the machine), the distributed
//! cache of `[runners.cache]` (S3, GCS, Azure, MinIO), and the per-place Docker image cache.
//!
//! ```text
//!  restore: key, then each fallback key, stopping at the first success (§4.3)
//!    distributed: GET object ── 404 ──► local archive? ─yes─► hit (local) ; no ─► next key
//!                   │ found
//!                   └► local copy at least as new (mtime ≥ Last-Modified)? ─yes─► hit (local, no download)
//!                                                                          no ─► download ─► hit (remote)
//!    local only:  local archive? ─yes─► hit (local) ; no ─► next key
//!  save (policy push/pull-push): nothing changed and a local archive exists ─► skip (§4.5)
//!                                else archive locally, upload if distributed (object visible when the PUT ends)
//! ```
//!
//! The core decides what moves and how much; the transfer model turns bytes into time.

pub mod key;

use std::sync::Arc;

use indexmap::IndexMap;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

use crate::containers::slowed;
use crate::ids::{MachineId, ProjectId, RunnerId};
use crate::time::SimTime;

/// An interned cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub u32);

/// An interned image name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageId(pub u32);

/// An interned cache declaration: key, fallback keys, policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheUseId(pub u32);

/// `cache:policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Policy {
    /// Download and upload (the default).
    #[default]
    PullPush,
    /// Download only.
    Pull,
    /// Upload only.
    Push,
}

impl Policy {
    fn pulls(self) -> bool {
        self != Policy::Push
    }
    fn pushes(self) -> bool {
        self != Policy::Pull
    }
}

/// `cache:when`: after which script outcome the cache is saved (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum When {
    /// Only after a successful script (the default).
    #[default]
    OnSuccess,
    /// Only after a failed script.
    OnFailure,
    /// After either.
    Always,
}

impl When {
    /// Whether a job whose script `failed` saves its cache.
    pub fn saves(self, failed: bool) -> bool {
        match self {
            When::OnSuccess => !failed,
            When::OnFailure => failed,
            When::Always => true,
        }
    }
}

/// `[runners.docker] pull_policy` (the first one listed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull for every job: a full pull where the image is missing, a manifest check where
    /// it is present.
    #[default]
    Always,
    /// Pull when the image is not on the place yet.
    IfNotPresent,
    /// Never pull (the image is assumed present).
    Never,
}

/// How bytes become time. Rates in bytes per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transfer {
    /// Cache server bandwidth per transfer.
    pub remote_bytes_per_s: u64,
    /// Per request (GET, HEAD, PUT) latency, in ms.
    pub remote_latency_ms: u64,
    /// Archiving and extracting on local disk.
    pub local_bytes_per_s: u64,
    /// The fixed cost of one local archive operation, in ms: writing or extracting an archive
    /// beside the job (a restore from the bucket writes the local copy and extracts it, a
    /// local hit extracts, a save archives and keeps the archive). 0 by default; measured by
    /// `sim live calibrate` (live mode moves each archive through one Docker archive call).
    pub local_latency_ms: u64,
    /// Image registry bandwidth per pull.
    pub registry_bytes_per_s: u64,
    /// Per pull latency, in ms.
    pub registry_latency_ms: u64,
}

impl Default for Transfer {
    fn default() -> Self {
        Transfer {
            remote_bytes_per_s: 100_000_000,
            remote_latency_ms: 30,
            local_bytes_per_s: 400_000_000,
            local_latency_ms: 0,
            registry_bytes_per_s: 50_000_000,
            registry_latency_ms: 500,
        }
    }
}

fn ms_for(bytes: u64, bytes_per_s: u64) -> u64 {
    if bytes_per_s == 0 {
        0
    } else {
        (u128::from(bytes) * 1000).div_ceil(u128::from(bytes_per_s)) as u64
    }
}

/// Fleet-wide cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CacheModel {
    /// The transfer model.
    pub transfer: Transfer,
    /// Objects expire this long after their upload (a bucket lifecycle rule); `None` = never.
    pub expiry_ms: Option<u64>,
}

/// The cache settings of one `[[runners]]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunnerCache {
    /// `[runners.cache] Type` is set (s3, gcs, azure).
    pub distributed: bool,
    /// `Shared = true`: no `runner/<token>/` prefix, so runners share objects.
    pub shared: bool,
    /// Which token the runner uses, when known: runners with the same token (several
    /// hosts with one `config.toml`, one registration) share the `runner/<token>/`
    /// namespace. `None`: a token of its own.
    pub token: Option<u32>,
    /// `[runners.docker] pull_policy`.
    pub pull_policy: PullPolicy,
}

/// Why a restore found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MissReason {
    /// No job ever saved this key (in this scope).
    NeverUploaded,
    /// It was saved, but on another machine or slot, and there is no distributed cache (or
    /// the machine holding it is gone).
    ColdMachine,
    /// The object expired (lifecycle rule).
    Expired,
    /// This key was never saved, but the project saved others (a new branch, a changed
    /// lock file).
    KeyChanged,
}

impl MissReason {
    /// All reasons, in report order.
    pub const ALL: [MissReason; 4] = [
        MissReason::NeverUploaded,
        MissReason::ColdMachine,
        MissReason::Expired,
        MissReason::KeyChanged,
    ];

    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            MissReason::NeverUploaded => "never_uploaded",
            MissReason::ColdMachine => "cold_machine",
            MissReason::Expired => "expired",
            MissReason::KeyChanged => "key_changed",
        }
    }
}

/// What a job's cache restore found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// The job has no cache, or its policy does not pull.
    #[default]
    None,
    /// Found on the place itself (no download); `fallback` 0 is the primary key.
    HitLocal {
        /// Index of the key that hit (0 = primary).
        fallback: u8,
    },
    /// Downloaded from the distributed cache.
    HitRemote {
        /// Index of the key that hit (0 = primary).
        fallback: u8,
    },
    /// Nothing found.
    Miss(MissReason),
}

impl Outcome {
    /// Its name in `jobs.csv`.
    pub fn label(self) -> String {
        match self {
            Outcome::None => String::new(),
            Outcome::HitLocal { fallback: 0 } => "hit_local".into(),
            Outcome::HitRemote { fallback: 0 } => "hit_remote".into(),
            Outcome::HitLocal { fallback } => format!("hit_local_fallback_{fallback}"),
            Outcome::HitRemote { fallback } => format!("hit_remote_fallback_{fallback}"),
            Outcome::Miss(r) => format!("miss_{}", r.as_str()),
        }
    }
}

/// Where a local cache and images live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    /// A docker executor cache volume on a runner host. GitLab Runner 19.4
    /// `executors/docker/volume.go` names it `ProjectRealUniqueName()` (`common/build.go`:
    /// a hash of the token, the system ID, the project ID and `ProjectRunnerID`), and
    /// `commands/builds_helper.go` `addBuild` gives a job the lowest `ProjectRunnerID` no
    /// running job of the same token and project holds. So the volume is per (host, runner,
    /// project, index), not per worker slot: a project whose jobs run one at a time always
    /// finds its volume (the audit's item 6; `gitlab-runner-semantics.md` §4.8 said
    /// "concurrency id" and meant this index).
    Volume {
        /// The runner host (its system ID).
        host: u16,
        /// The `[[runners]]` entry (its token).
        runner: u16,
        /// The project.
        project: ProjectId,
        /// `ProjectRunnerID`.
        index: u32,
    },
    /// A runner host's Docker (images are shared by its slots).
    Host(u16),
    /// An autoscaled machine.
    Machine(MachineId),
}

/// Fleet-wide counters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CacheStats {
    /// Restores that found something.
    pub hits: u64,
    /// Restores that found nothing, by [`MissReason::ALL`] order.
    pub misses: [u64; 4],
    /// Bytes downloaded from the distributed cache.
    pub bytes_down: u64,
    /// Bytes uploaded.
    pub bytes_up: u64,
    /// GET requests (including 404s).
    pub gets: u64,
    /// PUT requests.
    pub puts: u64,
    /// Uploads skipped because nothing changed.
    pub uploads_skipped: u64,
    /// Image pulls.
    pub image_pulls: u64,
    /// Bytes pulled from the registry.
    pub image_bytes: u64,
    /// Stored bytes × ms in the distributed cache (for GB-month pricing).
    pub storage_byte_ms: u128,
}

#[derive(Debug, Clone, Copy)]
struct Remote {
    /// When the upload ended.
    version: SimTime,
    /// Its `Last-Modified` header: `version` in whole seconds (an HTTP date).
    modified: SimTime,
    size: u64,
    expires: Option<SimTime>,
}

#[derive(Debug, Default)]
struct Local {
    /// Per cache, the local archive's modification time and size.
    caches: FxHashMap<(ProjectId, KeyId), (SimTime, u64)>,
    images: FxHashSet<ImageId>,
}

type RemoteKey = (u32, ProjectId, KeyId);

/// An object to publish when its upload ends: scope, project, key, size in bytes.
pub type Upload = (u32, ProjectId, KeyId, u64);

/// Where a job's cache lives: its place, its object scope, whether the runner has a
/// distributed cache, and its project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheAt {
    /// The place of the local cache (slot or machine).
    pub place: Place,
    /// The object scope ([`CacheWorld::scope`]).
    pub scope: u32,
    /// Whether `[runners.cache]` has a distributed cache.
    pub distributed: bool,
    /// The job's project.
    pub project: ProjectId,
    /// How much slower the local archive moves are for the Docker engine's other work in
    /// progress, ‰ (1000: alone; [`crate::containers`], "The engine is shared").
    pub engine_permille: u32,
}

/// A planned restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restore {
    /// What it found.
    pub outcome: Outcome,
    /// How long it takes.
    pub ms: u64,
    /// Bytes downloaded.
    pub bytes_down: u64,
}

/// A planned save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Save {
    /// How long it takes (0 when skipped).
    pub ms: u64,
    /// Bytes uploaded (0 when skipped or local only).
    pub bytes_up: u64,
    /// The object to publish when the upload ends.
    pub publish: Option<Upload>,
}

/// A job's cache declaration as a port carries it out: the names of its keys, the key first
/// and then the fallback keys in order (as the runner tries them), and its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheDecl {
    /// The key, then the fallback keys (at most five, as GitLab allows).
    pub keys: Vec<String>,
    /// `cache:policy`.
    pub policy: Policy,
}

/// All cache state of the fleet.
#[derive(Debug, Default)]
pub struct CacheWorld {
    model: CacheModel,
    // Interned in insertion order (ids are indexes); Fx-hashed, as every job asks each once.
    keys: IndexMap<String, (), FxBuildHasher>,
    images: IndexMap<String, (), FxBuildHasher>,
    uses: IndexMap<(KeyId, Vec<KeyId>, Policy), (), FxBuildHasher>,
    /// Each declaration with its names, for the steps that carry it ([`CacheWorld::decl`]).
    decls: Vec<Arc<CacheDecl>>,
    // The maps and sets below are only ever asked about one key (never iterated in an order
    // that could show: `finish` sums integers), so they are Fx-hashed; every job's pull,
    // restore and save looks them up.
    remote: FxHashMap<RemoteKey, Remote>,
    /// Keys ever saved (per scope), and projects that ever saved anything.
    saved: FxHashSet<RemoteKey>,
    projects_saved: FxHashSet<(u32, ProjectId)>,
    expired: FxHashSet<RemoteKey>,
    local: FxHashMap<Place, Local>,
    stats: CacheStats,
}

impl CacheWorld {
    /// A world with this model.
    pub fn new(model: CacheModel) -> CacheWorld {
        CacheWorld { model, ..CacheWorld::default() }
    }

    /// Counters so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Interns a cache declaration.
    pub fn declare<S: AsRef<str>>(
        &mut self,
        key: &str,
        fallbacks: &[S],
        policy: Policy,
    ) -> CacheUseId {
        let key = self.key(key);
        let fallbacks: Vec<KeyId> =
            fallbacks.iter().take(5).map(|f| self.key(f.as_ref())).collect();
        let (i, old) = self.uses.insert_full((key, fallbacks, policy), ());
        if old.is_none() {
            let ((key, fallbacks, policy), _) = self.uses.get_index(i).expect("just inserted");
            let name = |k: &KeyId| self.keys.get_index(k.0 as usize).expect("interned").0.clone();
            let keys = std::iter::once(key).chain(fallbacks).map(name).collect();
            self.decls.push(Arc::new(CacheDecl { keys, policy: *policy }));
        }
        CacheUseId(i as u32)
    }

    /// A declaration with its names, shared: what a restore or save step carries to its port.
    pub fn decl(&self, u: CacheUseId) -> Arc<CacheDecl> {
        Arc::clone(&self.decls[u.0 as usize])
    }

    /// Interns a key (a copy of the name only the first time: every job names its key).
    fn key(&mut self, k: &str) -> KeyId {
        let i = match self.keys.get_index_of(k) {
            Some(i) => i,
            None => self.keys.insert_full(k.to_owned(), ()).0,
        };
        KeyId(i as u32)
    }

    /// Interns an image name.
    pub fn image(&mut self, name: &str) -> ImageId {
        let i = match self.images.get_index_of(name) {
            Some(i) => i,
            None => self.images.insert_full(name.to_owned(), ()).0,
        };
        ImageId(i as u32)
    }

    /// Whether a declaration pulls and pushes.
    pub fn policy(&self, u: CacheUseId) -> Policy {
        self.uses.get_index(u.0 as usize).expect("declared cache").0.2
    }

    /// The object scope of a runner: 0 when `Shared`, else one per token. GitLab Runner
    /// 19.4 `cache/cache.go` `GetAdapter`: `if !config.GetShared() { namespace =
    /// path.Join("runner", shortToken) }`, so the namespace follows the token, not the host
    /// or the `[[runners]]` entry. Give every runner of a fleet a `token`, or none.
    pub fn scope(runner: RunnerId, c: &RunnerCache) -> u32 {
        if c.shared { 0 } else { c.token.unwrap_or(u32::from(runner.0)) + 1 }
    }

    /// How long pulling `image` (of `size` bytes) takes on `place`, counting the pull; 0
    /// when the policy does not pull it.
    pub fn pull(&mut self, place: Place, image: ImageId, size: u64, policy: PullPolicy) -> u64 {
        let local = self.local.entry(place).or_default();
        let present = !local.images.insert(image);
        let t = self.model.transfer;
        match (policy, present) {
            (PullPolicy::Never, _) | (PullPolicy::IfNotPresent, true) => 0,
            // `always` on a place that has the image: the registry confirms the manifest,
            // no layer moves.
            (PullPolicy::Always, true) => t.registry_latency_ms,
            (_, false) => {
                self.stats.image_pulls += 1;
                self.stats.image_bytes += size;
                t.registry_latency_ms + ms_for(size, t.registry_bytes_per_s)
            }
        }
    }

    /// Restores a cache at `now` (§4.4).
    pub fn restore(&mut self, now: SimTime, at: CacheAt, u: CacheUseId) -> Restore {
        let CacheAt { place, scope, distributed, project, engine_permille } = at;
        let t = self.model.transfer;
        let local_ms = |moves: u64, size: u64| {
            slowed(moves * t.local_latency_ms + ms_for(size, t.local_bytes_per_s), engine_permille)
        };
        let (key, fallbacks, policy) =
            self.uses.get_index(u.0 as usize).expect("declared cache").0.clone();
        if !policy.pulls() {
            return Restore { outcome: Outcome::None, ms: 0, bytes_down: 0 };
        }
        let mut ms = 0;
        for (i, k) in std::iter::once(key).chain(fallbacks.iter().copied()).enumerate() {
            let fallback = i as u8;
            let local = self.local.get(&place).and_then(|l| l.caches.get(&(project, k))).copied();
            if distributed {
                self.stats.gets += 1;
                ms += t.remote_latency_ms;
                let remote = self.live_remote(now, (scope, project, k));
                if let Some(r) = remote {
                    // GitLab Runner 19.4 `commands/helpers/cache_extractor.go`
                    // `isLocalCacheFileUpToDate`: the local archive is kept unless the
                    // object's `Last-Modified` (whole seconds) is after its modification
                    // time. A job's own upload that ends within the second its archive was
                    // written is up to date; one that ends in a later second is downloaded
                    // again, as are newer uploads from elsewhere.
                    if let Some((mtime, size)) = local
                        && mtime >= r.modified
                    {
                        ms += local_ms(1, size);
                        self.stats.hits += 1;
                        return Restore {
                            outcome: Outcome::HitLocal { fallback },
                            ms,
                            bytes_down: 0,
                        };
                    }
                    ms += ms_for(r.size, t.remote_bytes_per_s) + local_ms(2, r.size);
                    self.stats.bytes_down += r.size;
                    self.stats.hits += 1;
                    // The extractor sets the file's times to `Last-Modified` (`os.Chtimes`).
                    self.local
                        .entry(place)
                        .or_default()
                        .caches
                        .insert((project, k), (r.modified, r.size));
                    return Restore {
                        outcome: Outcome::HitRemote { fallback },
                        ms,
                        bytes_down: r.size,
                    };
                }
            }
            if let Some((_, size)) = local {
                ms += local_ms(1, size);
                self.stats.hits += 1;
                return Restore { outcome: Outcome::HitLocal { fallback }, ms, bytes_down: 0 };
            }
        }
        let reason = if distributed && self.expired.contains(&(scope, project, key)) {
            MissReason::Expired
        } else if self.saved.contains(&(scope, project, key)) {
            MissReason::ColdMachine
        } else if self.projects_saved.contains(&(scope, project)) {
            MissReason::KeyChanged
        } else {
            MissReason::NeverUploaded
        };
        let slot = MissReason::ALL.iter().position(|&r| r == reason).expect("listed reason");
        self.stats.misses[slot] += 1;
        Restore { outcome: Outcome::Miss(reason), ms, bytes_down: 0 }
    }

    /// The remote object if it exists and has not expired (an expired one is dropped).
    fn live_remote(&mut self, now: SimTime, rk: RemoteKey) -> Option<Remote> {
        let r = *self.remote.get(&rk)?;
        if let Some(exp) = r.expires
            && exp <= now
        {
            self.remote.remove(&rk);
            self.stats.storage_byte_ms += u128::from(r.size) * u128::from(exp - r.version);
            self.expired.insert(rk);
            return None;
        }
        Some(r)
    }

    /// Saves a cache of `size` bytes after a successful job (§4.5); `changed` says whether
    /// the job changed the cached files.
    pub fn save(
        &mut self,
        now: SimTime,
        at: CacheAt,
        u: CacheUseId,
        size: u64,
        changed: bool,
    ) -> Save {
        let CacheAt { place, scope, distributed, project, engine_permille } = at;
        let (key, _, policy) = self.uses.get_index(u.0 as usize).expect("declared cache").0.clone();
        if !policy.pushes() {
            return Save { ms: 0, bytes_up: 0, publish: None };
        }
        let local = self.local.entry(place).or_default();
        if !changed && local.caches.contains_key(&(project, key)) {
            // GitLab Runner 19.4 `commands/helpers/cache_archiver.go` `Execute`: the archiver
            // enumerates the cached files and compares their times with the archive's
            // (`file_archiver.go` `isFileChanged`, a stat each): "Archive is up to date!",
            // nothing archived or uploaded. That work is inside the `archive_cache` stage,
            // whose cost the container model charges; no archive is read or written. (Until
            // 2026-12-03 this charged one archive operation, which put a calibrated save
            // 0.3 s long at `--speed 4`.)
            self.stats.uploads_skipped += 1;
            return Save { ms: 0, bytes_up: 0, publish: None };
        }
        let t = self.model.transfer;
        let mut ms =
            slowed(2 * t.local_latency_ms + ms_for(size, t.local_bytes_per_s), engine_permille);
        // The archive's modification time: when the archiver finished writing it, before
        // the upload (`commands/helpers/cache_archiver.go`).
        local.caches.insert((project, key), (now + ms, size));
        self.saved.insert((scope, project, key));
        self.projects_saved.insert((scope, project));
        if !distributed {
            return Save { ms, bytes_up: 0, publish: None };
        }
        ms += t.remote_latency_ms + ms_for(size, t.remote_bytes_per_s);
        self.stats.puts += 1;
        self.stats.bytes_up += size;
        Save { ms, bytes_up: size, publish: Some((scope, project, key, size)) }
    }

    /// The upload of a save finished: the object becomes visible (and replaces the old one).
    pub fn publish(
        &mut self,
        now: SimTime,
        (scope, project, key, size): (u32, ProjectId, KeyId, u64),
    ) {
        let rk = (scope, project, key);
        if let Some(old) = self.remote.remove(&rk) {
            let end = old.expires.map_or(now, |e| e.min(now));
            self.stats.storage_byte_ms +=
                u128::from(old.size) * u128::from(end.saturating_since(old.version));
        }
        self.expired.remove(&rk);
        let expires = self.model.expiry_ms.map(|e| now + e);
        let modified = SimTime(now.as_ms() - now.as_ms() % 1000);
        self.remote.insert(rk, Remote { version: now, modified, size, expires });
    }

    /// A place is gone (its machine was removed or lost): its local cache and images too.
    pub fn forget(&mut self, place: Place) {
        self.local.remove(&place);
    }

    /// Counts the storage of every object still stored at the end of the run.
    pub fn finish(&mut self, end: SimTime) -> CacheStats {
        for r in std::mem::take(&mut self.remote).into_values() {
            let stop = r.expires.map_or(end, |e| e.min(end));
            self.stats.storage_byte_ms +=
                u128::from(r.size) * u128::from(stop.saturating_since(r.version));
        }
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const P: ProjectId = ProjectId(1);

    fn at(place: Place, scope: u32, distributed: bool) -> CacheAt {
        CacheAt { place, scope, distributed, project: P, engine_permille: 1000 }
    }

    fn world() -> CacheWorld {
        let model = CacheModel {
            transfer: Transfer {
                remote_bytes_per_s: 1000,
                remote_latency_ms: 10,
                local_bytes_per_s: 10_000,
                local_latency_ms: 0,
                registry_bytes_per_s: 1000,
                registry_latency_ms: 100,
            },
            expiry_ms: Some(100_000),
        };
        CacheWorld::new(model)
    }

    #[test]
    fn fallback_order_and_the_up_to_date_local_copy() {
        let mut w = world();
        let u = w.declare("feature", &["main"], Policy::PullPush);
        let main = w.declare("main", &[] as &[&str], Policy::PullPush);
        let (a, b) = (Place::Machine(MachineId(1)), Place::Machine(MachineId(2)));
        // Nothing yet: both keys 404 (two GETs), never uploaded.
        let r = w.restore(SimTime(0), at(a, 0, true), u);
        assert_eq!((r.outcome, r.ms), (Outcome::Miss(MissReason::NeverUploaded), 20));
        // Machine a saves `main` (1000 bytes): 100 ms archive + 10 ms + 1000 ms upload.
        let s = w.save(SimTime(10), at(a, 0, true), main, 1000, true);
        assert_eq!((s.ms, s.bytes_up), (1110, 1000));
        w.publish(SimTime(1120), s.publish.unwrap());
        // Machine b: `feature` 404s, `main` downloads: 2 GETs + 1000 ms + 100 ms extract.
        let r = w.restore(SimTime(2000), at(b, 0, true), u);
        assert_eq!(
            (r.outcome, r.ms, r.bytes_down),
            (Outcome::HitRemote { fallback: 1 }, 1120, 1000)
        );
        // Again on b: its copy has the object's `Last-Modified` (1120 in whole seconds:
        // 1000) as its modification time: no download.
        let r = w.restore(SimTime(3000), at(b, 0, true), u);
        assert_eq!((r.outcome, r.bytes_down), (Outcome::HitLocal { fallback: 1 }, 0));
        // On a: its archive (written at 110) is older than the object's 1000: download.
        let r = w.restore(SimTime(3000), at(a, 0, true), main);
        assert_eq!(r.outcome, Outcome::HitRemote { fallback: 0 });
    }

    /// GitLab Runner 19.4 `commands/helpers/cache_extractor.go` `checkIfUpToDate` and
    /// `isLocalCacheFileUpToDate` (`!date.After(fi.ModTime())`, the date an HTTP date in
    /// whole seconds, from a presigned GET); `cache_extractor_test.go`
    /// `TestIsLocalCacheFileUpToDate`.
    #[test]
    fn an_own_upload_is_up_to_date_when_it_ends_within_the_archives_second() {
        let mut w = world();
        let u = w.declare("k", &[] as &[&str], Policy::PullPush);
        let a = Place::Machine(MachineId(1));
        // 100 bytes at 5000: archive written at 5010, uploaded by 5120 (Last-Modified 5000).
        let s = w.save(SimTime(5000), at(a, 0, true), u, 100, true);
        assert_eq!(s.ms, 120);
        w.publish(SimTime(5120), s.publish.unwrap());
        let r = w.restore(SimTime(6000), at(a, 0, true), u);
        assert_eq!((r.outcome, r.bytes_down), (Outcome::HitLocal { fallback: 0 }, 0));
        // 1000 bytes at 7500: archive written at 7600, uploaded by 8610 (Last-Modified 8000,
        // after the archive): the job's own object is downloaded again.
        let s = w.save(SimTime(7500), at(a, 0, true), u, 1000, true);
        w.publish(SimTime(7500 + s.ms), s.publish.unwrap());
        let r = w.restore(SimTime(9000), at(a, 0, true), u);
        assert_eq!((r.outcome, r.bytes_down), (Outcome::HitRemote { fallback: 0 }, 1000));
        // Downloaded, its copy dates from 8000: up to date from then on.
        let r = w.restore(SimTime(9500), at(a, 0, true), u);
        assert_eq!(r.outcome, Outcome::HitLocal { fallback: 0 });
    }

    /// GitLab Runner 19.4 `commands/helpers/cache_archiver.go` `Execute`: an archive that is
    /// up to date is only compared with the cached files (`isFileChanged`, a stat each, inside
    /// the `archive_cache` stage): no archive operation is charged, whatever one costs. The
    /// first save archives (two operations, as before the upload) and uploads.
    #[test]
    fn an_up_to_date_archive_costs_no_archive_operation() {
        let mut w = world();
        w.model.transfer.local_latency_ms = 80;
        let u = w.declare("k", &[] as &[&str], Policy::PullPush);
        let a = Place::Machine(MachineId(1));
        let first = w.save(SimTime(0), at(a, 0, true), u, 1000, true);
        assert_eq!(first.ms, 2 * 80 + 100 + 10 + 1000, "archive, then upload");
        let skipped = w.save(SimTime(5_000), at(a, 0, true), u, 1000, false);
        assert_eq!((skipped.ms, skipped.bytes_up), (0, 0));
        assert_eq!(w.stats().uploads_skipped, 1);
    }

    #[test]
    fn unchanged_files_are_not_uploaded_and_local_only_caches_are_cold_elsewhere() {
        let mut w = world();
        let u = w.declare("k", &[] as &[&str], Policy::PullPush);
        let volume = |index| Place::Volume { host: 0, runner: 0, project: P, index };
        let (a, b) = (volume(0), volume(1));
        assert_eq!(w.save(SimTime(0), at(a, 1, false), u, 500, true).ms, 50, "archive only");
        assert_eq!(
            w.save(SimTime(10), at(a, 1, false), u, 500, false).ms,
            0,
            "up to date: skipped"
        );
        assert_eq!(w.stats().uploads_skipped, 1);
        assert_eq!(
            w.restore(SimTime(20), at(a, 1, false), u).outcome,
            Outcome::HitLocal { fallback: 0 }
        );
        assert_eq!(
            w.restore(SimTime(20), at(b, 1, false), u).outcome,
            Outcome::Miss(MissReason::ColdMachine)
        );
        let other = w.declare("k2", &[] as &[&str], Policy::PullPush);
        assert_eq!(
            w.restore(SimTime(20), at(b, 1, false), other).outcome,
            Outcome::Miss(MissReason::KeyChanged)
        );
        w.forget(a);
        assert_eq!(
            w.restore(SimTime(30), at(a, 1, false), u).outcome,
            Outcome::Miss(MissReason::ColdMachine)
        );
    }

    #[test]
    fn objects_expire_and_storage_is_integrated() {
        let mut w = world();
        let u = w.declare("k", &[] as &[&str], Policy::PullPush);
        let a = Place::Machine(MachineId(1));
        let s = w.save(SimTime(0), at(a, 0, true), u, 2000, true);
        w.publish(SimTime(0), s.publish.unwrap());
        let b = Place::Machine(MachineId(2));
        assert_eq!(
            w.restore(SimTime(200_000), at(b, 0, true), u).outcome,
            Outcome::Miss(MissReason::Expired)
        );
        // Stored 2000 bytes for 100 000 ms, then expired.
        assert_eq!(w.finish(SimTime(300_000)).storage_byte_ms, 2000 * 100_000);
    }

    #[test]
    fn scopes_separate_runners_unless_shared() {
        let mut w = world();
        let u = w.declare("k", &[] as &[&str], Policy::PullPush);
        let s = w.save(SimTime(0), at(Place::Machine(MachineId(1)), 1, true), u, 10, true);
        w.publish(SimTime(5), s.publish.unwrap());
        let b = Place::Machine(MachineId(2));
        assert!(
            matches!(w.restore(SimTime(10), at(b, 2, true), u).outcome, Outcome::Miss(_)),
            "other runner's scope"
        );
        assert_eq!(
            w.restore(SimTime(10), at(b, 1, true), u).outcome,
            Outcome::HitRemote { fallback: 0 }
        );
        assert_eq!(
            CacheWorld::scope(RunnerId(3), &RunnerCache { shared: true, ..Default::default() }),
            0
        );
    }

    #[test]
    fn images_are_pulled_per_place_by_policy() {
        let mut w = world();
        let img = w.image("node:20");
        let m = Place::Machine(MachineId(1));
        assert_eq!(w.pull(m, img, 1000, PullPolicy::IfNotPresent), 1100);
        assert_eq!(w.pull(m, img, 1000, PullPolicy::IfNotPresent), 0);
        assert_eq!(w.pull(m, img, 1000, PullPolicy::Always), 100, "present: a manifest check");
        assert_eq!(w.pull(Place::Machine(MachineId(2)), img, 1000, PullPolicy::Always), 1100);
        assert_eq!(w.pull(Place::Host(0), img, 1000, PullPolicy::Never), 0);
        assert_eq!(w.stats().image_pulls, 2);
    }

    use proptest::prelude::*;

    proptest! {
        /// A restore never finds a key before some job saved it, a remote hit never comes
        /// before an upload of that key in that scope ended, and counters add up.
        #[test]
        fn no_hit_before_the_first_save(distributed in any::<bool>(), ops in prop::collection::vec((0u8..4, 0u8..3, 0u8..3, 0u8..2), 1..80)) {
            let mut w = world();
            let keys: Vec<CacheUseId> = (0..3).map(|k| w.declare(&format!("k{k}"), &[] as &[&str], Policy::PullPush)).collect();
            let mut saved_local: BTreeSet<(u8, u8)> = BTreeSet::new(); // (place, key)
            let mut published: BTreeSet<(u8, u8)> = BTreeSet::new(); // (scope, key)
            let mut pending: Vec<(Upload, u8, u8)> = Vec::new();
            for (t, (op, place, key, scope)) in ops.into_iter().enumerate() {
                let now = SimTime(t as u64 * 1000);
                let pl = Place::Machine(MachineId(u32::from(place)));
                match op {
                    0 => {
                        let r = w.restore(now, at(pl, u32::from(scope), distributed), keys[key as usize]);
                        match r.outcome {
                            Outcome::HitRemote { .. } => prop_assert!(published.contains(&(scope, key))),
                            Outcome::HitLocal { .. } => prop_assert!(saved_local.contains(&(place, key))),
                            _ => {}
                        }
                        if matches!(r.outcome, Outcome::HitRemote { .. }) {
                            saved_local.insert((place, key));
                        }
                    }
                    1 => {
                        let s = w.save(now, at(pl, u32::from(scope), distributed), keys[key as usize], 100, true);
                        saved_local.insert((place, key));
                        if let Some(p) = s.publish {
                            pending.push((p, scope, key));
                        }
                    }
                    2 => {
                        for (p, scope, key) in pending.drain(..) {
                            w.publish(now, p);
                            published.insert((scope, key));
                        }
                    }
                    _ => {
                        w.forget(pl);
                        saved_local.retain(|&(p, _)| p != place);
                    }
                }
            }
            let st = w.finish(SimTime(1_000_000));
            prop_assert_eq!(st.bytes_up, st.puts * 100);
            prop_assert!(distributed || (st.gets == 0 && st.puts == 0));
        }
    }
}
