//! Go's `time.ParseDuration`, for the duration values of `config.toml` and the scenario file.

/// Parses a Go duration string exactly as Go's `time.ParseDuration` does and returns
/// nanoseconds: an optional sign, then one or more `<number><unit>` parts where the number may
/// have a fraction and the unit is `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m` or `h`
/// (`"1m30s"`, `"1.5h"`, `"-2s"`); `"0"` is the only value allowed without a unit.
///
/// # Errors
/// A message saying what is wrong, in the words of Go's errors.
pub fn parse_go_duration_nanos(text: &str) -> Result<i64, String> {
    const MAX: u128 = 1 << 63;
    let invalid = || {
        format!(
            "invalid duration \"{text}\": expected a Go duration such as \"15m\", \"1m30s\", \"2h\" or \"500ms\""
        )
    };
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let bytes = rest.as_bytes();
        if !(bytes[0] == b'.' || bytes[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let mut whole: u128 = 0;
        for &b in &bytes[..int_len] {
            whole = whole * 10 + u128::from(b - b'0');
            if whole > MAX {
                return Err(invalid());
            }
        }
        rest = &rest[int_len..];
        let (mut frac, mut scale, mut frac_len) = (0u128, 1u128, 0usize);
        if let Some(after_dot) = rest.strip_prefix('.') {
            frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            for b in after_dot.bytes().take(frac_len) {
                // Like Go, stop accumulating digits that can no longer matter.
                if scale < 1_000_000_000_000_000_000_000 {
                    frac = frac * 10 + u128::from(b - b'0');
                    scale *= 10;
                }
            }
            rest = &after_dot[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = rest.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(format!(
                "invalid duration \"{text}\": missing unit (use ns, us, ms, s, m or h)"
            ));
        }
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => {
                return Err(format!(
                    "invalid duration \"{text}\": unknown unit \"{other}\" (use ns, us, ms, s, m or h)"
                ));
            }
        };
        rest = &rest[unit_len..];
        total += whole * unit + frac * unit / scale;
        if total > MAX {
            return Err(invalid());
        }
    }
    if negative {
        // total ≤ 2^63 here, so the negation fits.
        Ok(i64::try_from(-(total as i128)).map_err(|_| invalid())?)
    } else {
        i64::try_from(total).map_err(|_| invalid())
    }
}

/// Parses a Go duration string (see [`parse_go_duration_nanos`]) into whole milliseconds,
/// truncating (`"500us"` → 0, `"1m30s"` → 90 000).
///
/// # Errors
/// A message when the text is not a Go duration, or when it is negative.
pub fn parse_go_duration_ms(text: &str) -> Result<u64, String> {
    let nanos = parse_go_duration_nanos(text)?;
    u64::try_from(nanos)
        .map(|ns| ns / 1_000_000)
        .map_err(|_| format!("invalid duration \"{text}\": must not be negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_go() {
        let ok = [
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("500ms", 500_000_000),
            ("1m30s", 90_000_000_000),
            ("15m", 900_000_000_000),
            ("2h", 7_200_000_000_000),
            ("1.5h", 5_400_000_000_000),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("-2s", -2_000_000_000),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("3\u{b5}s", 3_000),
            ("3\u{3bc}s", 3_000),
            ("10us", 10_000),
            ("1.000000001s", 1_000_000_001),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
        ];
        for (text, want) in ok {
            assert_eq!(parse_go_duration_nanos(text), Ok(want), "{text}");
        }
        let bad = [
            "",
            "-",
            "s",
            "1",
            "15",
            "00",
            "1x",
            "1 m",
            ".s",
            "1hh",
            "1.2.3s",
            "m1",
            " 1s",
            "9223372036854775808ns",
            "3000000h",
        ];
        for text in bad {
            assert!(parse_go_duration_nanos(text).is_err(), "{text} should be refused");
        }
        let err = parse_go_duration_nanos("1d").unwrap_err();
        assert_eq!(err, "invalid duration \"1d\": unknown unit \"d\" (use ns, us, ms, s, m or h)");
        assert!(parse_go_duration_nanos("15").unwrap_err().contains("missing unit"));
    }

    #[test]
    fn go_durations_in_milliseconds() {
        assert_eq!(parse_go_duration_ms("0"), Ok(0));
        assert_eq!(parse_go_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_go_duration_ms("15m"), Ok(900_000));
        assert_eq!(parse_go_duration_ms("2h"), Ok(7_200_000));
        assert_eq!(parse_go_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_go_duration_ms("1500us"), Ok(1));
        assert!(parse_go_duration_ms("-1s").unwrap_err().contains("negative"));
        assert!(parse_go_duration_ms("15").is_err());
    }
}
