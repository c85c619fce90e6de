//! GitLab Runner 19.4's `helpers/timeperiod/period_test.go`, ported: one Rust test per Go
//! call of its helpers (`TestInPeriod` and `TestTimeperiodsWithTimezone` call a helper once
//! per case, without case names; the cases are named here by their arguments).
//!
//! fleetsim reads `[[runners.machine.autoscaling]]` periods with [`PeriodSet`] in the
//! [`CronDialect::Seconds7`] dialect, GitLab Runner's `(*TimePeriod).InPeriod`.
//!
//! `TestInPeriod` builds its time in `time.Local`; fleetsim reads `Local` as UTC (a simulation
//! must not depend on the host's zone, see `sim/src/periods.rs`), so the same wall-clock
//! instant is built in UTC here. Every case is ported; none is inexpressible.

use fleetsim::periods::{CronDialect, PeriodSet};
use jiff::Timestamp;
use jiff::civil::date;
use jiff::tz::TimeZone;

/// `testTimePeriods`: a pattern matching the minute, hour and weekday of
/// 2017-02-22 14:59:`seconds` (a Wednesday), asked at `shift_s` seconds after that instant.
fn test_time_periods(seconds: i8, shift_s: i64) -> bool {
    let now = date(2017, 2, 22).at(14, 59, seconds, 0).to_zoned(TimeZone::UTC).unwrap();
    assert_eq!(now.weekday(), jiff::civil::Weekday::Wednesday);
    let pattern = format!("* {} {} * * wed *", now.minute(), now.hour());
    let set = PeriodSet::parse(&[pattern], "Local", CronDialect::Seconds7).unwrap();
    let at = Timestamp::from_second(now.timestamp().as_second() + shift_s).unwrap();
    set.in_period(at)
}

/// `TestInPeriod`, call 1: `testTimePeriods(t, 0, now, true)`.
#[test]
fn test_in_period_at_second_0_is_inside() {
    assert!(test_time_periods(0, 0), "It should be inside of the period");
}

/// `TestInPeriod`, call 2: `testTimePeriods(t, 59, now, false)`: the last second of a matching
/// minute is outside (`InPeriod` asks whether the *next* second matches; the Go test carries
/// "TODO: Decide if this case should be fixed").
#[test]
fn test_in_period_at_second_59_is_outside() {
    assert!(!test_time_periods(59, 0), "It should be outside of the period");
}

/// `TestInPeriod`, call 3: `testTimePeriods(t, 0, now + 48h, false)` (Friday).
#[test]
fn test_in_period_48_hours_later_is_outside() {
    assert!(!test_time_periods(0, 48 * 3600), "It should be outside of the period");
}

/// `TestInPeriod`, call 4: `testTimePeriods(t, 0, now + 4h, false)`.
#[test]
fn test_in_period_4_hours_later_is_outside() {
    assert!(!test_time_periods(0, 4 * 3600), "It should be outside of the period");
}

/// `TestInPeriod`, call 5: `testTimePeriods(t, 0, now + 4m, false)`.
#[test]
fn test_in_period_4_minutes_later_is_outside() {
    assert!(!test_time_periods(0, 4 * 60), "It should be outside of the period");
}

/// `TestInvalidTimezone`: `TimePeriods([]string{}, "InvalidTimezone/String")` fails.
#[test]
fn test_invalid_timezone() {
    let e = PeriodSet::parse(&[], "InvalidTimezone/String", CronDialect::Seconds7).unwrap_err();
    assert!(e.contains("InvalidTimezone/String"), "{e}");
}

/// `testTimeperiodsWithTimezone` with `* * 10-17 * * * *` in `Europe/Berlin`, at 2017-`month`-
/// `day` `hour`:`minute` UTC.
fn berlin_10_to_17(month: i8, day: i8, hour: i8, minute: i8) -> bool {
    let set =
        PeriodSet::parse(&["* * 10-17 * * * *".to_owned()], "Europe/Berlin", CronDialect::Seconds7)
            .unwrap();
    let at = date(2017, month, day).at(hour, minute, 0, 0).to_zoned(TimeZone::UTC).unwrap();
    set.in_period(at.timestamp())
}

/// `TestTimeperiodsWithTimezone`: January 1, 16:30 UTC is 17:30 CET: inside.
#[test]
fn test_timeperiods_with_timezone_january_16_30_inside() {
    assert!(berlin_10_to_17(1, 1, 16, 30));
}

/// `TestTimeperiodsWithTimezone`: July 1, 16:30 UTC is 18:30 CEST: outside.
#[test]
fn test_timeperiods_with_timezone_july_16_30_outside() {
    assert!(!berlin_10_to_17(7, 1, 16, 30));
}

/// `TestTimeperiodsWithTimezone`: January 1, 14:30 UTC: always inside.
#[test]
fn test_timeperiods_with_timezone_january_14_30_inside() {
    assert!(berlin_10_to_17(1, 1, 14, 30));
}

/// `TestTimeperiodsWithTimezone`: July 1, 14:30 UTC: always inside.
#[test]
fn test_timeperiods_with_timezone_july_14_30_inside() {
    assert!(berlin_10_to_17(7, 1, 14, 30));
}

/// `TestTimeperiodsWithTimezone`: January 1, 20:30 UTC: always outside.
#[test]
fn test_timeperiods_with_timezone_january_20_30_outside() {
    assert!(!berlin_10_to_17(1, 1, 20, 30));
}

/// `TestTimeperiodsWithTimezone`: July 1, 20:30 UTC: always outside.
#[test]
fn test_timeperiods_with_timezone_july_20_30_outside() {
    assert!(!berlin_10_to_17(7, 1, 20, 30));
}
