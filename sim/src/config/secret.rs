//! [`Secret`]: a string that must never be printed (runner tokens, S3 keys, secret
//! `MachineOptions`). `Debug` and `Display` print `[redacted]`; there is deliberately no
//! `Serialize` impl, so a secret cannot end up in a report by accident. Code that really needs
//! the value (the live harness signing an S3 request) calls [`Secret::expose`].

use std::fmt;

use serde::{Deserialize, Deserializer};

/// What `Debug` and `Display` print instead of a secret value.
pub const REDACTED: &str = "[redacted]";

/// A credential read from `config.toml`. Prints as `[redacted]`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself. Call it only where the value is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The short form of a runner token that GitLab Runner puts into cache object names
    /// (`runner/<short-token>/project/<id>/<key>`, reference §4.2): the first 9 characters after
    /// the known prefixes are removed, as `helpers/shorten_token.go` does. Its prefix rules,
    /// applied in this order, each once, at the start only: `glrt-` optionally followed by a
    /// partition prefix `t1_`/`t2_`/`t3_`, or a lone partition prefix, or `glrtr-`; then
    /// `glcbt-`; then an old registration-token prefix `GR` plus 7 hex digits.
    ///
    /// The short token is not secret enough to matter on its own, but it is still derived from
    /// the token: print it only where GitLab itself would (object paths).
    pub fn short_token(&self) -> String {
        let mut rest: &str = &self.0;
        rest = strip_runner_prefix(rest);
        rest = rest.strip_prefix("glcbt-").unwrap_or(rest);
        rest = strip_registration_prefix(rest);
        rest.chars().take(SHORT_TOKEN_LEN).collect()
    }
}

/// Length of the short token (`shortTokenLen` in `helpers/shorten_token.go`; older docs say 8).
const SHORT_TOKEN_LEN: usize = 9;

/// `^glrt-(t[123]_)?|^t[123]_|^glrtr-`, first alternative that matches.
fn strip_runner_prefix(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix("glrt-") {
        return strip_partition_prefix(rest).unwrap_or(rest);
    }
    if let Some(rest) = strip_partition_prefix(s) {
        return rest;
    }
    s.strip_prefix("glrtr-").unwrap_or(s)
}

/// `^t[123]_`
fn strip_partition_prefix(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if b.len() >= 3 && b[0] == b't' && matches!(b[1], b'1'..=b'3') && b[2] == b'_' {
        Some(&s[3..])
    } else {
        None
    }
}

/// `^GR[0-9A-Fa-f]{7}`
fn strip_registration_prefix(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 9 && b.starts_with(b"GR") && b[2..9].iter().all(u8::is_ascii_hexdigit) {
        &s[9..]
    } else {
        s
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new("306c411ef28850993d24faa3a05204");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some([redacted])");
        assert_eq!(s.expose(), "306c411ef28850993d24faa3a05204");
    }

    #[test]
    fn short_token_follows_gitlab_runner() {
        // Cases from GitLab Runner's helpers/shorten_token_test.go.
        let cases = [
            ("short", "short"),
            ("veryverylongtoken", "veryveryl"),
            ("t1_t9Wkyj-HGRkqQ-VWTGAr", "t9Wkyj-HG"),
            ("t2_t9Wkyj-HGRkqQ-VWTGAr", "t9Wkyj-HG"),
            ("t3_t9Wkyj-HGRkqQ-VWTGAr", "t9Wkyj-HG"),
            ("t4_t9Wkyj-HGRkqQ-VWTGAr", "t4_t9Wkyj"),
            ("glrt-t9Wkyj-HGRkqQ-VWTGAr", "t9Wkyj-HG"),
            ("glrt-t1_t9Wkyj-HGRkqQ-VWTGAr", "t9Wkyj-HG"),
            ("glrtr-t9Wkyj-HGRkqQ-VWTGAr", "t9Wkyj-HG"),
            ("glrtr-t1_t9Wkyj-HGRkqQ-VWTGAr", "t1_t9Wkyj"),
            ("glcbt-t9Wkyj-HGRkqQ-VWTGAr", "t9Wkyj-HG"),
            ("glcbt-t2_t9Wkyj-HGRkqQ-VWTGAr", "t2_t9Wkyj"),
            ("GR1348941Z196cJVywzZpx_Ki_Cn2", "Z196cJVyw"),
            ("GR134894-196cJVywzZpx_Ki_Cn2", "GR134894-"),
            // The seed config's legacy token.
            ("306c411ef28850993d24faa3a05204", "306c411ef"),
        ];
        for (token, want) in cases {
            assert_eq!(Secret::new(token).short_token(), want, "token {token}");
        }
    }
}
