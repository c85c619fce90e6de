//! Runner labels, `[labels]` (defaults for every runner) and `[runners.labels]`, checked as
//! GitLab Runner 19.4 checks them before it starts: `(*Config).Validate` and
//! `(*RunnerConfig).Validate` in `common/config.go`, with the patterns and the limit of
//! `common/labels.go`. A config that fails them is refused (`invalid config: validating …`),
//! so fleetsim refuses it too, naming the line and the key.
//!
//! fleetsim does not use labels otherwise: they only tag the runner's metrics and jobs.

use std::collections::BTreeMap;

use toml::Spanned;

use super::validate::Ctx;
use crate::input_error::InputError;

/// `maxAllowedNumberOfLabels`: computed labels (global defaults merged with the runner's
/// own) per runner.
pub const MAX_LABELS: usize = 32;

/// `labelKeyAllowedPattern`, for messages.
const KEY_PATTERN: &str = "^[a-zA-Z0-9_][a-zA-Z0-9._-]{2,64}$";
/// `labelValueAllowedPattern`, for messages.
const VALUE_PATTERN: &str = "^[a-zA-Z0-9._-]{1,256}$";

/// The labels of one table as written: name to value (with the value's place in the file).
pub type RawLabels = BTreeMap<String, Spanned<String>>;

fn label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Whether `key` matches `labelKeyAllowedPattern`: a letter, digit or `_`, then 2 to 64 of
/// letters, digits, `.`, `_`, `-`.
pub fn key_allowed(key: &str) -> bool {
    let mut chars = key.chars();
    let Some(first) = chars.next() else { return false };
    let rest = chars.as_str();
    (first.is_ascii_alphanumeric() || first == '_')
        && (2..=64).contains(&rest.len())
        && rest.chars().all(label_char)
}

/// Whether `value` matches `labelValueAllowedPattern`: 1 to 256 letters, digits, `.`, `_`, `-`.
pub fn value_allowed(value: &str) -> bool {
    (1..=256).contains(&value.len()) && value.chars().all(label_char)
}

/// `(Labels).validatePatterns` for the table at `table` (`labels` or `runners[N].labels`).
/// GitLab Runner walks a Go map (random order); fleetsim reports the first bad label in name
/// order, so the message is the same on every run.
pub(super) fn check_patterns(
    ctx: &Ctx<'_>,
    table: &str,
    labels: &RawLabels,
) -> Result<(), InputError> {
    for (key, value) in labels {
        if !key_allowed(key) {
            return Err(ctx.error(
                value.span(),
                &format!("{table}.{key}"),
                format!(
                    "invalid label key {key:?}: it must match {KEY_PATTERN}; GitLab Runner \
                     refuses to start with it (common/labels.go validatePatterns)"
                ),
            ));
        }
        if !value_allowed(value.get_ref()) {
            return Err(ctx.error(
                value.span(),
                &format!("{table}.{key}"),
                format!(
                    "invalid label value {:?}: it must match {VALUE_PATTERN}; GitLab Runner \
                     refuses to start with it (common/labels.go validatePatterns)",
                    value.get_ref()
                ),
            ));
        }
    }
    Ok(())
}

/// `(*RunnerSettings).ComputeLabels` then `(Labels).validateCount`: the runner's labels
/// merged over the global ones must be at most [`MAX_LABELS`].
pub(super) fn check_count(
    ctx: &Ctx<'_>,
    table: &str,
    global: Option<&RawLabels>,
    own: Option<&RawLabels>,
) -> Result<(), InputError> {
    let mut computed: Vec<&str> = global.into_iter().flatten().map(|(k, _)| k.as_str()).collect();
    computed.extend(own.into_iter().flatten().map(|(k, _)| k.as_str()));
    computed.sort_unstable();
    computed.dedup();
    if computed.len() <= MAX_LABELS {
        return Ok(());
    }
    let message = format!(
        "{} labels with the global [labels] merged in: GitLab Runner allows at most \
         {MAX_LABELS} and refuses to start (common/labels.go validateCount)",
        computed.len()
    );
    // Point at the runner's own first label, or else at the global first label.
    let at = own.and_then(|l| l.values().next()).or_else(|| global.and_then(|l| l.values().next()));
    Err(match at {
        Some(v) => ctx.error(v.span(), table, message),
        None => InputError::file(ctx.file, message).key(table),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_common_labels_go() {
        // Key: first character class, then 2..=64 more.
        assert!(key_allowed("env"));
        assert!(key_allowed("_ab"));
        assert!(!key_allowed("ab"), "3 characters at least");
        assert!(!key_allowed(".ab"), "no leading dot");
        assert!(!key_allowed("test/key"));
        assert!(key_allowed(&"a".repeat(65)));
        assert!(!key_allowed(&"a".repeat(66)));
        // Value: 1..=256 of the class.
        assert!(value_allowed("1"));
        assert!(!value_allowed(""));
        assert!(!value_allowed("test/value"));
        assert!(value_allowed(&"v".repeat(256)));
        assert!(!value_allowed(&"v".repeat(257)));
    }
}
