//! The distributed cache port: an S3-compatible server (MinIO, Garage, s3s-fs, AWS S3)
//! through `object_store`, configured from `[runners.cache]` as GitLab Runner reads it.
//!
//! | `[runners.cache(.s3)]` | here |
//! |---|---|
//! | `ServerAddress` (`host:port`) | endpoint `https://host:port`, or `http://` when `Insecure = true`; path-style requests |
//! | `BucketName` | the bucket |
//! | `BucketLocation` | the region (default `us-east-1`) |
//! | `AccessKey` / `SecretKey` / `SessionToken` | credentials; `FLEETSIM_S3_ACCESS_KEY` / `FLEETSIM_S3_SECRET_KEY` override them |
//! | `Path`, `Shared` | the object name: `[Path/][runner/<short-token>/]project/<id>/<key>` (reference §4.2, no `cache.zip` suffix: the code and its tests add none) |
//!
//! Requests have short timeouts and one retry, so a dead server costs a job a few seconds
//! and a recorded miss, never the run.

use std::sync::Arc;
use std::time::Duration;
use std::time::SystemTime;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use crate::LiveError;

/// S3 settings, as read from `[runners.cache]` (secrets already exposed by the caller).
#[derive(Clone, Default)]
pub struct S3Config {
    /// `ServerAddress` (`host:port`); `None` = AWS's endpoint for the region.
    pub server_address: Option<String>,
    /// `BucketName`.
    pub bucket: String,
    /// `BucketLocation`.
    pub region: Option<String>,
    /// `Insecure`: plain HTTP.
    pub insecure: bool,
    /// `AccessKey`.
    pub access_key: Option<String>,
    /// `SecretKey`.
    pub secret_key: Option<String>,
    /// `SessionToken`.
    pub session_token: Option<String>,
    /// `Path`: prefix of object names.
    pub path: String,
    /// `Shared`: no `runner/<short-token>/` segment.
    pub shared: bool,
    /// Where these settings came from, for error messages (`config.toml [[runners]] #1`).
    pub origin: String,
}

impl std::fmt::Debug for S3Config {
    // Never print the secret key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("server_address", &self.server_address)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("insecure", &self.insecure)
            .field("path", &self.path)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// The endpoint URL requests go to.
    pub fn endpoint(&self) -> Option<String> {
        self.server_address.as_ref().map(|a| {
            if a.starts_with("http://") || a.starts_with("https://") {
                a.clone()
            } else {
                format!("{}://{a}", if self.insecure { "http" } else { "https" })
            }
        })
    }

    /// Applies the `FLEETSIM_S3_ACCESS_KEY` / `FLEETSIM_S3_SECRET_KEY` overrides.
    pub fn with_env_credentials(mut self) -> S3Config {
        if let Ok(k) = std::env::var("FLEETSIM_S3_ACCESS_KEY")
            && !k.is_empty()
        {
            self.access_key = Some(k);
        }
        if let Ok(k) = std::env::var("FLEETSIM_S3_SECRET_KEY")
            && !k.is_empty()
        {
            self.secret_key = Some(k);
        }
        self
    }
}

/// The object name GitLab Runner uses for a cache key (reference §4.2):
/// `[Path/][runner/<short-token>/]project/<id>/<key>`. `None` when the key would resolve
/// outside `project/<id>/` (GitLab Runner then skips that cache).
pub fn object_name(
    path: &str,
    shared: bool,
    short_token: &str,
    project: u64,
    key: &str,
) -> Option<String> {
    if key.is_empty() || key.starts_with('/') || key.split('/').any(|p| p == ".." || p == ".") {
        return None;
    }
    let mut name = String::new();
    let prefix = path.trim_matches('/');
    if !prefix.is_empty() {
        name.push_str(prefix);
        name.push('/');
    }
    if !shared {
        name.push_str("runner/");
        name.push_str(short_token);
        name.push('/');
    }
    name.push_str(&format!("project/{project}/{key}"));
    Some(name)
}

/// An S3 request that failed (counted in the report; the job goes on with a miss).
#[derive(Debug, Clone)]
pub struct S3Error(pub String);

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The bucket, as one run uses it.
#[derive(Debug, Clone)]
pub struct S3Port {
    store: Arc<dyn ObjectStore>,
    config: S3Config,
}

impl S3Port {
    /// Builds the client (no request yet). `timeout` bounds each request.
    pub fn new(config: S3Config, timeout: Duration) -> Result<S3Port, LiveError> {
        let store = build_store(&config, timeout)?;
        Ok(S3Port { store, config })
    }

    /// The settings.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// The client (tests read the bucket with a client of their own).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// Checks within seconds that the server answers, the credentials are accepted, the
    /// bucket exists and can be written: lists the prefix, writes and deletes a probe object.
    pub async fn preflight(&self, run_id: &str) -> Result<(), LiveError> {
        let c = &self.config;
        let what = format!(
            "the S3 cache of {} (ServerAddress {}, BucketName {:?})",
            c.origin,
            c.server_address.as_deref().unwrap_or("AWS"),
            c.bucket
        );
        let fail = |e: String| LiveError::S3(format!("{what}: {e}"));
        let prefix = ObjectPath::from(c.path.trim_matches('/'));
        self.store.list_with_delimiter(Some(&prefix)).await.map_err(|e| fail(explain(&e)))?;
        let probe = object_path(&format!("{}fleetsim-probe-{run_id}", prefix_slash(&c.path)));
        self.store
            .put(&probe, PutPayload::from_static(b"probe"))
            .await
            .map_err(|e| fail(format!("cannot write: {}", explain(&e))))?;
        self.store
            .delete(&probe)
            .await
            .map_err(|e| fail(format!("cannot delete: {}", explain(&e))))?;
        Ok(())
    }

    /// Downloads an object: `Ok(None)` when it does not exist.
    pub async fn get(&self, name: &str) -> Result<Option<Bytes>, S3Error> {
        match self.store.get(&object_path(name)).await {
            Ok(r) => r.bytes().await.map(Some).map_err(|e| S3Error(explain(&e))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(S3Error(explain(&e))),
        }
    }

    /// Downloads an object unless the local copy is up to date, as GitLab Runner's
    /// `cache-extractor` does (`commands/helpers/cache_extractor.go`
    /// `checkIfUpToDate`: a GET whose `Last-Modified` is not after the local file's
    /// modification time is closed without reading the body).
    pub async fn get_unless_up_to_date(
        &self,
        name: &str,
        local: Option<SystemTime>,
    ) -> Result<Fetched, S3Error> {
        match self.store.get(&object_path(name)).await {
            Ok(r) => {
                let modified = SystemTime::from(r.meta.last_modified);
                if local.is_some_and(|l| modified <= l) {
                    return Ok(Fetched::UpToDate);
                }
                let bytes = r.bytes().await.map_err(|e| S3Error(explain(&e)))?;
                Ok(Fetched::Downloaded { bytes, modified })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(Fetched::Missing),
            Err(e) => Err(S3Error(explain(&e))),
        }
    }

    /// Uploads an object.
    pub async fn put(&self, name: &str, data: Bytes) -> Result<(), S3Error> {
        self.store
            .put(&object_path(name), PutPayload::from_bytes(data))
            .await
            .map(|_| ())
            .map_err(|e| S3Error(explain(&e)))
    }
}

/// What [`S3Port::get_unless_up_to_date`] found.
#[derive(Debug)]
pub enum Fetched {
    /// No such object.
    Missing,
    /// The object is not newer than the local copy: nothing was downloaded.
    UpToDate,
    /// Downloaded.
    Downloaded {
        /// The archive.
        bytes: Bytes,
        /// Its `Last-Modified` (GitLab sets the local copy's modification time to it).
        modified: SystemTime,
    },
}

fn prefix_slash(path: &str) -> String {
    let p = path.trim_matches('/');
    if p.is_empty() { String::new() } else { format!("{p}/") }
}

/// An object path taken as written (GitLab's names are already sanitized; `from` would
/// re-encode characters such as `%`).
fn object_path(name: &str) -> ObjectPath {
    ObjectPath::parse(name).unwrap_or_else(|_| ObjectPath::from(name))
}

/// object_store's errors, shortened to what an operator needs.
fn explain(e: &object_store::Error) -> String {
    let s = e.to_string();
    if s.contains("NoSuchBucket") {
        "the bucket does not exist".into()
    } else if s.contains("InvalidAccessKeyId")
        || s.contains("SignatureDoesNotMatch")
        || s.contains("403")
    {
        format!(
            "the credentials were refused (AccessKey/SecretKey, or FLEETSIM_S3_ACCESS_KEY/FLEETSIM_S3_SECRET_KEY): {s}"
        )
    } else {
        s
    }
}

fn build_store(c: &S3Config, timeout: Duration) -> Result<Arc<dyn ObjectStore>, LiveError> {
    let origin = &c.origin;
    if c.bucket.is_empty() {
        return Err(LiveError::Input(format!("{origin}: [runners.cache.s3] BucketName is empty")));
    }
    let (Some(access), Some(secret)) = (&c.access_key, &c.secret_key) else {
        return Err(LiveError::Input(format!(
            "{origin}: [runners.cache.s3] needs AccessKey and SecretKey (or set \
             FLEETSIM_S3_ACCESS_KEY and FLEETSIM_S3_SECRET_KEY); live mode does not use IAM roles"
        )));
    };
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(&c.bucket)
        .with_region(c.region.clone().unwrap_or_else(|| "us-east-1".into()))
        .with_access_key_id(access)
        .with_secret_access_key(secret)
        .with_virtual_hosted_style_request(false)
        .with_allow_http(c.insecure)
        .with_client_options(
            ClientOptions::new()
                .with_timeout(timeout)
                .with_connect_timeout(timeout.min(Duration::from_secs(3)))
                .with_allow_http(c.insecure),
        )
        .with_retry(RetryConfig {
            max_retries: 1,
            retry_timeout: timeout,
            ..RetryConfig::default()
        });
    if let Some(t) = &c.session_token {
        b = b.with_token(t);
    }
    if let Some(e) = c.endpoint() {
        b = b.with_endpoint(e);
    }
    let store =
        b.build().map_err(|e| LiveError::Input(format!("{origin}: [runners.cache.s3]: {e}")))?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_follow_gitlab() {
        // The cases of GitLab Runner's cache/cache_test.go.
        assert_eq!(
            object_name("", false, "longtoken", 10, "key").unwrap(),
            "runner/longtoken/project/10/key"
        );
        assert_eq!(object_name("", true, "longtoken", 10, "key").unwrap(), "project/10/key");
        assert_eq!(
            object_name("/prefix/", false, "abcdefghi", 7, "main-1-protected").unwrap(),
            "prefix/runner/abcdefghi/project/7/main-1-protected"
        );
        assert_eq!(object_name("", true, "t", 1, "a/b").unwrap(), "project/1/a/b");
        assert!(object_name("", true, "t", 1, "../escape").is_none());
        assert!(object_name("", true, "t", 1, "a/../../b").is_none());
    }

    #[test]
    fn endpoint_scheme_follows_insecure() {
        let mut c =
            S3Config { server_address: Some("127.0.0.1:9000".into()), ..Default::default() };
        assert_eq!(c.endpoint().unwrap(), "https://127.0.0.1:9000");
        c.insecure = true;
        assert_eq!(c.endpoint().unwrap(), "http://127.0.0.1:9000");
    }

    #[test]
    fn debug_hides_secrets() {
        let c = S3Config { secret_key: Some("hunter2".into()), ..Default::default() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
