//! One row of a trace ([`TraceRecord`]) and the parsers for its cell values: seconds, byte
//! sizes, booleans, cache policies. The parsers return a message saying what was expected; the
//! reader wraps it in an [`InputError`](crate::input_error::InputError) with file, line and
//! column.

use std::fmt;

/// After which script outcome a job saves its cache (GitLab's `cache:when`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CacheWhen {
    /// After a successful script (`on_success`, GitLab's default).
    #[default]
    OnSuccess,
    /// After a failed script (`on_failure`).
    OnFailure,
    /// After either (`always`).
    Always,
}

impl CacheWhen {
    /// The name used in traces and in `.gitlab-ci.yml`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheWhen::OnSuccess => "on_success",
            CacheWhen::OnFailure => "on_failure",
            CacheWhen::Always => "always",
        }
    }

    /// Parses `on_success`, `on_failure` or `always` (exactly, as GitLab does).
    pub fn parse(text: &str) -> Option<CacheWhen> {
        match text {
            "on_success" => Some(CacheWhen::OnSuccess),
            "on_failure" => Some(CacheWhen::OnFailure),
            "always" => Some(CacheWhen::Always),
            _ => None,
        }
    }
}

/// How a job uses its cache (GitLab's `cache:policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CachePolicy {
    /// Restore before the script and save after it (`pull-push`, GitLab's default).
    #[default]
    PullPush,
    /// Restore only, never save (`pull`).
    Pull,
    /// Save only, never restore (`push`).
    Push,
}

impl CachePolicy {
    /// The name used in traces and in `.gitlab-ci.yml`: `pull-push`, `pull` or `push`.
    pub fn as_str(self) -> &'static str {
        match self {
            CachePolicy::PullPush => "pull-push",
            CachePolicy::Pull => "pull",
            CachePolicy::Push => "push",
        }
    }

    /// Parses `pull-push`, `pull` or `push` (exactly, as GitLab does).
    pub fn parse(text: &str) -> Option<CachePolicy> {
        match text {
            "pull-push" => Some(CachePolicy::PullPush),
            "pull" => Some(CachePolicy::Pull),
            "push" => Some(CachePolicy::Push),
            _ => None,
        }
    }

    /// Whether the job restores the cache before its script.
    pub fn pulls(self) -> bool {
        matches!(self, CachePolicy::PullPush | CachePolicy::Pull)
    }

    /// Whether the job saves the cache after its script.
    pub fn pushes(self) -> bool {
        matches!(self, CachePolicy::PullPush | CachePolicy::Push)
    }
}

impl fmt::Display for CachePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One job of a trace, as read by [`TraceReader::read_next`](super::TraceReader::read_next).
///
/// The reader overwrites every field of the record it is given and reuses its `String` and
/// `Vec` buffers, so one record can serve a whole trace without allocating per row. Optional
/// columns absent from the trace (or empty cells) give the defaults listed per field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceRecord {
    /// `job_id`: unique in the trace (required).
    pub job_id: u64,
    /// `pipeline_id`; `None` when the column is absent or the cell is empty.
    pub pipeline_id: Option<u64>,
    /// `project_id`; default 0.
    pub project_id: u64,
    /// `name`, e.g. `test 1/3`; default empty.
    pub name: String,
    /// `stage`, e.g. `build`; default empty.
    pub stage: String,
    /// `needs`: job ids this job waits for (`;`-separated); default empty.
    pub needs: Vec<u64>,
    /// Whether the row states its `needs`: a list of ids, or `[]` (GitLab's `needs: []`, no
    /// predecessor at all). An empty cell leaves it `false`: the job waits for the earlier
    /// stages of its pipeline.
    pub needs_given: bool,
    /// `created_at` in milliseconds from the trace start (the first row's instant for RFC 3339
    /// traces; see [`TraceReader::origin`](super::TraceReader::origin)).
    pub created_at_ms: u64,
    /// `duration`: script time with warm caches, in milliseconds (required).
    pub duration_ms: u64,
    /// `tags` the job requires (`;`-separated); default empty (an untagged job).
    pub tags: Vec<String>,
    /// `cache_key` as the trace gives it; default empty (the job uses no cache). The run
    /// sanitises it as GitLab Runner does (`crate::run::CacheKeys`).
    pub cache_key: String,
    /// `cache_fallback_keys`, tried in order when `cache_key` misses; default empty.
    pub cache_fallback_keys: Vec<String>,
    /// `cache_policy`; default [`CachePolicy::PullPush`].
    pub cache_policy: CachePolicy,
    /// `cache_when`: after which script outcome the cache is saved; default on_success.
    pub cache_when: CacheWhen,
    /// `protected`: whether the pipeline ran for a protected ref. `None` (no column, or an
    /// empty cell) adds no suffix to the cache keys; `Some` adds GitLab's `-protected` or
    /// `-non_protected` suffix to the key and its fallback keys (separated caches, §4.2).
    pub protected: Option<bool>,
    /// `cache_size` in bytes; default 0.
    pub cache_size_bytes: u64,
    /// `cache_changed`: whether the job changes its cache (an unchanged cache is not
    /// uploaded again); default `true`.
    pub cache_changed: bool,
    /// `cache_miss_penalty` in milliseconds: extra script time when no cache is found;
    /// default 0.
    pub cache_miss_penalty_ms: u64,
    /// `image`, e.g. `node:20`; default empty (the runner's default image).
    pub image: String,
    /// `image_size` in bytes; default 0.
    pub image_size_bytes: u64,
    /// `retry`: how many times the job is retried after a failure; default 0.
    pub retry: u32,
    /// `status`: `failed` when the script exits non-zero (the job fails after its script and
    /// save); default `success`.
    pub script_fails: bool,
    /// The 1-based line of the file this row starts on (the header is line 1).
    pub line: usize,
}

impl TraceRecord {
    /// An empty record to pass to [`TraceReader::read_next`](super::TraceReader::read_next).
    pub fn new() -> Self {
        TraceRecord { cache_changed: true, ..TraceRecord::default() }
    }
}

/// A non-negative decimal number `mantissa × 10^exp10`, parsed exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    mantissa: u128,
    exp10: i32,
}

/// Significant digits kept; further fractional digits are dropped (far below a millisecond or
/// a byte), further integer digits only scale the exponent (and overflow later).
const MAX_SIGNIFICANT_DIGITS: u32 = 20;

/// Parses `[+]digits[.digits][(e|E)[+|-]digits]` (at least one digit before the exponent).
/// Rejects signs other than a leading `+`, `NaN`, `inf` and anything else.
fn parse_decimal(text: &str) -> Option<Decimal> {
    let bytes = text.strip_prefix('+').unwrap_or(text).as_bytes();
    let mut mantissa: u128 = 0;
    let mut exp10: i32 = 0;
    let mut significant = 0u32;
    let mut digits = 0usize;
    let mut i = 0;
    let mut push_digit = |digit: u8, fractional: bool, exp10: &mut i32| {
        if mantissa == 0 && digit == 0 {
            if fractional {
                *exp10 -= 1;
            }
            return;
        }
        if significant < MAX_SIGNIFICANT_DIGITS {
            mantissa = mantissa * 10 + u128::from(digit);
            significant += 1;
            if fractional {
                *exp10 -= 1;
            }
        } else if !fractional {
            *exp10 += 1;
        }
    };
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        push_digit(bytes[i] - b'0', false, &mut exp10);
        digits += 1;
        i += 1;
    }
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            push_digit(bytes[i] - b'0', true, &mut exp10);
            digits += 1;
            i += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let exponent: i32 = std::str::from_utf8(&bytes[i + 1..]).ok()?.parse().ok()?;
        if exponent.abs() > 1000 {
            return None;
        }
        exp10 += exponent;
        i = bytes.len();
    }
    (i == bytes.len()).then_some(Decimal { mantissa, exp10 })
}

/// `decimal × unit`, rounded to the nearest integer (halves up); `None` if it exceeds `u64`.
fn scale_round(decimal: Decimal, unit: u128) -> Option<u64> {
    let value = decimal.mantissa.checked_mul(unit)?;
    if value == 0 {
        return Some(0);
    }
    let rounded = if decimal.exp10 >= 0 {
        value.checked_mul(10u128.checked_pow(decimal.exp10.unsigned_abs())?)?
    } else {
        match 10u128.checked_pow(decimal.exp10.unsigned_abs()) {
            Some(divisor) => {
                let (quotient, remainder) = (value / divisor, value % divisor);
                // remainder < divisor ≤ 10^38, so doubling it cannot overflow a u128.
                quotient + u128::from(remainder * 2 >= divisor)
            }
            None => 0, // divisor > 10^38 > value: rounds to zero
        }
    };
    u64::try_from(rounded).ok()
}

/// Parses non-negative seconds (`90`, `12.5`, `0.001`, `1e3`) into milliseconds, rounded to
/// the nearest millisecond. The error says what was expected and quotes `text`.
pub fn parse_seconds_ms(text: &str) -> Result<u64, String> {
    let Some(decimal) = parse_decimal(text) else {
        if text.strip_prefix('-').and_then(parse_decimal).is_some() {
            return Err(format!("must not be negative, found `{text}`"));
        }
        return Err(format!(
            "expected non-negative seconds such as `90` or `12.5`, found `{text}`"
        ));
    };
    match scale_round(decimal, 1000) {
        Some(ms) if ms <= MAX_TRACE_MS => Ok(ms),
        _ => Err(format!(
            "`{text}` seconds is more than {} s ({} years), the longest time fleetsim simulates",
            MAX_TRACE_MS / 1000,
            MAX_TRACE_YEARS
        )),
    }
}

/// The longest span a trace time or duration may have, in years. Every time in a trace (and
/// so every instant of a run) stays below [`MAX_TRACE_MS`], which keeps the simulated clock
/// far from `u64` overflow whatever delays the config adds, and catches Unix timestamps given
/// as seconds from the trace start (see [`unix_time_hint`]).
pub const MAX_TRACE_YEARS: u64 = 10;

/// [`MAX_TRACE_YEARS`] in milliseconds (365-day years).
pub const MAX_TRACE_MS: u64 = MAX_TRACE_YEARS * 365 * 86_400 * 1000;

/// The earliest wall-clock instant fleetsim accepts (a `--start`, `[workload] start`, an RFC
/// 3339 `created_at`): 1970-01-01T00:00:00Z.
pub const EARLIEST_INSTANT_S: i64 = 0;

/// The end of the instants fleetsim accepts: 2200-01-01T00:00:00Z. With
/// [`MAX_TRACE_YEARS`] of trace after it, every calendar computation stays far from the
/// year 9999 where the time library's arithmetic ends.
pub const LATEST_INSTANT_S: i64 = 7_258_118_400;

/// Checks that `t` lies in [1970, 2200) (see [`LATEST_INSTANT_S`]).
///
/// # Errors
/// A message saying the accepted range.
pub fn check_instant(t: jiff::Timestamp) -> Result<jiff::Timestamp, String> {
    if (EARLIEST_INSTANT_S..LATEST_INSTANT_S).contains(&t.as_second()) {
        Ok(t)
    } else {
        Err(format!("{t} is outside the years 1970 to 2199 that fleetsim simulates"))
    }
}

/// Parses an RFC 3339 instant (`2026-03-02T09:00:00Z`) and checks it with
/// [`check_instant`]. The one parser of `--start`, `[workload] start` and GitLab's times.
///
/// # Errors
/// What was expected, quoting `text`.
pub fn parse_instant(text: &str) -> Result<jiff::Timestamp, String> {
    let t: jiff::Timestamp = text.trim().parse().map_err(|e| {
        format!("expected an RFC 3339 time such as `2026-03-02T09:00:00Z`, found `{text}`: {e}")
    })?;
    check_instant(t)
}

/// When `text` (a number of seconds) is too large to be seconds from a trace's start but
/// reads as a Unix time in seconds or milliseconds between the years 2000 and 2100, says so
/// and what was probably meant: exporting epoch times as `created_at` is a common mistake.
pub fn unix_time_hint(text: &str) -> Option<String> {
    let x: f64 = text.trim().parse().ok()?;
    let (secs, unit) = if (946_684_800.0..4_102_444_800.0).contains(&x) {
        (x, "seconds")
    } else if (946_684_800_000.0..4_102_444_800_000.0).contains(&x) {
        (x / 1000.0, "milliseconds")
    } else {
        return None;
    };
    let when = jiff::Timestamp::from_second(secs as i64).ok()?;
    Some(format!(
        "`{text}` looks like a Unix time in {unit} ({when}), but created_at counts seconds \
         from the start of the trace: subtract the first row's value, or write RFC 3339 \
         times (such as `2026-03-02T09:00:00Z`)"
    ))
}

/// The size suffixes [`parse_size_bytes`] accepts, with their multipliers.
pub const SIZE_UNITS: [(&str, u64); 10] = [
    ("B", 1),
    ("kB", 1000),
    ("KB", 1000),
    ("MB", 1000 * 1000),
    ("GB", 1000 * 1000 * 1000),
    ("TB", 1000 * 1000 * 1000 * 1000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Parses a size in bytes: a non-negative decimal number with an optional suffix from
/// [`SIZE_UNITS`] (`512MB`, `1.5GiB`, `300 kB`, `4096`), case-sensitive; a plain number is
/// bytes. kB/KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB powers of 1024. The result is
/// rounded to the nearest byte.
pub fn parse_size_bytes(text: &str) -> Result<u64, String> {
    let number_end = text.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len();
    let (number, suffix) = text.split_at(number_end);
    let number = number.trim_end();
    let unit = if suffix.is_empty() {
        1
    } else {
        match SIZE_UNITS.iter().find(|(name, _)| *name == suffix) {
            Some(&(_, unit)) => unit,
            None => {
                return Err(format!(
                    "unknown size suffix `{suffix}` in `{text}`; expected a number of bytes \
                     with an optional suffix B, kB (or KB), MB, GB, TB, KiB, MiB, GiB or TiB"
                ));
            }
        }
    };
    let Some(decimal) = parse_decimal(number) else {
        if number.strip_prefix('-').and_then(parse_decimal).is_some() {
            return Err(format!("a size must not be negative, found `{text}`"));
        }
        return Err(format!("expected a size such as `4096`, `512MB` or `1.5GiB`, found `{text}`"));
    };
    scale_round(decimal, u128::from(unit)).ok_or_else(|| format!("size `{text}` is too large"))
}

/// Parses `true`/`false` (any case) or `1`/`0`.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    if text == "1" || text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text == "0" || text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!("expected true, false, 1 or 0, found `{text}`"))
    }
}

/// Parses an unsigned integer (`u64`).
pub fn parse_u64(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("expected an unsigned integer, found `{text}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_to_the_nearest_millisecond() {
        assert_eq!(parse_seconds_ms("0"), Ok(0));
        assert_eq!(parse_seconds_ms("12"), Ok(12_000));
        assert_eq!(parse_seconds_ms("12.5"), Ok(12_500));
        assert_eq!(parse_seconds_ms("+.25"), Ok(250));
        assert_eq!(parse_seconds_ms("3."), Ok(3_000));
        assert_eq!(parse_seconds_ms("0.0004"), Ok(0));
        assert_eq!(parse_seconds_ms("0.0005"), Ok(1));
        assert_eq!(parse_seconds_ms("1.9995"), Ok(2_000));
        assert_eq!(parse_seconds_ms("000123.456000"), Ok(123_456));
        assert_eq!(parse_seconds_ms("1e3"), Ok(1_000_000));
        assert_eq!(parse_seconds_ms("1.5E-3"), Ok(2));
        assert_eq!(parse_seconds_ms("0.1234567890123456789012345"), Ok(123));
        // The bound is 10 years (MAX_TRACE_MS), far below u64 overflow (issue 16).
        assert_eq!(parse_seconds_ms("315360000"), Ok(MAX_TRACE_MS));
        assert!(parse_seconds_ms("315360000.001").unwrap_err().contains("longest time"));
        assert!(parse_seconds_ms("18446744073709551.615").unwrap_err().contains("10 years"));
        assert!(parse_seconds_ms("18446744073709551.616").unwrap_err().contains("10 years"));
    }

    #[test]
    fn unix_times_are_recognised() {
        assert!(unix_time_hint("1700000000").unwrap().contains("Unix time in seconds (2023-11-14"));
        assert!(unix_time_hint("1700000000000.5").unwrap().contains("milliseconds"));
        assert_eq!(unix_time_hint("86400"), None);
        assert!(parse_instant("9999-12-31T00:00:00Z").is_err());
        assert!(parse_instant("2200-01-01T00:00:00Z").unwrap_err().contains("1970 to 2199"));
        assert!(parse_instant("2199-12-31T23:59:59Z").is_ok());
    }

    #[test]
    fn bad_seconds_say_what_was_expected() {
        for bad in ["", "abc", "NaN", "nan", "inf", "-inf", ".", "1.2.3", "1e", "12s", " 1", "1,5"]
        {
            let message = parse_seconds_ms(bad).unwrap_err();
            assert!(message.contains("expected non-negative seconds"), "{bad}: {message}");
            assert!(message.contains(&format!("`{bad}`")), "{bad}: {message}");
        }
        assert_eq!(parse_seconds_ms("-5").unwrap_err(), "must not be negative, found `-5`");
        assert!(parse_seconds_ms("-0.5").unwrap_err().contains("negative"));
    }

    #[test]
    fn sizes_take_decimal_and_binary_suffixes() {
        assert_eq!(parse_size_bytes("4096"), Ok(4096));
        assert_eq!(parse_size_bytes("10B"), Ok(10));
        assert_eq!(parse_size_bytes("200kB"), Ok(200_000));
        assert_eq!(parse_size_bytes("200KB"), Ok(200_000));
        assert_eq!(parse_size_bytes("512MB"), Ok(512_000_000));
        assert_eq!(parse_size_bytes("512 MB"), Ok(512_000_000));
        assert_eq!(parse_size_bytes("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size_bytes("1TB"), Ok(1_000_000_000_000));
        assert_eq!(parse_size_bytes("1KiB"), Ok(1024));
        assert_eq!(parse_size_bytes("1.5MiB"), Ok(1_572_864));
        assert_eq!(parse_size_bytes("1.5GiB"), Ok(1_610_612_736));
        assert_eq!(parse_size_bytes("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size_bytes("0.5B"), Ok(1));
        assert_eq!(parse_size_bytes("18446744073709551615"), Ok(u64::MAX));
        assert!(parse_size_bytes("18446744073709551616").unwrap_err().contains("too large"));
    }

    #[test]
    fn bad_sizes_name_the_problem() {
        for bad_suffix in ["200k", "1mb", "5 gb", "3Gi", "1e"] {
            let message = parse_size_bytes(bad_suffix).unwrap_err();
            assert!(message.contains("unknown size suffix"), "{bad_suffix}: {message}");
            assert!(message.contains(&format!("`{bad_suffix}`")), "{message}");
        }
        assert!(parse_size_bytes("-1MB").unwrap_err().contains("negative"));
        assert!(parse_size_bytes("MB").unwrap_err().contains("expected a size"));
        assert!(parse_size_bytes("1.2.3").unwrap_err().contains("expected a size"));
    }

    #[test]
    fn booleans_and_policies() {
        assert_eq!(parse_bool("true"), Ok(true));
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert_eq!(parse_bool("1"), Ok(true));
        assert_eq!(parse_bool("False"), Ok(false));
        assert_eq!(parse_bool("0"), Ok(false));
        assert!(parse_bool("yes").is_err());
        for policy in [CachePolicy::PullPush, CachePolicy::Pull, CachePolicy::Push] {
            assert_eq!(CachePolicy::parse(policy.as_str()), Some(policy));
        }
        assert_eq!(CachePolicy::parse("Pull"), None);
        assert!(CachePolicy::Pull.pulls() && !CachePolicy::Pull.pushes());
        assert!(!CachePolicy::Push.pulls() && CachePolicy::Push.pushes());
        assert_eq!(CachePolicy::default(), CachePolicy::PullPush);
    }

    #[test]
    fn new_record_has_the_documented_defaults() {
        let record = TraceRecord::new();
        assert!(record.cache_changed);
        assert_eq!(record.cache_policy, CachePolicy::PullPush);
        assert_eq!(record.pipeline_id, None);
    }
}
