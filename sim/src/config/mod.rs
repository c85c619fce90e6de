//! Reading GitLab Runner's `config.toml` the way GitLab Runner reads it.
//!
//! ```text
//!  config.toml ──[overrides: --set KEY=VALUE, via toml_edit]──▶ TOML text
//!  TOML text   ──[raw: serde + serde_ignored, toml::Spanned]──▶ RawConfig + unknown keys
//!  RawConfig   ──[validate: defaults and checks]──────────────▶ RunnerConfig + warnings
//! ```
//!
//! - [`raw`]: serde types with GitLab Runner's own key names (PascalCase in
//!   `[runners.machine]` and `[runners.cache]`), every key optional.
//! - [`validated`]: the domain types the rest of fleetsim sees ([`RunnerConfig`],
//!   [`RunnerEntry`], …), and GitLab Runner's defaults, documented.
//! - `validate.rs`: the checks, one function per section, that turn a raw file into the
//!   domain types with the defaults applied.
//! - `go_duration.rs`: Go's duration parser ([`parse_go_duration_ms`]).
//! - [`secret`]: [`Secret`], a string that prints as `[redacted]`.
//! - [`overrides`]: `--set KEY=VALUE` ([`parse_override`], [`apply_override`]).
//!
//! Unknown keys are warnings, not errors, as GitLab Runner ignores them too. A value of the
//! wrong type, and a value GitLab Runner would refuse, is an [`InputError`] naming the file,
//! line, column and key. When overrides were applied, errors and warnings still point at the
//! lines of the file as written; an error in a value that came from `--set` names `--set`.

mod go_duration;
pub mod labels;
pub mod overrides;
pub mod raw;
pub mod secret;
mod validate;
pub mod validated;

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, TableLike, Value};

pub use overrides::{
    Override, PathSegment, SET_PSEUDO_FILE, apply_override, format_path, parse_key_path,
    parse_override,
};
pub use secret::Secret;
pub use validated::{
    AutoscalerPolicy, AutoscalerSettings, AzureSettings, CacheSettings, CacheType,
    ConnectorSettings, DockerSettings, Executor, GcsSettings, MachineAutoscaling, MachineOption,
    MachineOptionValue, MachineOptions, MachineSettings, PullPolicy, RunnerConfig, RunnerEntry,
    S3Settings, ScaleThrottle, parse_go_duration_ms, parse_go_duration_nanos,
};

use crate::input_error::{InputError, line_column};
use raw::RawConfig;
use validate::Ctx;

/// A `config.toml` that loaded, with the warnings to show the user.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    /// The validated configuration.
    pub config: RunnerConfig,
    /// Warnings, in this order: unknown keys, as
    /// ``FILE: unknown key `runners[0].docker.foo` (ignored)``, then the others, as
    /// ``FILE:LINE:COL: `KEY`: message`` (the [`InputError`] format).
    pub warnings: Vec<String>,
}

/// Reads and validates `config.toml` text. `file` is only used in messages.
///
/// # Errors
/// An [`InputError`] naming the file, the line and column where known, and the key.
pub fn load_config_str(text: &str, file: &Path) -> Result<LoadedConfig, InputError> {
    load_config_str_with_overrides(text, file, &[])
}

/// Reads and validates the `config.toml` at `path`.
///
/// # Errors
/// As [`load_config_str`], and when the file cannot be read.
pub fn load_config_file(path: &Path) -> Result<LoadedConfig, InputError> {
    load_config_file_with_overrides(path, &[])
}

/// Reads the `config.toml` at `path`, applies `overrides`, and validates the result.
///
/// # Errors
/// As [`load_config_str_with_overrides`], and when the file cannot be read.
pub fn load_config_file_with_overrides(
    path: &Path,
    overrides: &[Override],
) -> Result<LoadedConfig, InputError> {
    let text = crate::input_file::read_text(path, "the file")?;
    load_config_str_with_overrides(&text, path, overrides)
}

/// Applies `overrides` in order to `text` (with `toml_edit`, which keeps the other lines as
/// written), then reads and validates the result.
///
/// # Errors
/// As [`load_config_str`]; also when an override cannot be applied (file `--set`). An error in
/// a value that an override set names the pseudo-file `--set` and the override; other errors
/// name the line and column in `text`.
pub fn load_config_str_with_overrides(
    text: &str,
    file: &Path,
    overrides: &[Override],
) -> Result<LoadedConfig, InputError> {
    let (config, unknown, notes) = load_edited(text, file, overrides)?;
    Ok(finish(config, &unknown, notes, file))
}

/// A `config.toml` written inline in a scenario (`[runner.config]`), given as `text` (the
/// table serialised again): as [`load_config_str_with_overrides`], but errors and warnings
/// name the scenario file, the key as written there (`runner.config.runners[0].limit`) and
/// its line and column in `scenario_text` (the scenario as written); where the key is not in
/// the scenario (a missing key), the nearest table around it.
///
/// # Errors
/// As [`load_config_str_with_overrides`].
pub fn load_inline_config(
    text: &str,
    scenario: &Path,
    scenario_text: &str,
    table_key: &str,
    overrides: &[Override],
) -> Result<LoadedConfig, InputError> {
    let pseudo = PathBuf::from(format!("{}#{table_key}", scenario.display()));
    let relocate = |e: InputError| -> InputError {
        if e.file != pseudo {
            return e; // an override's error names the override
        }
        let key =
            e.key.as_ref().map_or_else(|| table_key.to_owned(), |k| format!("{table_key}.{k}"));
        let e = InputError { file: scenario.to_path_buf(), key: Some(key.clone()), ..e };
        locate_key_or_parent(e, scenario_text, &key)
    };
    let (config, unknown, notes) = load_edited(text, &pseudo, overrides).map_err(relocate)?;
    let mut warnings: Vec<String> = unknown
        .iter()
        .map(|path| relocate(InputError::file(&pseudo, "unknown key (ignored)").key(path)))
        .map(|e| e.to_string())
        .collect();
    warnings.extend(notes.into_iter().map(|e| relocate(e).to_string()));
    Ok(LoadedConfig { config, warnings })
}

/// Where the keys of a TOML input (`config.toml`, a scenario) are written: for errors found
/// after it was read (when a scenario is built), so that they too name the file, the line
/// and the key, or the `--set` that set the value.
#[derive(Debug, Clone)]
pub struct KeySource {
    /// The file (the scenario, for a config written inline as `[runner.config]`).
    pub file: PathBuf,
    /// That file's text as written.
    pub text: String,
    /// The keys' prefix in that file: empty, or `runner.config.` for an inline config.
    pub prefix: String,
    /// The `--set` overrides applied to it.
    pub overrides: Vec<Override>,
}

impl KeySource {
    /// An error at `key` (a dotted path such as `runners[0].executor`, without the prefix):
    /// names the override that set it, else the file with the line and column of the key
    /// (or of the table around it, when the key is not written).
    pub fn error(&self, key: &str, message: impl Into<String>) -> InputError {
        if let Some(o) = self.overrides.iter().rev().find(|o| o.covers(key)) {
            return o.error(key, message);
        }
        let full = format!("{}{key}", self.prefix);
        let error = InputError::file(&self.file, message).key(full.clone());
        locate_key_or_parent(error, &self.text, &full)
    }
}

/// Applies the overrides, then both phases; errors and notes point at `text` as written (or
/// name the override that set the value).
fn load_edited(
    text: &str,
    file: &Path,
    overrides: &[Override],
) -> Result<(RunnerConfig, Vec<String>, Vec<InputError>), InputError> {
    if overrides.is_empty() {
        return load_text(text, file);
    }
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let message = format!("invalid TOML: {}", e.message().trim());
        match e.span() {
            Some(span) => InputError::toml_syntax(file, text, &message, span.start),
            None => InputError::file(file, message),
        }
    })?;
    for o in overrides {
        apply_override(&mut doc, o)?;
    }
    let edited = doc.to_string();
    let remap = |e: InputError| remap_to_original(e, file, text, overrides);
    let (config, unknown, notes) = load_text(&edited, file).map_err(remap)?;
    let notes = notes.into_iter().map(remap).collect();
    Ok((config, unknown, notes))
}

fn finish(
    config: RunnerConfig,
    unknown: &[String],
    notes: Vec<InputError>,
    file: &Path,
) -> LoadedConfig {
    let mut warnings: Vec<String> = unknown
        .iter()
        .map(|path| format!("{}: unknown key `{path}` (ignored)", file.display()))
        .collect();
    warnings.extend(notes.iter().map(InputError::to_string));
    LoadedConfig { config, warnings }
}

/// Both phases on one text: returns the config, the unknown keys and the other warnings.
fn load_text(
    text: &str,
    file: &Path,
) -> Result<(RunnerConfig, Vec<String>, Vec<InputError>), InputError> {
    let deserializer = toml::de::Deserializer::parse(text).map_err(|e| {
        let message = format!("invalid TOML: {}", e.message().trim());
        match e.span() {
            Some(span) => InputError::toml_syntax(file, text, &message, span.start),
            None => InputError::file(file, message),
        }
    })?;
    let mut unknown = Vec::new();
    let raw: RawConfig = serde_ignored::deserialize(deserializer, |path| {
        unknown.push(ignored_path(&path));
    })
    .map_err(|e| type_error(&e, text, file))?;
    let mut ctx = Ctx::new(text, file);
    let config = validate::validate(&raw, &mut ctx)?;
    Ok((config, unknown, ctx.notes))
}

/// A serde error from phase one (a value of the wrong type), with line, column and the key
/// found from the error's span.
fn type_error(e: &toml::de::Error, text: &str, file: &Path) -> InputError {
    let message = e
        .message()
        .trim()
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a float")
        .replace("expected u64", "expected a non-negative integer")
        .replace("invalid type: map", "invalid type: table")
        .replace("expected a sequence", "expected an array");
    let key = e.span().and_then(|span| key_path_at(text, span.start));
    // A value of the wrong type under a credential key is not quoted back (nor where the key
    // is unknown): `token = 12345`, `MachineOptions = "amazonec2-secret-key=X"`.
    let message = match &key {
        Some(k) if !crate::redact::is_secret_key(k) => crate::redact::url_userinfo(&message),
        _ => crate::redact::type_message(&message),
    };
    let mut error = InputError::file(file, message);
    if let Some(span) = e.span() {
        error = error.at_offset(text, span.start);
    }
    if let Some(key) = key {
        error = error.key(key);
    }
    error
}

/// `serde_ignored`'s path as `runners[0].docker.foo`.
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    fn walk(path: &serde_ignored::Path<'_>, out: &mut Vec<PathSegment>) {
        use serde_ignored::Path as P;
        match path {
            P::Root => {}
            P::Seq { parent, index } => {
                walk(parent, out);
                out.push(PathSegment::Index(*index));
            }
            P::Map { parent, key } => {
                walk(parent, out);
                out.push(PathSegment::Key(key.clone()));
            }
            P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
                walk(parent, out);
            }
        }
    }
    let mut segments = Vec::new();
    walk(path, &mut segments);
    format_path(&segments)
}

/// An error found in the edited text, moved back to the text as written: errors in a value
/// an override set name the override (`--set KEY=VALUE`, [`Override::error`]); others get
/// the line and column of the same key in the original text (or none, when the key is not
/// there). Errors about another file than `file` are returned as they are.
pub(crate) fn remap_to_original(
    error: InputError,
    file: &Path,
    original: &str,
    overrides: &[Override],
) -> InputError {
    if error.file != file || overrides.is_empty() {
        return error;
    }
    let Some(key) = error.key.clone() else {
        return InputError { line: None, column: None, ..error };
    };
    if let Some(o) = overrides.iter().rev().find(|o| o.covers(&key)) {
        return o.error(key, error.message);
    }
    if error.line.is_none() {
        return error;
    }
    locate_key(error, original, &key)
}

/// Sets the line and column of `error` to those of `key` (a dotted path) in `text`; when the
/// key is not there, the line of the nearest table or value
/// around it (for a missing key: the table it is missing from).
pub fn locate_key_or_parent(error: InputError, text: &str, key: &str) -> InputError {
    let Ok(mut path) = parse_key_path(key) else {
        return InputError { line: None, column: None, ..error };
    };
    while !path.is_empty() {
        if let Some(span) = span_of(text, &path) {
            let (line, column) = line_column(text, span.start);
            return InputError { line: Some(line), column: Some(column), ..error };
        }
        path.pop();
    }
    InputError { line: None, column: None, ..error }
}

/// Sets the line and column of `error` to those of `key` (a dotted path) in `text`, or clears
/// them when the key is not there.
pub(crate) fn locate_key(error: InputError, text: &str, key: &str) -> InputError {
    match parse_key_path(key).ok().and_then(|path| span_of(text, &path)) {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            InputError { line: Some(line), column: Some(column), ..error }
        }
        None => InputError { line: None, column: None, ..error },
    }
}

fn span_contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

/// The dotted path of the deepest key or value whose span contains byte `offset`.
pub(crate) fn key_path_at(text: &str, offset: usize) -> Option<String> {
    fn visit_table(
        table: &dyn TableLike,
        offset: usize,
        path: &mut Vec<PathSegment>,
        best: &mut Option<Vec<PathSegment>>,
    ) {
        for (key, item) in table.iter() {
            path.push(PathSegment::Key(key.to_owned()));
            if span_contains(table.key(key).and_then(toml_edit::Key::span), offset) {
                *best = Some(path.clone());
            }
            visit_item(item, offset, path, best);
            path.pop();
        }
    }
    fn visit_item(
        item: &Item,
        offset: usize,
        path: &mut Vec<PathSegment>,
        best: &mut Option<Vec<PathSegment>>,
    ) {
        match item {
            Item::None => {}
            Item::Value(value) => visit_value(value, offset, path, best),
            Item::Table(table) => {
                if span_contains(table.span(), offset) {
                    *best = Some(path.clone());
                }
                visit_table(table, offset, path, best);
            }
            Item::ArrayOfTables(tables) => {
                for (i, table) in tables.iter().enumerate() {
                    path.push(PathSegment::Index(i));
                    if span_contains(table.span(), offset) {
                        *best = Some(path.clone());
                    }
                    visit_table(table, offset, path, best);
                    path.pop();
                }
            }
        }
    }
    fn visit_value(
        value: &Value,
        offset: usize,
        path: &mut Vec<PathSegment>,
        best: &mut Option<Vec<PathSegment>>,
    ) {
        if span_contains(value.span(), offset) {
            *best = Some(path.clone());
        }
        match value {
            Value::Array(array) => {
                for (i, element) in array.iter().enumerate() {
                    path.push(PathSegment::Index(i));
                    visit_value(element, offset, path, best);
                    path.pop();
                }
            }
            Value::InlineTable(table) => visit_table(table, offset, path, best),
            _ => {}
        }
    }
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut best = None;
    visit_table(doc.as_table(), offset, &mut Vec::new(), &mut best);
    best.map(|path| format_path(&path))
}

/// The span of the value (or table) at `path` in `text`.
pub(crate) fn span_of(text: &str, path: &[PathSegment]) -> Option<Range<usize>> {
    enum Node<'a> {
        Item(&'a Item),
        Value(&'a Value),
        Table(&'a toml_edit::Table),
    }
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut node = Node::Table(doc.as_table());
    for segment in path {
        node = match (node, segment) {
            (Node::Table(t) | Node::Item(Item::Table(t)), PathSegment::Key(k)) => {
                Node::Item(t.get(k)?)
            }
            (
                Node::Item(Item::Value(Value::InlineTable(t))) | Node::Value(Value::InlineTable(t)),
                PathSegment::Key(k),
            ) => Node::Value(t.get(k)?),
            (Node::Item(Item::ArrayOfTables(a)), PathSegment::Index(i)) => Node::Table(a.get(*i)?),
            (
                Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)),
                PathSegment::Index(i),
            ) => Node::Value(a.get(*i)?),
            _ => return None,
        };
    }
    match node {
        Node::Item(item) => item.span(),
        Node::Value(value) => value.span(),
        Node::Table(table) => table.span(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_SINGLE: &str = include_str!("../../../scenarios/seed-single-server.config.toml");
    const SEED_AUTOSCALE: &str = include_str!("../../../scenarios/seed-autoscale.config.toml");

    /// The warnings other than `checkConfigConcurrency`'s, which GitLab Runner 19.4 logs for
    /// every config that leaves `request_concurrency` at 1 (`sim/tests/it/go_multi.rs`).
    fn others(warnings: &[String]) -> Vec<String> {
        warnings.iter().filter(|w| !w.contains("Long polling issues detected")).cloned().collect()
    }

    /// Every secret value in the two seed configs.
    const SEED_SECRETS: [&str; 4] = [
        "306c411ef28850993d24faa3a05204",
        "9197e25967da8c39bc0a826f148464",
        "AKIAI5U",
        "uVHmnvl0Kz3sOR1",
    ];

    fn load(text: &str) -> Result<LoadedConfig, InputError> {
        load_config_str(text, Path::new("config.toml"))
    }

    fn load_with(text: &str, sets: &[&str]) -> Result<LoadedConfig, InputError> {
        let overrides: Vec<Override> = sets.iter().map(|s| parse_override(s).unwrap()).collect();
        load_config_str_with_overrides(text, Path::new("config.toml"), &overrides)
    }

    /// The line (1-based) of the first occurrence of `needle` in `text`.
    fn line_of(text: &str, needle: &str) -> usize {
        let offset = text.find(needle).unwrap();
        line_column(text, offset).0
    }

    #[test]
    fn seed_single_server_loads() {
        let loaded = load(SEED_SINGLE).unwrap();
        assert_eq!(others(&loaded.warnings), Vec::<String>::new());
        // GitLab Runner 19.4 warns about the seed's request_concurrency = 1 at start.
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("Request bottleneck: 1 runners"));
        let c = &loaded.config;
        assert_eq!(c.concurrent, 5);
        assert_eq!(c.check_interval_ms, 3_000, "check_interval = 0 falls back to 3 s");
        assert_eq!(c.runners.len(), 1);
        let r = &c.runners[0];
        assert_eq!(r.name, "uengine docker runner:shared-socket");
        assert_eq!(r.url, "http://gitlab.uengine.io");
        assert_eq!(r.token.expose(), "306c411ef28850993d24faa3a05204");
        assert_eq!(r.token.short_token(), "306c411ef");
        assert_eq!(r.executor, Executor::Docker);
        assert_eq!((r.limit, r.request_concurrency, r.strict_check_interval), (0, 1, false));
        assert_eq!(r.docker.image.as_deref(), Some("docker:latest"));
        assert!(!r.docker.privileged && !r.docker.disable_cache);
        assert_eq!(
            r.docker.volumes,
            ["/root/m2:/root/.m2", "/var/run/docker.sock:/var/run/docker.sock", "/cache"]
        );
        assert_eq!(r.docker.pull_policy, [PullPolicy::Always]);
        assert_eq!(r.cache, CacheSettings::default(), "an empty [runners.cache] is no cache");
        assert!(r.machine.is_none() && r.autoscaler.is_none());
    }

    #[test]
    fn seed_autoscale_loads() {
        let loaded = load(SEED_AUTOSCALE).unwrap();
        let c = &loaded.config;
        assert_eq!(c.concurrent, 12);
        assert_eq!(c.check_interval_ms, 3_000);
        let r = &c.runners[0];
        assert_eq!(r.executor, Executor::DockerMachine);
        assert_eq!(r.limit, 20);
        assert_eq!(r.url, "http://172.31.15.249");
        assert_eq!(r.docker.volumes, ["/var/run/docker.sock:/var/run/docker.sock", "/cache"]);
        let m = r.machine.as_ref().unwrap();
        assert_eq!((m.idle_count, m.idle_time_s), (1, 1_800));
        assert_eq!((m.idle_count_min, m.idle_scale_factor, m.max_builds), (0, 0.0, 0));
        assert_eq!(m.machine_driver, "amazonec2");
        assert_eq!(m.machine_name, "runner-%s");
        assert_eq!(m.machine_options.len(), 7);
        assert_eq!(m.machine_options.instance_type(), Some("t2.medium"));
        assert_eq!(m.machine_options.region(), Some("ap-northeast-2"));
        assert_eq!(m.machine_options.plain("amazonec2-vpc-id"), Some("vpc-e8f91b81"));
        match m.machine_options.get("amazonec2-secret-key") {
            Some(MachineOptionValue::Secret(s)) => assert_eq!(s.expose(), "uVHmnvl0Kz3sOR1*******"),
            other => panic!("secret key not a Secret: {other:?}"),
        }
        assert_eq!(m.max_removal_attempts, 30);
        assert!(m.autoscaling.is_empty());
        assert_eq!(r.cache.cache_type, CacheType::S3);
        let s3 = r.cache.s3.as_ref().unwrap();
        assert_eq!(s3.bucket_name, "uengine-gitlab-runner");
        assert_eq!(s3.server_address.as_deref(), Some("s3.amazonaws.com"));
        assert_eq!(s3.bucket_location.as_deref(), Some("ap-northeast-2"));
        assert_eq!(s3.access_key.as_ref().map(Secret::expose), Some("AKIAI5U*******"));
        assert_eq!(s3.secret_key.as_ref().map(Secret::expose), Some("uVHmnvl0Kz3sOR1*******"));
        assert!(!s3.insecure && !r.cache.shared && r.cache.path.is_empty());
        // The only warning besides checkConfigConcurrency's: the flat S3 keys are the pre-12.0
        // form.
        let warnings = others(&loaded.warnings);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("config.toml: `runners[0].cache`: "));
        assert!(warnings[0].contains("12.0"));
        assert_eq!(loaded.warnings.len(), 2, "and the request bottleneck");
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        for text in [SEED_SINGLE, SEED_AUTOSCALE] {
            let loaded = load(text).unwrap();
            let shown = format!("{loaded:?} {loaded:#?} {:?}", loaded.warnings);
            let raw: RawConfig = toml::from_str(text).unwrap();
            let shown_raw = format!("{raw:?}");
            for secret in SEED_SECRETS {
                assert!(!shown.contains(secret), "{secret} leaked: {shown}");
                assert!(!shown_raw.contains(secret), "{secret} leaked from raw: {shown_raw}");
            }
            assert!(shown.contains("[redacted]"));
        }
        // Errors and warnings do not quote secret values either.
        let bad = SEED_AUTOSCALE.replace("limit = 20", "limit = -20");
        let err = load(&bad).unwrap_err();
        for secret in SEED_SECRETS {
            assert!(!err.to_string().contains(secret));
        }
    }

    #[test]
    fn unknown_keys_are_warnings_with_their_path() {
        let text = SEED_AUTOSCALE
            .replace("    shm_size = 0\n", "    shm_size = 0\n    foo = 1\n")
            .replace("check_interval = 0\n", "check_interval = 0\nbogus = \"x\"\n")
            .replace("    IdleTime = 1800\n", "    IdleTime = 1800\n    idlecount = 3\n");
        let loaded = load(&text).unwrap();
        let unknown: Vec<_> =
            loaded.warnings.iter().filter(|w| w.contains("unknown key")).cloned().collect();
        assert_eq!(
            unknown,
            [
                "config.toml: unknown key `bogus` (ignored)",
                "config.toml: unknown key `runners[0].docker.foo` (ignored)",
                "config.toml: unknown key `runners[0].machine.idlecount` (ignored)",
            ]
        );
        assert_eq!(loaded.config.runners[0].machine.as_ref().unwrap().idle_count, 1);
        let text = "concurrent = 1\n[[runners]]\nexecutor = \"docker+machine\"\ntoken = \"t\"\nurl = \"u\"\n[runners.machine]\n[[runners.machine.autoscaling]]\nPeriods = [\"* * 9-17 * * mon-fri *\"]\nIdelCount = 5\n";
        let loaded = load(text).unwrap();
        assert_eq!(
            others(&loaded.warnings),
            ["config.toml: unknown key `runners[0].machine.autoscaling[0].IdelCount` (ignored)"]
        );
    }

    #[test]
    fn concurrent_zero_is_an_error_on_line_1() {
        let text = SEED_SINGLE.replace("concurrent = 5", "concurrent = 0");
        let err = load(&text).unwrap_err();
        assert_eq!((err.line, err.column), (Some(1), Some(14)));
        assert_eq!(err.key.as_deref(), Some("concurrent"));
        assert!(err.message.contains("must be ≥ 1"), "{err}");
        assert!(err.message.contains("refuses"), "{err}");
        let err = load(&SEED_SINGLE.replace("concurrent = 5", "concurrent = -3")).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("concurrent"));
        let err = load(&SEED_SINGLE.replace("concurrent = 5\n", "")).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("concurrent"));
        assert!(err.message.contains("missing"), "{err}");
    }

    #[test]
    fn wrong_types_name_line_column_and_key() {
        let text = SEED_AUTOSCALE.replace("limit = 20", "limit = \"20\"");
        let err = load(&text).unwrap_err();
        assert_eq!(err.line, Some(line_of(&text, "limit = ")));
        assert_eq!(err.column, Some(11));
        assert_eq!(err.key.as_deref(), Some("runners[0].limit"));
        assert!(err.message.contains("expected an integer"), "{err}");

        let text = SEED_SINGLE.replace("\"/cache\"]", "7]");
        let err = load(&text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners[0].docker.volumes[2]"));
        assert_eq!(err.line, Some(line_of(&text, "volumes")));

        let text = SEED_SINGLE.replace("privileged = false", "privileged = \"no\"");
        let err = load(&text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners[0].docker.privileged"));
        assert_eq!(err.line, Some(line_of(&text, "privileged")));

        let text = SEED_AUTOSCALE.replace("IdleCount = 1", "IdleCount = 1.5");
        let err = load(&text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners[0].machine.IdleCount"));
        assert_eq!(
            err.to_string().split(':').nth(1),
            Some(line_of(&text, "IdleCount").to_string().as_str())
        );
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = load("concurrent = 5\n[[runners]\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.starts_with("invalid TOML"), "{err}");
        let err = load("concurrent = 5\nconcurrent = 6\n").unwrap_err();
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn runner_level_validation() {
        let err = load("concurrent = 2\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners"));
        assert!(err.message.contains("no [[runners]] entries"));

        let text = SEED_AUTOSCALE.replace("limit = 20", "limit = -1");
        let err = load(&text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners[0].limit"));
        assert_eq!(err.line, Some(line_of(&text, "limit = ")));

        let text = SEED_SINGLE
            .replace("check_interval = 0", "check_interval = 10")
            .replace("executor = \"docker\"", "executor = \"ssh\"\n  request_concurrency = 0");
        let c = load(&text).unwrap().config;
        assert_eq!(c.check_interval_ms, 10_000);
        assert_eq!(c.runners[0].executor, Executor::Other("ssh".into()));
        assert_eq!(c.runners[0].request_concurrency, 1);
        let text = SEED_SINGLE.replace("check_interval = 0", "check_interval = -5");
        assert_eq!(load(&text).unwrap().config.check_interval_ms, 3_000);
    }

    #[test]
    fn pull_policy_is_a_string_or_a_list() {
        let with = |policy: &str| {
            load(
                &SEED_SINGLE
                    .replace("shm_size = 0", &format!("shm_size = 0\n    pull_policy = {policy}")),
            )
        };
        assert_eq!(
            with("\"never\"").unwrap().config.runners[0].docker.pull_policy,
            [PullPolicy::Never]
        );
        assert_eq!(
            with("[\"if-not-present\", \"always\"]").unwrap().config.runners[0].docker.pull_policy,
            [PullPolicy::IfNotPresent, PullPolicy::Always]
        );
        let err = with("\"sometimes\"").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners[0].docker.pull_policy"));
        assert!(err.line.is_some());
        let err = with("3").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners[0].docker.pull_policy"));
    }

    #[test]
    fn cache_s3_section_and_legacy_keys() {
        let text = r#"concurrent = 1
[[runners]]
  url = "https://gitlab.example.com"
  token = "glrt-t1_abcdefghijklmnop"
  executor = "docker"
  [runners.cache]
    Type = "s3"
    Path = "ci"
    Shared = true
    MaxUploadedArchiveSize = 1000
    BucketName = "flat"
    [runners.cache.s3]
      ServerAddress = "minio:9005"
      AccessKey = "minio-access"
      SecretKey = "minio-secret"
      SessionToken = "minio-session"
      BucketName = "runner"
      Insecure = true
      AuthenticationType = "access-key"
      RoleARN = "arn:aws:iam::1:role/x"
    [runners.cache.gcs]
    [runners.cache.azure]
"#;
        let loaded = load(text).unwrap();
        let r = &loaded.config.runners[0];
        assert_eq!(r.token.short_token(), "abcdefghi");
        let c = &r.cache;
        assert_eq!(
            (c.cache_type, c.path.as_str(), c.shared, c.max_uploaded_archive_size),
            (CacheType::S3, "ci", true, 1000)
        );
        let s3 = c.s3.as_ref().unwrap();
        assert_eq!(s3.bucket_name, "runner", "the [runners.cache.s3] section wins over flat keys");
        assert_eq!(s3.server_address.as_deref(), Some("minio:9005"));
        assert!(s3.insecure);
        assert_eq!(s3.role_arn.as_deref(), Some("arn:aws:iam::1:role/x"));
        assert_eq!(s3.session_token.as_ref().map(Secret::expose), Some("minio-session"));
        assert!(c.gcs.is_some() && c.azure.is_some());
        let shown = format!("{loaded:?}");
        for secret in ["minio-access", "minio-secret", "minio-session", "abcdefghijklmnop"] {
            assert!(!shown.contains(secret));
        }
        let only_section = text.replace("    BucketName = \"flat\"\n", "");
        assert!(others(&load(&only_section).unwrap().warnings).is_empty());

        let unknown_type =
            SEED_SINGLE.replace("[runners.cache]", "[runners.cache]\n    Type = \"S3\"");
        let loaded = load(&unknown_type).unwrap();
        assert_eq!(loaded.config.runners[0].cache.cache_type, CacheType::None);
        assert!(loaded.warnings[0].contains("unknown cache Type \"S3\""), "{:?}", loaded.warnings);
    }

    const REGISTERED: &str = r#"concurrent = 4
check_interval = 0
shutdown_timeout = 0
connection_max_age = "15m0s"
log_level = "info"

[session_server]
  session_timeout = 1800

[[runners]]
  name = "fleet"
  url = "https://gitlab.com"
  id = 123456
  token = "glrt-t2_SECRETSECRETSECRET"
  token_obtained_at = 2024-05-01T10:00:00Z
  token_expires_at = 0001-01-01T00:00:00Z
  executor = "docker-autoscaler"
  limit = 10
  request_concurrency = 4
  strict_check_interval = true
  output_limit = 8192
  environment = ["API_TOKEN=hunter2"]
  [runners.feature_flags]
    FF_USE_ADAPTIVE_REQUEST_CONCURRENCY = true
  [runners.docker]
    image = "busybox:latest"
    pull_policy = "if-not-present"
  [runners.cache]
    MaxUploadedArchiveSize = 0
  [runners.autoscaler]
    plugin = "aws:latest"
    capacity_per_instance = 2
    max_use_count = 5
    max_instances = 10
    instance_acquire_timeout = "1m30s"
    update_interval = "30s"
    delete_instances_on_shutdown = true
    [runners.autoscaler.plugin_config]
      name = "my-asg"
      region = "eu-west-1"
    [runners.autoscaler.connector_config]
      username = "ec2-user"
      password = "pa55word"
      use_external_addr = true
      timeout = "10s"
    [runners.autoscaler.scale_throttle]
      limit = -1
      burst = 4
    [[runners.autoscaler.policy]]
      idle_count = 4
      idle_time = "20m0s"
      scale_factor = 0.5
      scale_factor_limit = 6
    [[runners.autoscaler.policy]]
      periods = ["* 9-17 * * mon-fri"]
      timezone = "Europe/Berlin"
      idle_count = 0
      idle_time = "0"
      preemptive_mode = true
"#;

    #[test]
    fn docker_autoscaler_config_as_register_writes_it() {
        let loaded = load(REGISTERED).unwrap();
        // The office-hours policy asks for preemptive mode with nothing idle: valid, but it
        // requests no job while it applies, and the reader says so.
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(
            loaded.warnings[0].contains("`runners[0].autoscaler.policy[1].preemptive_mode`"),
            "{:?}",
            loaded.warnings
        );
        let c = &loaded.config;
        assert_eq!((c.concurrent, c.shutdown_timeout_ms), (4, 30_000));
        assert_eq!(c.connection_max_age_ms, Some(900_000));
        let r = &c.runners[0];
        assert_eq!(r.executor, Executor::DockerAutoscaler);
        assert_eq!((r.limit, r.request_concurrency, r.strict_check_interval), (10, 4, true));
        assert_eq!(r.token.short_token(), "SECRETSEC");
        assert_eq!(r.docker.pull_policy, [PullPolicy::IfNotPresent]);
        let a = r.autoscaler.as_ref().unwrap();
        assert_eq!(a.plugin, "aws:latest");
        assert_eq!((a.capacity_per_instance, a.max_use_count, a.max_instances), (2, 5, 10));
        assert_eq!(a.instance_acquire_timeout_ms, 90_000);
        assert_eq!(a.update_interval_ms, 30_000);
        assert_eq!(a.update_interval_when_expecting_ms, 2_000);
        assert_eq!(a.failure_threshold, 3);
        assert!(a.delete_instances_on_shutdown && a.reservation_throttling);
        assert_eq!(a.scale_throttle, ScaleThrottle { limit_per_s: None, burst: Some(4) });
        assert_eq!(a.plugin_config.0["region"].as_str(), Some("eu-west-1"));
        assert_eq!(a.connector.username.as_deref(), Some("ec2-user"));
        assert_eq!(a.connector.timeout_ms, Some(10_000));
        assert!(a.connector.use_external_addr);
        assert_eq!(a.policies.len(), 2);
        let p = &a.policies[0];
        assert_eq!(p.periods, ["* * * * *"]);
        assert_eq!(
            (p.idle_count, p.idle_time_ms, p.scale_factor, p.scale_factor_limit),
            (4, 1_200_000, 0.5, 6)
        );
        assert!(p.preemptive_mode, "preemptive_mode defaults to idle_count > 0");
        let p = &a.policies[1];
        assert_eq!(p.periods, ["* 9-17 * * mon-fri"]);
        assert_eq!(p.timezone.as_deref(), Some("Europe/Berlin"));
        assert_eq!((p.idle_count, p.idle_time_ms), (0, 0));
        assert!(p.preemptive_mode);
        let shown = format!("{loaded:?}");
        for secret in ["SECRETSECRETSECRET", "pa55word", "hunter2"] {
            assert!(!shown.contains(secret), "{secret} leaked");
        }
        let raw: RawConfig = toml::from_str(REGISTERED).unwrap();
        assert!(!format!("{raw:?}").contains("hunter2"));
    }

    #[test]
    fn bad_durations_name_line_and_key() {
        let text = REGISTERED.replace("idle_time = \"20m0s\"", "idle_time = \"20 minutes\"");
        let err = load(&text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners[0].autoscaler.policy[0].idle_time"));
        assert_eq!(err.line, Some(line_of(&text, "idle_time = \"20 minutes\"")));
        assert_eq!(err.column, Some(19));
        assert!(err.message.contains("invalid duration"), "{err}");

        let text = REGISTERED.replace("update_interval = \"30s\"", "update_interval = \"-30s\"");
        let err = load(&text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners[0].autoscaler.update_interval"));
        assert!(err.message.contains("negative"), "{err}");

        let text = REGISTERED.replace("idle_time = \"20m0s\"", "idle_time = true");
        let err = load(&text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners[0].autoscaler.policy[0].idle_time"));

        // An integer is nanoseconds, as in GitLab Runner: accepted with a warning.
        let text = REGISTERED.replace("idle_time = \"20m0s\"", "idle_time = 1800");
        let loaded = load(&text).unwrap();
        let a = loaded.config.runners[0].autoscaler.as_ref().unwrap();
        assert_eq!(a.policies[0].idle_time_ms, 0);
        assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
        assert!(loaded.warnings.iter().any(|w| w.contains("nanoseconds")), "{:?}", loaded.warnings);
    }

    #[test]
    fn idle_scale_factor_and_autoscaling_periods() {
        let text = SEED_AUTOSCALE.replace(
            "    IdleTime = 1800\n",
            "    IdleTime = 1800\n    IdleScaleFactor = 1.5\n    IdleCountMin = 2\n    MaxGrowthRate = 3\n    MaxBuilds = 10\n    [[runners.machine.autoscaling]]\n      Periods = [\"* * 9-17 * * mon-fri *\"]\n      IdleCount = 50\n      IdleTime = 3600\n      Timezone = \"UTC\"\n    [[runners.machine.autoscaling]]\n      Periods = [\"* * * * * sat,sun *\"]\n      IdleScaleFactor = 0.25\n",
        );
        let loaded = load(&text).unwrap();
        let m = loaded.config.runners[0].machine.clone().unwrap();
        assert_eq!(
            (m.idle_scale_factor, m.idle_count_min, m.max_growth_rate, m.max_builds),
            (1.5, 2, 3, 10)
        );
        assert_eq!(m.autoscaling.len(), 2);
        let a = &m.autoscaling[0];
        assert_eq!(a.periods, ["* * 9-17 * * mon-fri *"]);
        assert_eq!((a.idle_count, a.idle_time_s, a.idle_scale_factor), (50, 3_600, 0.0));
        assert_eq!(a.timezone.as_deref(), Some("UTC"));
        let a = &m.autoscaling[1];
        assert_eq!(
            (a.idle_count, a.idle_time_s, a.idle_scale_factor),
            (0, 0, 0.25),
            "missing fields are 0, not inherited"
        );

        // An integer factor: GitLab Runner 19.4 reads it as a float; we warn, naming the line.
        let text = SEED_AUTOSCALE
            .replace("    IdleTime = 1800\n", "    IdleTime = 1800\n    IdleScaleFactor = 2\n");
        let loaded = load(&text).unwrap();
        assert_eq!(loaded.config.runners[0].machine.as_ref().unwrap().idle_scale_factor, 2.0);
        let line = line_of(&text, "IdleScaleFactor");
        let warning = loaded.warnings.iter().find(|w| w.contains("IdleScaleFactor")).unwrap();
        assert!(
            warning.starts_with(&format!(
                "config.toml:{line}:23: `runners[0].machine.IdleScaleFactor`"
            )),
            "{warning}"
        );

        let text = SEED_AUTOSCALE
            .replace("    IdleTime = 1800\n", "    IdleTime = 1800\n    IdleScaleFactor = -0.5\n");
        let err = load(&text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners[0].machine.IdleScaleFactor"));
        assert_eq!(err.line, Some(line_of(&text, "IdleScaleFactor")));

        let text = SEED_AUTOSCALE.replace("IdleTime = 1800", "IdleTime = -1");
        let err = load(&text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners[0].machine.IdleTime"));
    }

    #[test]
    fn overrides_apply_before_parsing() {
        let loaded = load_with(SEED_AUTOSCALE, &["concurrent=8", "runners[0].limit=4"]).unwrap();
        assert_eq!(loaded.config.concurrent, 8);
        assert_eq!(loaded.config.runners[0].limit, 4);
        let loaded = load_with(
            SEED_AUTOSCALE,
            &[
                "runners[0].machine.IdleCount=3",
                "runners[0].machine.MachineOptions[3]=\"amazonec2-instance-type=c5.large\"",
            ],
        )
        .unwrap();
        let m = loaded.config.runners[0].machine.as_ref().unwrap();
        assert_eq!(m.idle_count, 3);
        assert_eq!(m.machine_options.instance_type(), Some("c5.large"));
        let loaded = load_with(
            SEED_SINGLE,
            &["runners[0].cache.Type=s3", "runners[0].cache.s3.BucketName=runner"],
        )
        .unwrap();
        assert_eq!(loaded.config.runners[0].cache.cache_type, CacheType::S3);
        assert_eq!(loaded.config.runners[0].cache.s3.as_ref().unwrap().bucket_name, "runner");
    }

    #[test]
    fn override_errors() {
        let err = load_with(SEED_SINGLE, &["runners[1].limit=4"]).unwrap_err();
        assert_eq!(err.file, Path::new("--set runners[1].limit=4"));
        assert_eq!(err.key.as_deref(), Some("runners[1]"));
        assert!(err.message.contains("out of range"), "{err}");

        // A bad value from --set names the --set argument, not a line of the file.
        let err = load_with(SEED_SINGLE, &["concurrent=0"]).unwrap_err();
        assert_eq!(err.file, Path::new("--set concurrent=0"));
        assert_eq!((err.key.as_deref(), err.line), (Some("concurrent"), None));
        assert!(err.to_string().starts_with("--set concurrent=0: must be ≥ 1"), "{err}");
        let err = load_with(SEED_SINGLE, &["runners[0].docker.privileged=maybe"]).unwrap_err();
        assert_eq!(err.file, Path::new("--set runners[0].docker.privileged=maybe"));
        assert_eq!(err.key.as_deref(), Some("runners[0].docker.privileged"));
    }

    #[test]
    fn overrides_keep_line_numbers_of_untouched_keys() {
        // Inserting new keys shifts lines in the edited text; errors still name the original line.
        let text = SEED_AUTOSCALE.replace("IdleTime = 1800", "IdleTime = -5");
        let err = load_with(
            &text,
            &[
                "runners[0].request_concurrency=2",
                "runners[0].docker.helper_image=\"h\"",
                "runners[0].output_limit=10",
            ],
        )
        .unwrap_err();
        assert_eq!(err.file, Path::new("config.toml"));
        assert_eq!(err.key.as_deref(), Some("runners[0].machine.IdleTime"));
        assert_eq!(err.line, Some(line_of(&text, "IdleTime")));
        assert_eq!(err.column, Some(16));
        // And warnings too.
        let text = SEED_AUTOSCALE
            .replace("    IdleTime = 1800\n", "    IdleTime = 1800\n    IdleScaleFactor = 2\n");
        let loaded = load_with(
            &text,
            &["runners[0].request_concurrency=2", "runners[0].docker.helper_image=\"h\""],
        )
        .unwrap();
        let line = line_of(&text, "IdleScaleFactor");
        assert!(
            loaded.warnings.iter().any(|w| w.starts_with(&format!("config.toml:{line}:"))),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn key_paths_from_offsets() {
        let text = SEED_AUTOSCALE;
        let at = |needle: &str| key_path_at(text, text.find(needle).unwrap());
        assert_eq!(at("12").as_deref(), Some("concurrent"));
        assert_eq!(at("\"/cache\"").as_deref(), Some("runners[0].docker.volumes[1]"));
        assert_eq!(
            at("\"amazonec2-region").as_deref(),
            Some("runners[0].machine.MachineOptions[2]")
        );
        assert_eq!(at("BucketName").as_deref(), Some("runners[0].cache.BucketName"));
        let span = span_of(text, &parse_key_path("runners[0].machine.IdleTime").unwrap()).unwrap();
        assert_eq!(&text[span], "1800");
    }

    #[test]
    fn files_load_and_missing_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("fleetsim-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, SEED_SINGLE).unwrap();
        assert_eq!(load_config_file(&path).unwrap().config.concurrent, 5);
        std::fs::remove_dir_all(&dir).unwrap();
        let err = load_config_file(&dir.join("config.toml")).unwrap_err();
        assert_eq!(err.file, dir.join("config.toml"));
        assert!(err.message.contains("cannot read"));
    }
}
