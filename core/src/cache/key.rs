//! Cache-key sanitising, as GitLab Runner 19.4 does it before it names a cache archive or
//! object: `cache/cachekey/cachekey.go` `Sanitize`, called by `shells/abstract.go`
//! `newCacheConfig` unless `FF_HASH_CACHE_KEYS` is on (then the key is hashed as written, and
//! two keys are one cache only when they are equal).
//!
//! ```text
//!  raw key ─► decode %2f %2F ─► "/" , %2e %2E ─► "." , "\" ─► "/"   (one pass, left to right)
//!          ─► path.Clean("/" + key)      (".." never climbs above the virtual root)
//!          ─► drop the leading "/", trim trailing whitespace off the rightmost segments,
//!             dropping each that becomes empty
//!          ─► "" ⇒ error "cache key %q could not be sanitized"
//! ```
//!
//! `newCacheConfig` then: an error, or a sanitised key different from the raw one, is written
//! to the job log as a warning; an empty result is "Skipping cache extraction due to empty
//! cache key" (and "Skipping cache archiving …" on the way out), so the job has no cache for
//! that key. A fallback key that cannot be sanitised is skipped alone
//! (`extractCacheOrFallbackCachesWrapper`).

use std::borrow::Cow;

/// How the runners treat cache keys: `FF_HASH_CACHE_KEYS` (`helpers/featureflags/flags.go`,
/// default false).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyHandling {
    /// The default: [`sanitize`] every key (`cachekey.Sanitize`).
    #[default]
    Sanitize,
    /// `FF_HASH_CACHE_KEYS = true`: the key is hashed as written (SHA-256), never
    /// sanitised; a hash names one key, so fleetsim uses the raw key as the cache's name.
    Hash,
}

/// A key `Sanitize` refuses: it resolves to nothing (`"."`, `".."`, `"/"`, `" "`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsanitizable(pub String);

impl std::fmt::Display for Unsanitizable {
    /// The error text of `cachekey.Sanitize` (Go's `%q` for the key).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cache key {:?} could not be sanitized", self.0)
    }
}

/// `cache/cachekey/cachekey.go` `Sanitize`: the key GitLab Runner 19.4 uses for `key`.
/// `Ok("")` for the empty key (as in Go); borrowed when the key is already clean.
pub fn sanitize(key: &str) -> Result<Cow<'_, str>, Unsanitizable> {
    if key.is_empty() {
        return Ok(Cow::Borrowed(""));
    }
    if is_clean(key) {
        return Ok(Cow::Borrowed(key));
    }
    resolve(key)
}

/// `Sanitize` step by step, for a non-empty key.
fn resolve(key: &str) -> Result<Cow<'_, str>, Unsanitizable> {
    // `normaliser.Replace`: a `strings.NewReplacer` scans left to right and replaces at each
    // position; no pattern is a prefix of another, so the order of patterns does not matter.
    let mut decoded = String::with_capacity(key.len());
    let mut rest = key;
    while let Some(c) = rest.chars().next() {
        let (replacement, len) = if c == '\\' {
            ('/', 1)
        } else if rest.starts_with("%2f") || rest.starts_with("%2F") {
            ('/', 3)
        } else if rest.starts_with("%2e") || rest.starts_with("%2E") {
            ('.', 3)
        } else {
            (c, c.len_utf8())
        };
        decoded.push(replacement);
        rest = &rest[len..];
    }
    // `path.Clean("/" + …)`: for a rooted path, drop empty and "." elements, and let ".."
    // remove the element before it (nothing at the root).
    let mut parts: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    // Trim trailing whitespace (`unicode.IsSpace`, the White_Space property, as
    // `char::is_whitespace`) off the rightmost segments, dropping each that becomes empty.
    while let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(char::is_whitespace);
        if !last.is_empty() {
            break;
        }
        parts.pop();
    }
    if parts.is_empty() {
        return Err(Unsanitizable(key.to_owned()));
    }
    let joined = parts.join("/");
    Ok(if joined == key { Cow::Borrowed(key) } else { Cow::Owned(joined) })
}

/// Whether [`sanitize`] leaves `key` as it is, decided without allocating: no `\`, no `%2`
/// (an encoded `/` or `.`, or not: the slow path decides), no empty, `.` or `..` segment
/// (so `path.Clean` changes nothing) and no whitespace at the end.
fn is_clean(key: &str) -> bool {
    !key.contains('\\')
        && !key.contains("%2")
        && !key.ends_with(char::is_whitespace)
        && key.split('/').all(|s| !matches!(s, "" | "." | ".."))
}

/// The key a runner uses under `handling`: [`sanitize`] by default, the key as written with
/// `FF_HASH_CACHE_KEYS`. `Err` is a key the runner skips.
pub fn runner_key(key: &str, handling: KeyHandling) -> Result<Cow<'_, str>, Unsanitizable> {
    match handling {
        KeyHandling::Sanitize => sanitize(key),
        KeyHandling::Hash => Ok(Cow::Borrowed(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The allocation-free shortcut agrees with the step-by-step `Sanitize`, and a
        /// sanitised key without a `.` or `..` segment is a fixed point
        /// (`TestSanitizeIdempotent`'s property, on any such key; see the test below for the
        /// keys where it does not hold).
        #[test]
        fn the_clean_shortcut_agrees_with_the_full_sanitiser(key in "[a./\\\\ %2eEfF5c\\t]{1,12}") {
            let full = resolve(&key);
            prop_assert_eq!(&sanitize(&key), &full);
            if let Ok(k) = full
                && k.split('/').all(|s| s != "." && s != "..")
            {
                prop_assert_eq!(sanitize(&k), Ok(Cow::Borrowed(k.as_ref())));
            }
        }
    }

    /// Go's `Sanitize` trims trailing whitespace after `path.Clean`, so a segment `.\t` or
    /// `.. ` comes out as `.` or `..`: `".\t"` gives `"."` (not an error), `"a/.. "` gives
    /// `"a/.."`, and sanitising either again gives an error. fleetsim keeps the
    /// quirk (the key is what the runner would use); `TestSanitizeInvariants` and
    /// `TestSanitizeIdempotent` have no such input.
    #[test]
    fn trailing_whitespace_is_trimmed_after_the_dot_segments_are_resolved() {
        assert_eq!(sanitize(".\t"), Ok(Cow::Borrowed(".")));
        assert_eq!(sanitize("a/.. "), Ok(Cow::Owned::<str>("a/..".into())));
        assert!(sanitize(".").is_err());
        assert!(sanitize("a/..").is_err());
    }
}
