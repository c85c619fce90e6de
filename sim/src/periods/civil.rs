//! Civil calendar arithmetic on "local seconds since 1970-01-01T00:00:00" (proleptic
//! Gregorian): dates, day counts and the fields cron looks at, with no time zone involved.

/// Seconds in a day.
pub(super) const DAY: i64 = 86_400;

/// Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`).
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A local second broken into the fields cron looks at.
#[derive(Debug, Clone, Copy)]
pub(super) struct Civil {
    /// Days since 1970-01-01.
    pub(super) days: i64,
    pub(super) year: i64,
    pub(super) month: u32,
    pub(super) day: u32,
    /// 0 = Sunday.
    pub(super) weekday: u32,
    pub(super) month_len: u32,
    /// Second of the day.
    pub(super) sod: u32,
}

impl Civil {
    pub(super) fn at(c: i64) -> Civil {
        let days = c.div_euclid(DAY);
        let (year, month, day) = civil_from_days(days);
        Civil {
            days,
            year,
            month,
            day,
            weekday: (days + 4).rem_euclid(7) as u32, // 1970-01-01 was a Thursday
            month_len: days_in_month(year, month),
            sod: c.rem_euclid(DAY) as u32,
        }
    }
}

pub(super) fn hms(sod: u32) -> (u32, u32, u32) {
    (sod / 3600, sod / 60 % 60, sod % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_arithmetic_agrees_with_jiff() {
        for days in (-800_000..800_000).step_by(997).chain(-1000..1000) {
            let (y, m, d) = civil_from_days(days);
            let date = jiff::civil::Date::constant(1970, 1, 1)
                .checked_add(jiff::Span::new().days(days))
                .unwrap();
            assert_eq!((y, m, d), (i64::from(date.year()), date.month() as u32, date.day() as u32));
            assert_eq!(days_from_civil(y, m, d), days);
            assert_eq!(days_in_month(y, m), date.days_in_month() as u32);
            let cv = Civil::at(days * DAY + 3661);
            assert_eq!(cv.weekday, date.weekday().to_sunday_zero_offset() as u32);
            assert_eq!(hms(cv.sod), (1, 1, 1));
        }
    }
}
