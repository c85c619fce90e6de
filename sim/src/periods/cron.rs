//! The cron grammar and matcher: one expression parsed into bitsets over civil fields, and
//! searched for its next matching (or non-matching) second.
//!
//! # Field semantics (gorhill/cronexpr `88b0669`, the version in GitLab Runner's `go.mod`)
//!
//! These were read from `cronexpr_parse.go` and `cronexpr_next.go`, and reimplemented here as
//! bitset matchers over civil fields.
//!
//! - Entries are comma-separated: `*` or `?` (any field), `v`, `a-b`, `*/n`, `a/n` (from `a` to
//!   the field maximum), and `a-b/n`. Empty entries between commas are skipped. A step must be
//!   between 1 and the field maximum (59, 59, 23, 31, 12, 6, 2099).
//! - Values: second and minute 0–59, hour 0–23, day of month 1–31, month 1–12 or
//!   `jan`..`dec` / `january`..`december`, year 1970–2099. Numbers have one or two digits, and
//!   years have four. Names are case-insensitive.
//! - Day of week: 0–6 with **Sunday = 0**, and `7` also means Sunday. Names are `sun`..`sat` or
//!   `sunday`..`saturday`. A quirk is kept from cronexpr: `7` becomes 0 *before* a range is
//!   expanded, and descending ranges select nothing. So `5-7` selects no day, and `0-7` selects
//!   Sunday only. The same holds for a descending range such as `22-6` in any field: cronexpr
//!   does not wrap around, and the range silently selects nothing.
//! - **Day of month and day of week together** (`calculateActualDaysOfMonth`, which quotes
//!   crontab(5)): a field is *restricted* unless one of its entries is `*` or `?`. With
//!   neither field restricted, every day matches. With one restricted, only that one counts.
//!   With **both** restricted, a day matches if **either** field matches (a union, as in Vixie
//!   cron). So `* * * 1 * mon *` is "the 1st and every Monday". `* * * * * mon *` and
//!   `* * * ? * mon *` are "Mondays only". `* * * 1-31 * mon *` is every day.
//! - Special day entries: `L` (the last day of the month), `LW` (the last weekday of the
//!   month), `15W` (the weekday nearest the 15th, without leaving the month); in the day of week
//!   field `5L` (the last Friday of the month) and `5#3` (the third Friday).
//! - A 7-field expression is `sec min hour dom month dow year`. cronexpr also accepts 6 fields
//!   (`min hour dom month dow year`) and 5 fields (`min hour dom month dow`), and these are
//!   accepted here too. Both mean *second 0 only*: a 5-field period is in period for one second
//!   a minute. That is what GitLab Runner does, though it is rarely what was meant.
//!   `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily` and `@hourly` expand as in
//!   cronexpr. Without a year field, or with `*`, the years are 1970–2099. Later instants
//!   never match.
//!
//! Where this module is stricter than cronexpr (configs that GitLab Runner accepts and this
//! rejects, each a likely mistake): more than 7 fields (cronexpr ignores the extra ones), and an
//! unknown entry after a `*` in the same field (cronexpr stops reading at the `*`).

use super::civil::{Civil, DAY, days_from_civil, hms};
use super::{CronDialect, Segment};
use jiff::tz::TimeZone;

/// Bits 0..=59.
const FULL60: u64 = (1 << 60) - 1;
/// Bits 0..=23.
const FULL24: u64 = (1 << 24) - 1;
/// Bits 1..=12.
const FULL_MONTHS: u16 = 0b1_1111_1111_1110;
/// cronexpr's year range.
const FIRST_YEAR: i64 = 1970;
const LAST_YEAR: i64 = 2099;

/// The lowest set bit of `mask` at or above `from`.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let m = mask & (u64::MAX << from);
    (m != 0).then(|| m.trailing_zeros())
}

// ---------------------------------------------------------------------------------------------
// One parsed expression.

/// Years 1970..=2099 as bits `year - 1970`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct YearSet([u64; 3]);

impl YearSet {
    fn contains(&self, y: i64) -> bool {
        (FIRST_YEAR..=LAST_YEAR).contains(&y) && {
            let i = (y - FIRST_YEAR) as usize;
            self.0[i / 64] & (1 << (i % 64)) != 0
        }
    }

    fn next_at_or_after(&self, from: i64) -> Option<i64> {
        (from.max(FIRST_YEAR)..=LAST_YEAR).find(|&y| self.contains(y))
    }

    fn last(&self) -> Option<i64> {
        (FIRST_YEAR..=LAST_YEAR).rev().find(|&y| self.contains(y))
    }
}

/// The day-of-month and day-of-week fields, combined as in cronexpr's
/// `calculateActualDaysOfMonth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct DaySpec {
    dom_restricted: bool,
    /// Bits 1..=31.
    dom: u32,
    /// `L`.
    last_dom: bool,
    /// `LW`.
    last_workday: bool,
    /// `15W`: bits 1..=31.
    workdays: u32,
    dow_restricted: bool,
    /// Bits 0..=6, Sunday = 0.
    dow: u8,
    /// `5#3`: bit `(n − 1) · 7 + dow`.
    nth_dow: u64,
    /// `5L`: bits 0..=6.
    last_dow: u8,
}

/// The weekday nearest `day` in its month (cronexpr's `workdayOfMonth`): Saturday moves to
/// Friday (or Monday the 3rd for the 1st), Sunday to Monday (or Friday for the last day).
fn workday(day: u32, weekday: u32, month_len: u32) -> u32 {
    match weekday {
        6 if day > 1 => day - 1,
        6 => day + 2,
        0 if day < month_len => day + 1,
        0 => day - 2,
        _ => day,
    }
}

impl DaySpec {
    fn matches(&self, day: u32, weekday: u32, month_len: u32) -> bool {
        if !self.dom_restricted && !self.dow_restricted {
            return true;
        }
        let weekday_of = |d: u32| (weekday + 35 + d - day) % 7;
        if self.dom_restricted {
            if self.dom & (1 << day) != 0 || (self.last_dom && day == month_len) {
                return true;
            }
            if self.last_workday && workday(month_len, weekday_of(month_len), month_len) == day {
                return true;
            }
            let mut w = self.workdays;
            while w != 0 {
                let target = w.trailing_zeros();
                w &= w - 1;
                if target <= month_len && workday(target, weekday_of(target), month_len) == day {
                    return true;
                }
            }
        }
        if self.dow_restricted {
            let bit = 1u8 << weekday;
            if self.dow & bit != 0 || (self.last_dow & bit != 0 && day + 7 > month_len) {
                return true;
            }
            if self.nth_dow & (1 << ((day - 1) / 7 * 7 + weekday)) != 0 {
                return true;
            }
        }
        false
    }
}

/// One cron expression as bitsets over civil fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Expr {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: DaySpec,
    /// Bits 1..=12.
    months: u16,
    /// `None`: every year (the Minutes5 dialect has no year field).
    years: Option<YearSet>,
}

impl Expr {
    fn year_ok(&self, y: i64) -> bool {
        self.years.is_none_or(|ys| ys.contains(y))
    }

    fn date_ok(&self, cv: &Civil) -> bool {
        self.year_ok(cv.year)
            && self.months & (1 << cv.month) != 0
            && self.days.matches(cv.day, cv.weekday, cv.month_len)
    }

    fn tod_ok(&self, sod: u32) -> bool {
        let (h, m, s) = hms(sod);
        self.hours & (1 << h) != 0 && self.minutes & (1 << m) != 0 && self.seconds & (1 << s) != 0
    }

    /// Whether the local second `c` matches.
    pub(super) fn matches_civil(&self, c: i64) -> bool {
        let cv = Civil::at(c);
        self.date_ok(&cv) && self.tod_ok(cv.sod)
    }

    /// Field-level match, for callers that already have the civil fields.
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn matches_fields(
        &self,
        year: i64,
        month: u32,
        day: u32,
        weekday: u32,
        month_len: u32,
        h: u32,
        m: u32,
        s: u32,
    ) -> bool {
        self.year_ok(year)
            && self.months & (1 << month) != 0
            && self.days.matches(day, weekday, month_len)
            && self.tod_ok(h * 3600 + m * 60 + s)
    }

    /// Whether any second at all can match (every field has a value).
    fn can_match(&self) -> bool {
        self.seconds != 0
            && self.minutes != 0
            && self.hours != 0
            && self.months != 0
            && self.years.is_none_or(|ys| ys.last().is_some())
    }

    /// Whether no second after unix second `s` can match, whatever the zone.
    pub(super) fn dead_after(&self, s: i64) -> bool {
        if !self.can_match() {
            return true;
        }
        match self.years.and_then(|ys| ys.last()) {
            // Two days of margin cover any UTC offset and the one-second lead.
            Some(y) => s >= (days_from_civil(y + 1, 1, 1) + 2) * DAY,
            None => false,
        }
    }

    /// Whether every second of every year matches.
    pub(super) fn always(&self) -> bool {
        self.years.is_none()
            && self.seconds == FULL60
            && self.minutes == FULL60
            && self.hours == FULL24
            && self.months == FULL_MONTHS
            && !self.days.dom_restricted
            && !self.days.dow_restricted
    }

    /// The first time of day at or after `sod` that matches (hours, minutes, seconds).
    fn tod_next_match(&self, sod: u32) -> Option<u32> {
        let (h, m, s) = hms(sod);
        let first_m = next_bit(self.minutes, 0)?;
        let first_s = next_bit(self.seconds, 0)?;
        if self.hours & (1 << h) != 0 {
            if self.minutes & (1 << m) != 0
                && let Some(s2) = next_bit(self.seconds, s)
            {
                return Some(h * 3600 + m * 60 + s2);
            }
            if let Some(m2) = next_bit(self.minutes, m + 1) {
                return Some(h * 3600 + m2 * 60 + first_s);
            }
        }
        let h2 = next_bit(self.hours, h + 1)?;
        Some(h2 * 3600 + first_m * 60 + first_s)
    }

    /// The first time of day at or after `sod` that does not match; `None` if the rest of the
    /// day matches.
    fn tod_next_nonmatch(&self, mut sod: u32) -> Option<u32> {
        loop {
            if sod >= DAY as u32 {
                return None;
            }
            let (h, m, s) = hms(sod);
            if !self.tod_ok(sod) {
                return Some(sod);
            }
            if let Some(z) = next_bit(!self.seconds & FULL60, s) {
                return Some(h * 3600 + m * 60 + z);
            }
            // Seconds s..=59 all match.
            if self.seconds != FULL60 {
                sod = h * 3600 + m * 60 + 60; // the next minute cannot match whole
                continue;
            }
            if let Some(z) = next_bit(!self.minutes & FULL60, m) {
                return Some(h * 3600 + z * 60);
            }
            // Minutes m..=59 all match, whole.
            if self.minutes != FULL60 {
                sod = (h + 1) * 3600;
                continue;
            }
            return next_bit(!self.hours & FULL24, h).map(|z| z * 3600);
        }
    }

    /// The first local second in `[c, c_end)` that matches.
    fn civil_next_match(&self, mut c: i64, c_end: i64) -> Option<i64> {
        if !self.can_match() {
            return None;
        }
        while c < c_end {
            let cv = Civil::at(c);
            if !self.year_ok(cv.year) {
                let y = self.years.and_then(|ys| ys.next_at_or_after(cv.year + 1))?;
                c = days_from_civil(y, 1, 1) * DAY;
                continue;
            }
            if self.months & (1 << cv.month) == 0 {
                c = (cv.days - i64::from(cv.day) + 1 + i64::from(cv.month_len)) * DAY;
                continue;
            }
            if self.days.matches(cv.day, cv.weekday, cv.month_len)
                && let Some(t) = self.tod_next_match(cv.sod)
            {
                let r = cv.days * DAY + i64::from(t);
                return (r < c_end).then_some(r);
            }
            c = (cv.days + 1) * DAY;
        }
        None
    }

    /// The first local second in `[c, c_end)` that does not match.
    fn civil_next_nonmatch(&self, mut c: i64, c_end: i64) -> Option<i64> {
        while c < c_end {
            let cv = Civil::at(c);
            if !self.date_ok(&cv) {
                return Some(c);
            }
            if let Some(t) = self.tod_next_nonmatch(cv.sod) {
                let r = cv.days * DAY + i64::from(t);
                return (r < c_end).then_some(r);
            }
            c = (cv.days + 1) * DAY;
        }
        None
    }

    /// The first unix second in `(from, limit)` whose local time in `tz` matches (`want`) or
    /// does not match (`!want`). Walks the stretches of constant UTC offset, within which local
    /// time moves with UTC.
    pub(super) fn next_where(
        &self,
        tz: &TimeZone,
        seg: &mut Segment,
        from: i64,
        limit: i64,
        want: bool,
    ) -> Option<i64> {
        let mut e = from + 1;
        while e < limit {
            let (off, hi) = seg.lookup(tz, e)?;
            let end = hi.min(limit);
            let found = if want {
                self.civil_next_match(e + off, end + off)
            } else {
                self.civil_next_nonmatch(e + off, end + off)
            };
            if let Some(c) = found {
                return Some(c - off);
            }
            e = end;
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Second,
    Minute,
    Hour,
    Dom,
    Month,
    Dow,
    Year,
}

const MONTH_NAMES: [(&str, &str); 12] = [
    ("jan", "january"),
    ("feb", "february"),
    ("mar", "march"),
    ("apr", "april"),
    ("may", "may"),
    ("jun", "june"),
    ("jul", "july"),
    ("aug", "august"),
    ("sep", "september"),
    ("oct", "october"),
    ("nov", "november"),
    ("dec", "december"),
];

const DOW_NAMES: [(&str, &str); 7] = [
    ("sun", "sunday"),
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
];

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::Dom => "day-of-month",
            Field::Month => "month",
            Field::Dow => "day-of-week",
            Field::Year => "year",
        }
    }

    /// The range `*` stands for (and the largest step).
    fn range(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::Dom => (1, 31),
            Field::Month => (1, 12),
            Field::Dow => (0, 6),
            Field::Year => (1970, 2099),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Field::Second | Field::Minute => "values 0-59",
            Field::Hour => "values 0-23",
            Field::Dom => "values 1-31, L, LW or a day followed by W (15W)",
            Field::Month => "values 1-12 or jan-dec",
            Field::Dow => {
                "values 0-7 (0 and 7 are Sunday) or sun-sat, a day followed by L (5L) or #1-#5 \
                 (5#3)"
            }
            Field::Year => "values 1970-2099",
        }
    }

    /// One value as cronexpr's value patterns accept it (`0?[0-9]|[1-5][0-9]` and so on).
    fn value(self, tok: &str) -> Option<u32> {
        let digits = tok.bytes().all(|b| b.is_ascii_digit());
        if self == Field::Year {
            let v: u32 = if digits && tok.len() == 4 { tok.parse().ok()? } else { return None };
            return (1970..=2099).contains(&v).then_some(v);
        }
        if digits && (1..=2).contains(&tok.len()) {
            let v: u32 = tok.parse().ok()?;
            return match self {
                Field::Second | Field::Minute => (v <= 59).then_some(v),
                Field::Hour => (v <= 23).then_some(v),
                Field::Dom => (1..=31).contains(&v).then_some(v),
                Field::Month => (1..=12).contains(&v).then_some(v),
                Field::Dow => (v <= 7).then_some(v % 7),
                Field::Year => None,
            };
        }
        let names: &[(&str, &str)] = match self {
            Field::Month => &MONTH_NAMES,
            Field::Dow => &DOW_NAMES,
            _ => return None,
        };
        let i = names.iter().position(|&(short, long)| tok == short || tok == long)?;
        Some(i as u32 + u32::from(self == Field::Month))
    }

    /// A step as cronexpr reads it: digits looked up in its number table (0–59, 00–09 or
    /// 1970–2099), then 1 ≤ step ≤ the field's maximum.
    fn step(self, tok: &str) -> Option<u32> {
        if tok.is_empty() || !tok.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: u32 = tok.parse().ok()?;
        let known = match tok.len() {
            1 | 2 => v <= 59,
            4 => (1970..=2099).contains(&v),
            _ => false,
        };
        (known && v >= 1 && v <= self.range().1).then_some(v)
    }
}

/// One comma-separated entry of a field.
enum Entry {
    /// `*` or `?`.
    All,
    /// The values `first..=last` by `step` (none when `first > last`).
    Span(u32, u32, u32),
}

/// Parses a plain entry (not the `L`/`W`/`#` forms). `Err` carries what was wrong.
fn parse_entry(field: Field, tok: &str) -> Result<Option<Entry>, String> {
    if tok == "*" || tok == "?" {
        return Ok(Some(Entry::All));
    }
    let (lo, hi) = field.range();
    let (range, step) = match tok.split_once('/') {
        Some((range, step)) => {
            let step = field.step(step).ok_or_else(|| {
                format!(
                    "{} field: invalid step in {tok:?}: expected a step from 1 to {hi}",
                    field.name()
                )
            })?;
            (range, Some(step))
        }
        None => (tok, None),
    };
    let span = if range == "*" && step.is_some() {
        Some((lo, hi))
    } else if let Some((a, b)) = range.split_once('-') {
        field.value(a).zip(field.value(b))
    } else {
        field.value(range).map(|a| (a, if step.is_some() { hi } else { a }))
    };
    Ok(span.map(|(a, b)| Entry::Span(a, b, step.unwrap_or(1))))
}

fn bad_entry(field: Field, tok: &str) -> String {
    format!("{} field: bad entry {tok:?}: expected {}", field.name(), field.expected())
}

/// The entries of a field: comma-separated, empty entries skipped (cronexpr's `[^,]+`).
fn entries(field: Field, text: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> =
        text.split(',').filter(|e| !e.is_empty()).map(str::to_ascii_lowercase).collect();
    if list.is_empty() {
        return Err(format!("{} field: missing entry in {text:?}", field.name()));
    }
    Ok(list)
}

/// Values of one field as bits `value − base` (base 1970 for years, else 0): 192 bits hold
/// every field, years included.
#[derive(Debug, Clone, Copy, Default)]
struct Bits([u64; 3]);

impl Bits {
    fn set(&mut self, i: u32) {
        self.0[i as usize / 64] |= 1 << (i % 64);
    }

    fn union(self, other: Bits) -> Bits {
        Bits([self.0[0] | other.0[0], self.0[1] | other.0[1], self.0[2] | other.0[2]])
    }
}

/// A plain field (second, minute, hour, month, year) as a bitset over its values.
fn parse_plain(field: Field, text: &str) -> Result<Bits, String> {
    let mut bits = Bits::default();
    for tok in entries(field, text)? {
        match parse_entry(field, &tok)? {
            Some(Entry::All) => {
                let (lo, hi) = field.range();
                bits = bits.union(span_bits(field, lo, hi, 1));
            }
            Some(Entry::Span(a, b, step)) => bits = bits.union(span_bits(field, a, b, step)),
            None => return Err(bad_entry(field, &tok)),
        }
    }
    Ok(bits)
}

/// Bits of `first..=last` by `step` (none when `first > last`).
fn span_bits(field: Field, first: u32, last: u32, step: u32) -> Bits {
    let base = if field == Field::Year { 1970 } else { 0 };
    let mut bits = Bits::default();
    for v in (first..=last).step_by(step as usize) {
        bits.set(v - base);
    }
    bits
}

fn parse_dom(text: &str, days: &mut DaySpec) -> Result<(), String> {
    days.dom_restricted = true;
    for tok in entries(Field::Dom, text)? {
        match parse_entry(Field::Dom, &tok)? {
            Some(Entry::All) => {
                days.dom_restricted = false;
                days.dom |= span_bits(Field::Dom, 1, 31, 1).0[0] as u32;
            }
            Some(Entry::Span(a, b, step)) => {
                days.dom |= span_bits(Field::Dom, a, b, step).0[0] as u32
            }
            None if tok == "l" => days.last_dom = true,
            None if tok == "lw" => days.last_workday = true,
            None => match tok.strip_suffix('w').and_then(|v| Field::Dom.value(v)) {
                Some(d) => days.workdays |= 1 << d,
                None => return Err(bad_entry(Field::Dom, &tok)),
            },
        }
    }
    Ok(())
}

fn parse_dow(text: &str, days: &mut DaySpec) -> Result<(), String> {
    days.dow_restricted = true;
    for tok in entries(Field::Dow, text)? {
        match parse_entry(Field::Dow, &tok)? {
            Some(Entry::All) => {
                days.dow_restricted = false;
                days.dow |= span_bits(Field::Dow, 0, 6, 1).0[0] as u8;
            }
            Some(Entry::Span(a, b, step)) => {
                days.dow |= span_bits(Field::Dow, a, b, step).0[0] as u8
            }
            None => {
                if let Some(d) = tok.strip_suffix('l').and_then(|v| Field::Dow.value(v)) {
                    days.last_dow |= 1 << d;
                } else if let Some((d, n)) = tok.split_once('#')
                    && let Some(d) = Field::Dow.value(d)
                    && let Some(n @ 1..=5) = n.parse::<u32>().ok().filter(|_| n.len() == 1)
                {
                    days.nth_dow |= 1 << ((n - 1) * 7 + d);
                } else {
                    return Err(bad_entry(Field::Dow, &tok));
                }
            }
        }
    }
    Ok(())
}

/// cronexpr's `@` shortcuts, replaced wherever they occur, as its `strings.Replacer` does.
const ALIASES: [(&str, &str); 6] = [
    ("@yearly", "0 0 0 1 1 * *"),
    ("@annually", "0 0 0 1 1 * *"),
    ("@monthly", "0 0 0 1 * * *"),
    ("@weekly", "0 0 0 * * 0 *"),
    ("@daily", "0 0 0 * * * *"),
    ("@hourly", "0 0 * * * * *"),
];

fn expand_aliases(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while let Some(c) = rest.chars().next() {
        for (alias, expansion) in ALIASES {
            if let Some(after) = rest.strip_prefix(alias) {
                out.push_str(expansion);
                rest = after;
                continue 'scan;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

impl Expr {
    pub(super) fn parse(text: &str, dialect: CronDialect) -> Result<Expr, String> {
        let expanded;
        let text = match dialect {
            CronDialect::Seconds7 => {
                expanded = expand_aliases(text);
                expanded.as_str()
            }
            CronDialect::Minutes5 => text,
        };
        let fields: Vec<&str> = text.split_ascii_whitespace().collect();
        let n = fields.len();
        // Field positions: (second, minute, hour, dom, month, dow, year).
        let (sec, rest, year) = match dialect {
            CronDialect::Seconds7 if n == 7 => (Some(fields[0]), &fields[1..6], Some(fields[6])),
            CronDialect::Seconds7 if n == 6 => (None, &fields[0..5], Some(fields[5])),
            CronDialect::Seconds7 if n == 5 => (None, &fields[0..5], None),
            CronDialect::Seconds7 => {
                return Err(format!(
                    "{n} fields: expected 7 (sec min hour dom month dow year); cronexpr also \
                     reads 5 or 6 fields, with second 0"
                ));
            }
            CronDialect::Minutes5 if n == 5 => (None, &fields[..], None),
            CronDialect::Minutes5 => {
                return Err(format!("{n} fields: expected 5 (min hour dom month dow)"));
            }
        };
        let seconds = match (sec, dialect) {
            (Some(f), _) => parse_plain(Field::Second, f)?.0[0],
            (None, CronDialect::Seconds7) => 1, // second 0 only
            (None, CronDialect::Minutes5) => FULL60,
        };
        let minutes = parse_plain(Field::Minute, rest[0])?.0[0];
        let hours = parse_plain(Field::Hour, rest[1])?.0[0];
        let mut days = DaySpec::default();
        parse_dom(rest[2], &mut days)?;
        let months = parse_plain(Field::Month, rest[3])?.0[0] as u16;
        parse_dow(rest[4], &mut days)?;
        let years = match (year, dialect) {
            (_, CronDialect::Minutes5) => None,
            (Some(f), _) => Some(YearSet(parse_plain(Field::Year, f)?.0)),
            (None, _) => Some(YearSet(span_bits(Field::Year, 1970, 2099, 1).0)),
        };
        Ok(Expr { seconds, minutes, hours, days, months, years })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, set, utc};
    use crate::periods::CronDialect::{Minutes5, Seconds7};

    #[test]
    fn day_of_week_zero_and_seven_are_sunday() {
        let sunday = utc("2025-06-08T12:00:00Z");
        let monday = utc("2025-06-09T12:00:00Z");
        let saturday = utc("2025-06-07T12:00:00Z");
        for dow in ["0", "7", "07", "sun", "SUN", "Sunday", "sun,7"] {
            let p = set(&[&format!("* * * * * {dow} *")], "UTC", Seconds7);
            assert!(p.in_period(sunday), "{dow}");
            assert!(!p.in_period(monday), "{dow}");
            assert!(!p.in_period(saturday), "{dow}");
        }
        let p = set(&["* * * * 1 6 *"], "UTC", Seconds7);
        assert!(!p.in_period(saturday)); // June is not month 1
        let sat = set(&["* * * * * 6 *"], "UTC", Seconds7);
        assert!(sat.in_period(saturday));
        // cronexpr quirks: 7 becomes 0 before a range is expanded, and descending ranges are
        // empty, so `5-7` selects no day and `0-7` only Sunday.
        let empty = set(&["* * * * * 5-7 *"], "UTC", Seconds7);
        let only_sunday = set(&["* * * * * 0-7 *"], "UTC", Seconds7);
        for day in 1..=7 {
            let t = utc(&format!("2025-06-0{day}T12:00:00Z"));
            assert!(!empty.in_period(t));
            assert_eq!(only_sunday.in_period(t), day == 1);
        }
        let weekend = set(&["* * * * * sat,sun *"], "UTC", Seconds7);
        assert!(weekend.in_period(saturday) && weekend.in_period(sunday));
        let every_other = set(&["* * * * * */2 *"], "UTC", Seconds7); // Sun, Tue, Thu, Sat
        assert!(every_other.in_period(sunday) && !every_other.in_period(monday));
    }

    #[test]
    fn day_of_month_and_day_of_week_together_are_a_union() {
        let at = |d: u32| utc(&format!("2025-06-{d:02}T12:00:00Z")); // June 1st is a Sunday
        let both = set(&["* * * 1 * mon *"], "UTC", Seconds7);
        assert!(both.in_period(at(1)) && both.in_period(at(2)) && both.in_period(at(9)));
        assert!(!both.in_period(at(3)));
        for only_monday in ["* * * * * mon *", "* * * ? * mon *", "* * * *,3 * mon *"] {
            let p = set(&[only_monday], "UTC", Seconds7);
            assert!(!p.in_period(at(1)) && p.in_period(at(2)) && !p.in_period(at(3)));
        }
        let all_days = set(&["* * * 1-31 * mon *"], "UTC", Seconds7);
        assert!((1..=30).all(|d| all_days.in_period(at(d))));
        let first = set(&["* * * 1 * * *"], "UTC", Seconds7);
        assert!(first.in_period(at(1)) && !first.in_period(at(2)));
        let first_q = set(&["* * * 1 * ? *"], "UTC", Seconds7);
        assert!(first_q.in_period(at(1)) && !first_q.in_period(at(2)));
        let dom_step = set(&["* * * */10 * fri *"], "UTC", Seconds7); // 1, 11, 21, 31 or Friday
        assert!(dom_step.in_period(at(11)) && dom_step.in_period(at(6)));
        assert!(!dom_step.in_period(at(10)));
    }

    #[test]
    fn special_day_entries() {
        let noon = |d: &str| utc(&format!("{d}T12:00:00Z"));
        let last = set(&["* * * L * * *"], "UTC", Seconds7);
        assert!(last.in_period(noon("2024-02-29")) && !last.in_period(noon("2024-02-28")));
        assert!(last.in_period(noon("2025-02-28")) && last.in_period(noon("2025-06-30")));
        // May 2025 ends on a Saturday: the last weekday is Friday the 30th.
        let lw = set(&["* * * LW * * *"], "UTC", Seconds7);
        assert!(lw.in_period(noon("2025-05-30")) && !lw.in_period(noon("2025-05-31")));
        // August 2025 ends on a Sunday: Friday the 29th.
        assert!(lw.in_period(noon("2025-08-29")) && !lw.in_period(noon("2025-08-31")));
        // June 15th 2025 is a Sunday: 15W is Monday the 16th.
        let w15 = set(&["* * * 15w * * *"], "UTC", Seconds7);
        assert!(w15.in_period(noon("2025-06-16")) && !w15.in_period(noon("2025-06-15")));
        // March 1st 2025 is a Saturday: 1W is Monday the 3rd (it does not leave the month).
        let w1 = set(&["* * * 1W * * *"], "UTC", Seconds7);
        assert!(w1.in_period(noon("2025-03-03")) && !w1.in_period(noon("2025-02-28")));
        assert!(!w1.in_period(noon("2025-03-01")));
        // Last Friday of June 2025: the 27th; third Friday: the 20th; fifth Sunday: the 29th.
        let fri_l = set(&["* * * * * 5L *"], "UTC", Seconds7);
        assert!(fri_l.in_period(noon("2025-06-27")) && !fri_l.in_period(noon("2025-06-20")));
        let fri_3 = set(&["* * * * * fri#3 *"], "UTC", Seconds7);
        assert!(fri_3.in_period(noon("2025-06-20")) && !fri_3.in_period(noon("2025-06-27")));
        let sun_5 = set(&["* * * * * 7#5 *"], "UTC", Seconds7);
        assert!(sun_5.in_period(noon("2025-06-29")) && !sun_5.in_period(noon("2025-06-22")));
        assert!(!sun_5.in_period(noon("2025-07-27"))); // July 2025 has four Sundays
    }

    #[test]
    fn years_five_and_six_fields_and_aliases() {
        let y2026 = set(&["* * * * * * 2026"], "UTC", Seconds7);
        assert!(!y2026.in_period(utc("2025-12-31T23:59:58Z")));
        assert!(y2026.in_period(utc("2025-12-31T23:59:59Z")));
        let always = set(&["* * * * * * *"], "UTC", Seconds7);
        assert!(always.in_period(utc("2099-12-31T23:59:58Z")));
        assert!(!always.in_period(utc("2099-12-31T23:59:59Z"))); // cronexpr stops at 2099
        assert!(!always.in_period(utc("1969-12-31T12:00:00Z")));
        let late = set(&["* * * * * * 2098-2099"], "UTC", Seconds7);
        assert!(late.in_period(utc("2098-06-01T00:00:00Z")));
        assert!(late.in_period(utc("2099-06-01T00:00:00Z")));
        assert!(!late.in_period(utc("2097-06-01T00:00:00Z")));
        // Five fields in the docker+machine dialect: second 0 only, one second a minute.
        let five = set(&["* 9-17 * * mon-fri"], "UTC", Seconds7);
        assert!(five.in_period(utc("2025-06-02T09:10:59.000Z")));
        assert!(!five.in_period(utc("2025-06-02T09:10:30.000Z")));
        assert!(!five.in_period(utc("2025-06-02T09:11:00.000Z")));
        // Six fields: the sixth is the year.
        let six = set(&["* * * * * 2025"], "UTC", Seconds7);
        assert!(six.in_period(utc("2025-06-02T09:10:59Z")));
        assert!(!six.in_period(utc("2026-06-02T09:10:59Z")));
        let hourly = set(&["@hourly"], "UTC", Seconds7);
        assert!(hourly.in_period(utc("2025-06-02T09:59:59.500Z")));
        assert!(!hourly.in_period(utc("2025-06-02T09:00:00.500Z")));
        let daily = set(&["@daily"], "UTC", Seconds7);
        assert!(daily.in_period(utc("2025-06-02T23:59:59.100Z")));
        assert!(!daily.in_period(utc("2025-06-02T22:59:59.100Z")));
        let names = set(&["* * * * JAN-Mar,december MON-fri *"], "UTC", Seconds7);
        assert!(names.in_period(utc("2025-01-06T12:00:00Z")));
        assert!(!names.in_period(utc("2025-06-02T12:00:00Z")));
        assert!(names.in_period(utc("2025-12-01T12:00:00Z")));
        let steps = set(&["5/20 10-50/10 * * * * *"], "UTC", Seconds7); // 5, 25, 45
        assert!(steps.in_period(utc("2025-06-02T12:30:24Z")));
        assert!(!steps.in_period(utc("2025-06-02T12:30:25Z")));
        assert!(!steps.in_period(utc("2025-06-02T12:35:24Z")));
        // Descending ranges select nothing (cronexpr does not wrap around).
        let wrap = set(&["* * 22-6 * * * *"], "UTC", Seconds7);
        assert!(!wrap.in_period(utc("2025-06-02T23:00:00Z")));
        assert!(!wrap.in_period(utc("2025-06-02T03:00:00Z")));
    }

    #[test]
    fn errors_name_the_expression_and_what_is_expected() {
        let e = err(&["* * * *"], "UTC", Seconds7);
        assert!(e.contains("periods[0]") && e.contains("\"* * * *\"") && e.contains("4 fields"));
        assert!(e.contains("expected 7"), "{e}");
        let e = err(&["* * 9-17 * * mon-fri * *"], "UTC", Seconds7);
        assert!(e.contains("8 fields") && e.contains("expected 7"), "{e}");
        let e = err(&["* * * * * * *"], "UTC", Minutes5);
        assert!(e.contains("7 fields") && e.contains("expected 5"), "{e}");
        let e = err(&["60 * * * * * *"], "UTC", Seconds7);
        assert!(e.contains("second field") && e.contains("\"60\"") && e.contains("0-59"), "{e}");
        let e = err(&["* * 24 * * * *"], "UTC", Seconds7);
        assert!(e.contains("hour field") && e.contains("\"24\"") && e.contains("0-23"), "{e}");
        let e = err(&["* * * 0 * * *"], "UTC", Seconds7);
        assert!(e.contains("day-of-month field") && e.contains("1-31"), "{e}");
        let e = err(&["* * * * 13 * *"], "UTC", Seconds7);
        assert!(e.contains("month field") && e.contains("1-12"), "{e}");
        let e = err(&["* * * * * * 2100"], "UTC", Seconds7);
        assert!(e.contains("year field") && e.contains("1970-2099"), "{e}");
        let e = err(&["* * * * * * *", "* * 9-17 * * mon-fry *"], "UTC", Seconds7);
        assert!(e.contains("periods[1]") && e.contains("mon-fry"), "{e}");
        assert!(e.contains("day-of-week field") && e.contains("sun-sat"), "{e}");
        let e = err(&["*/0 * * * * * *"], "UTC", Seconds7);
        assert!(e.contains("step") && e.contains("1 to 59"), "{e}");
        let e = err(&["* * * * * */7 *"], "UTC", Seconds7);
        assert!(e.contains("step") && e.contains("1 to 6"), "{e}");
        let e = err(&["* * , * * * *"], "UTC", Seconds7);
        assert!(e.contains("hour field") && e.contains("missing"), "{e}");
        let e = err(&["* * * * * 8#1 *"], "UTC", Seconds7);
        assert!(e.contains("day-of-week field"), "{e}");
        let e = err(&["* * * * * 1#6 *"], "UTC", Seconds7);
        assert!(e.contains("1#6"), "{e}");
        let e = err(&["@reboot"], "UTC", Seconds7);
        assert!(e.contains("1 fields"), "{e}");
        let e = err(&["* * * * *"], "Mars/Olympus_Mons", Seconds7);
        assert!(e.contains("\"Mars/Olympus_Mons\"") && e.contains("IANA"), "{e}");
        let e = err(&["* * * * *"], "europe/berlin", Minutes5);
        assert!(e.contains("\"Europe/Berlin\"") && e.contains("case-sensitive"), "{e}");
        // Entries cronexpr skips: empty list items.
        assert!(
            set(&["* * 9,,17, * * * *"], "UTC", Seconds7).in_period(utc("2025-06-02T17:00:00Z"))
        );
        assert!(set(&[], "UTC", Seconds7).exprs.is_empty());
    }
}
