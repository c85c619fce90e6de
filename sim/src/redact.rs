//! What is secret in fleetsim's inputs, and how a value is redacted before it can surface in a
//! message, a replay line, a report or a sweep table. This is the one place these rules live:
//! every reader and writer asks this module.
//!
//! What counts as secret follows what GitLab Runner and docker-machine treat as credentials:
//!
//! - `config.toml` keys GitLab Runner masks when it prints its configuration — GitLab Runner
//!   19.4 `common/config.go` `(*RunnerConfig).mask`: `token`, `[runners.kubernetes]
//!   bearer_token`, `[runners.cache.s3] AccessKey`/`SecretKey`/`SessionToken`,
//!   `[runners.cache.gcs] PrivateKey`, `[runners.cache.azure] AccountKey`; plus `sentry_dsn`
//!   (a DSN carries its key) and any key whose name says it holds a credential
//!   ([`is_secret_key`]).
//! - `environment`: every entry is treated as secret, whatever its name. Job variables set
//!   there are how runners get registry and cloud credentials, and names are no reliable
//!   guide (`DOCKER_AUTH_CONFIG`, `AWS_SECRET_ACCESS_KEY`, `NPM_CONFIG__AUTH`), so the rule is
//!   the simplest safe one: no `environment` value is ever printed.
//! - `MachineOptions`: the docker-machine driver flags that carry credentials
//!   ([`is_secret_machine_option`]), in every spelling GitLab Runner passes on
//!   (`--amazonec2-secret-key=X`, `amazonec2-secret-key=X`, `amazonec2-secret-key X`).
//! - URLs with userinfo (`https://user:pass@host`): the userinfo is dropped, as GitLab Runner
//!   19.4 `helpers/url/clean_url.go` `CleanURL` does (`u.User = nil`) before logging a URL.
//!
//! Redacted values print as [`REDACTED`], the same text as [`crate::config::Secret`].

pub use crate::config::secret::REDACTED;

/// Normalises a key for matching: lower case, without `-`, `_` and leading dashes.
fn squash(key: &str) -> String {
    key.trim_start_matches('-')
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Words that, inside a normalised key name, mark a credential.
const CREDENTIAL_WORDS: [&str; 10] = [
    "secret",
    "password",
    "passwd",
    "token",
    "credential",
    "accesskey",
    "apikey",
    "privatekey",
    "accountkey",
    "dsn",
];

/// True when the last key of a TOML key path (`runners[0].cache.s3.SecretKey`, `token`,
/// `runners[1].environment`) names a value that must never be printed. `MachineOptions` and
/// `environment` are secret as a whole at this level: a replay line or an error cannot show
/// part of them without parsing them, so it shows none.
pub fn is_secret_key(path: &str) -> bool {
    let last = last_key(path);
    let squashed = squash(last);
    squashed == "environment"
        || squashed == "machineoptions"
        || CREDENTIAL_WORDS.iter().any(|w| squashed.contains(w))
}

/// The last key of a dotted path, without indexes or quotes: `runners[0].environment[2]` →
/// `environment`, `runners[0].labels."a.b"` → `a.b`.
fn last_key(path: &str) -> &str {
    let mut p = path.trim();
    while let Some(stripped) = p.strip_suffix(']') {
        match stripped.rfind('[') {
            Some(i) => p = &stripped[..i],
            None => break,
        }
    }
    if let Some(stripped) = p.strip_suffix('"')
        && let Some(i) = stripped.rfind('"')
    {
        return &stripped[i + 1..];
    }
    p.rsplit('.').next().unwrap_or(p)
}

/// True for docker-machine driver flags whose values are credentials. The rule covers every
/// driver docker-machine and GitLab's fork ship: a flag name containing a credential word
/// (`amazonec2-secret-key`, `amazonec2-session-token`, `azure-client-secret`,
/// `digitalocean-access-token`, `openstack-password`, `vmwarevsphere-password`,
/// `hetzner-api-token`, `linode-token`), ending in `-key` (`amazonec2-access-key`,
/// `exoscale-api-key`, `exoscale-api-secret-key`, `vultr-api-key`, `packet-api-key`,
/// `cloudstack-api-key`, `cloudstack-secret-key`, `softlayer-api-key`, `rackspace-api-key`)
/// or in `-pass` (`linode-root-pass`), or naming a JSON key or auth file
/// (`google-auth-encoded-json`). Leading dashes and case do not matter. `generic-ssh-key`
/// (a path) is caught too: over-redacting a path costs nothing.
pub fn is_secret_machine_option(key: &str) -> bool {
    let key = key.trim().trim_start_matches('-').to_ascii_lowercase();
    let squashed = squash(&key);
    CREDENTIAL_WORDS.iter().any(|w| squashed.contains(w))
        || key.ends_with("-key")
        || key.ends_with("_key")
        || key.ends_with("-pass")
        || key.contains("auth")
        || key.contains("json")
}

/// Splits a `MachineOptions` entry into its flag name and value, in the spellings
/// docker-machine accepts: `key=value`, `--key=value`, `key value`. The name keeps its
/// leading dashes as written; `None` for a bare flag.
pub fn split_machine_option(option: &str) -> (&str, Option<&str>) {
    let option = option.trim();
    let eq = option.find('=');
    let ws = option.find(char::is_whitespace);
    let at = match (eq, ws) {
        (Some(e), Some(w)) => Some(e.min(w)),
        (e, w) => e.or(w),
    };
    match at {
        Some(i) => {
            let value = option[i..].trim_start_matches(|c: char| c == '=' || c.is_whitespace());
            (&option[..i], Some(value))
        }
        None => (option, None),
    }
}

/// A `MachineOptions` entry as it may be printed: credentials become `key=[redacted]`.
pub fn machine_option(option: &str) -> String {
    match split_machine_option(option) {
        (key, Some(_)) if is_secret_machine_option(key) => format!("{key}={REDACTED}"),
        (key, None) if is_secret_machine_option(key) => key.to_owned(),
        _ => url_userinfo(option),
    }
}

/// Drops the userinfo of every URL in `text` (`https://user:pass@host/x` →
/// `https://[redacted]@host/x`), as GitLab Runner's `CleanURL` drops `u.User`; fleetsim keeps
/// a marker so the reader sees that something was there.
pub fn url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let after = i + 3;
        out.push_str(&rest[..after]);
        rest = &rest[after..];
        let authority_end = rest
            .find(|c: char| {
                matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            out.push_str(REDACTED);
            rest = &rest[at..];
        }
    }
    out.push_str(rest);
    out
}

/// A `KEY=VALUE` argument (`--set`, one point of `--vary`) as it may be printed: the value of
/// a secret key is [`REDACTED`]; other values lose URL userinfo and secret machine options.
pub fn assignment(arg: &str) -> String {
    match arg.split_once('=') {
        Some((key, _)) if is_secret_key(key) => format!("{key}={REDACTED}"),
        Some((key, value)) => format!("{key}={}", value_text(value)),
        None => url_userinfo(arg),
    }
}

/// A non-secret key's value as it may be printed: URL userinfo dropped. A value that looks
/// like a credential-bearing machine option (`amazonec2-secret-key=X` given to some other
/// key) is redacted too.
pub fn value_text(value: &str) -> String {
    let unquoted = value.trim().trim_matches(|c| c == '"' || c == '\'');
    match split_machine_option(unquoted) {
        (key, Some(_)) if key.contains('-') && is_secret_machine_option(key) => {
            format!("{key}={REDACTED}")
        }
        _ => url_userinfo(value),
    }
}

/// One value of a `--vary` axis, as it may appear in `sweep.csv`, `sweep.html` and
/// `plan.csv`: a secret key's values become `[redacted]#N` (N = its 1-based position on the
/// axis) so that points stay distinguishable without showing the value.
pub fn axis_value(key: &str, index: usize, value: &str) -> String {
    if is_secret_key(key) { format!("{REDACTED}#{}", index + 1) } else { value_text(value) }
}

/// Removes the quoted value from a serde "invalid type" message for a secret key:
/// `invalid type: string "X", expected a sequence` → `invalid type: a string, expected an
/// array`. The value kinds are serde's `Unexpected` names.
pub fn type_message(message: &str) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return if message.contains('"') || message.contains('`') {
            "invalid value (not shown: the key holds a credential)".to_owned()
        } else {
            message.to_owned()
        };
    };
    let expected = rest.find(", expected").map_or("", |i| &rest[i..]);
    let kind = ["string", "integer", "floating point", "boolean", "character", "sequence", "map"]
        .into_iter()
        .find(|k| rest.starts_with(k))
        .unwrap_or("value");
    format!("invalid type: {kind} (value not shown: the key holds a credential){expected}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_gitlab_runner_masks_are_secret() {
        // GitLab Runner 19.4 common/config.go (*RunnerConfig).mask.
        for key in [
            "runners[0].token",
            "runners[0].kubernetes.bearer_token",
            "runners[0].cache.s3.AccessKey",
            "runners[0].cache.s3.SecretKey",
            "runners[0].cache.s3.SessionToken",
            "runners[0].cache.gcs.PrivateKey",
            "runners[0].cache.azure.AccountKey",
            "runners[0].cache.SecretKey",
            "sentry_dsn",
            "runners[0].environment",
            "runners[0].environment[3]",
            "runners[0].machine.MachineOptions",
            "runners[0].machine.MachineOptions[0]",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in
            ["concurrent", "runners[0].limit", "runners[0].url", "runners[0].machine.IdleCount"]
        {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn every_driver_credential_flag_is_secret() {
        for key in [
            "amazonec2-access-key",
            "amazonec2-secret-key",
            "amazonec2-session-token",
            "--amazonec2-secret-key",
            "exoscale-api-key",
            "exoscale-api-secret-key",
            "vultr-api-key",
            "packet-api-key",
            "cloudstack-api-key",
            "cloudstack-secret-key",
            "softlayer-api-key",
            "digitalocean-access-token",
            "google-auth-encoded-json",
            "azure-client-secret",
            "openstack-password",
            "vmwarevsphere-password",
            "hetzner-api-token",
            "linode-root-pass",
        ] {
            assert!(is_secret_machine_option(key), "{key}");
        }
        for key in ["amazonec2-instance-type", "amazonec2-region", "amazonec2-keypair-name"] {
            assert!(!is_secret_machine_option(key), "{key}");
        }
    }

    #[test]
    fn machine_options_in_every_spelling() {
        assert_eq!(machine_option("amazonec2-secret-key=S1"), "amazonec2-secret-key=[redacted]");
        assert_eq!(
            machine_option("--amazonec2-access-key=S2"),
            "--amazonec2-access-key=[redacted]"
        );
        assert_eq!(machine_option("amazonec2-secret-key S3"), "amazonec2-secret-key=[redacted]");
        assert_eq!(machine_option("amazonec2-region=eu-west-1"), "amazonec2-region=eu-west-1");
        assert_eq!(split_machine_option("a b=c"), ("a", Some("b=c")));
        assert_eq!(split_machine_option("flag"), ("flag", None));
    }

    #[test]
    fn urls_lose_their_userinfo() {
        assert_eq!(
            url_userinfo("see https://u:p@gitlab.example.com/x?y=1 and http://h/"),
            "see https://[redacted]@gitlab.example.com/x?y=1 and http://h/"
        );
        assert_eq!(url_userinfo("https://gitlab.com"), "https://gitlab.com");
    }

    #[test]
    fn assignments_and_axis_values() {
        assert_eq!(assignment("runners[0].token=glrt-abc"), "runners[0].token=[redacted]");
        assert_eq!(assignment("concurrent=8"), "concurrent=8");
        assert_eq!(
            assignment("runners[0].url=\"https://a:b@gitlab.com\""),
            "runners[0].url=\"https://[redacted]@gitlab.com\""
        );
        assert_eq!(axis_value("runners[0].token", 1, "x"), "[redacted]#2");
        assert_eq!(axis_value("concurrent", 0, "4"), "4");
    }

    #[test]
    fn type_messages_drop_the_value() {
        assert_eq!(
            type_message("invalid type: string \"amazonec2-secret-key=X\", expected a sequence"),
            "invalid type: string (value not shown: the key holds a credential), expected a sequence"
        );
        assert!(
            !type_message("invalid type: integer `12345`, expected a string").contains("12345")
        );
    }
}
