//! Autoscaling periods: cron expressions read against the calendar, as GitLab Runner reads them.
//!
//! Two config sections carry periods, and this module reads both:
//!
//! - `[[runners.machine.autoscaling]]` (docker+machine, reference §2.8): `Periods` holds
//!   [`gorhill/cronexpr`] expressions with 7 fields, `sec min hour dom month dow year`
//!   ([`CronDialect::Seconds7`]). `Timezone` gives the zone.
//! - `[[runners.autoscaler.policy]]` (taskscaler, reference §3.1): `periods` holds 5-field cron
//!   expressions, `min hour dom month dow` ([`CronDialect::Minutes5`]). `timezone` gives the zone.
//!
//! In both, sections are scanned in file order and the **last** section in period wins.
//! With none in period, the root values apply. [`CalendarPeriods`] implements
//! [`PeriodSchedule`] over a list of sections.
//!
//! # When a section is in period
//!
//! **Seconds7** follows GitLab Runner `helpers/timeperiod/period.go` (`InPeriod`). For each
//! expression it computes `next := expr.Next(now)`, the first matching whole second strictly
//! after `now`, in the section's zone. The section is in period iff `|now − next| ≤ 1 s` for
//! some expression. `next` is a whole second after `floor(now)`, so this holds iff `next` is
//! exactly `floor(now) + 1 s`. So an instant `t` is in period iff the whole second that
//! *follows* `floor(t)` matches. The ":59 detail" follows from that: the last second of a
//! matching block is excluded, and the second before it is included.
//! `* * 9-17 * * mon-fri *` is in period from 08:59:59.000 to 17:59:58.999 local time
//! (reference §2.8, runner issue 2170).
//!
//! **Minutes5**: in period iff the current local minute matches. The taskscaler source was not
//! available (reference §0 and §3), so this is the plain cron reading at minute resolution.
//! The field grammar is the one described below for cronexpr, but with exactly 5 fields, no
//! `@` shortcuts and no year limit. That part is also a reconstruction.
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
//! unknown entry after a `*` in the same field (cronexpr stops reading at the `*`). A time zone
//! name must match the IANA spelling exactly, case included, as Go's `time.LoadLocation` does
//! on Linux.
//!
//! # Time zones
//!
//! Zones come from jiff's bundled copy of the IANA database (feature `tzdb-bundle-always`).
//! Results therefore do not depend on the host's tzdata. An **empty** zone, or `Local`, means
//! the runner host's local zone in GitLab Runner. Reading it here would make a simulation
//! depend on the machine it runs on, so **UTC** is used instead. The caller may log a warning.
//!
//! Evaluation runs on the UTC timeline, and each candidate instant is converted to local civil
//! time. Near DST transitions the local clock jumps. A local hour that is skipped never
//! matches, and a repeated one matches both times. Go's cronexpr builds its `next` candidate
//! with `time.Date` on civil fields, so around a transition GitLab Runner can disagree with
//! this civil reading. By our reading of Go's `time.Date`, which could not be run here, an
//! all-`*` expression in `Europe/Berlin` is *not* in period for about an hour on the autumn
//! transition night, because the candidate 02:xx:yy resolves to the later, CET occurrence.
//! That Go artefact is not modelled.
//!
//! # Next change
//!
//! [`PeriodSchedule::next_change_after`] is exact. Answers only change at whole seconds, and
//! the search walks bitsets of seconds, minutes and hours over civil days, split at the zone's
//! offset transitions. Its cost does not depend on how long a constant stretch lasts. It looks
//! up to 400 days ahead. If nothing changes in that window it returns the window's end, which
//! is an allowed early answer, so a period such as `0 0 0 29 2 * *` is not missed. It returns
//! `None` only when nothing can ever change.
//!
//! [`gorhill/cronexpr`]: https://github.com/gorhill/cronexpr

use fleetsim_core::periods::PeriodSchedule;
use fleetsim_core::time::SimTime;
use jiff::Timestamp;
use jiff::tz::{TimeZone, TimeZoneDatabase};

const DAY: i64 = 86_400;
/// How far [`CalendarPeriods::next_change_after`] looks for an exact change.
const HORIZON_S: i64 = 400 * DAY;
/// Bits 0..=59.
const FULL60: u64 = (1 << 60) - 1;
/// Bits 0..=23.
const FULL24: u64 = (1 << 24) - 1;
/// Bits 1..=12.
const FULL_MONTHS: u16 = 0b1_1111_1111_1110;
/// cronexpr's year range.
const FIRST_YEAR: i64 = 1970;
const LAST_YEAR: i64 = 2099;

/// Which cron syntax a section's periods use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronDialect {
    /// docker+machine `[[runners.machine.autoscaling]]`: gorhill/cronexpr, 7 fields
    /// `sec min hour dom month dow year` (5 and 6 fields are accepted as cronexpr does), with
    /// the `InPeriod` rule of GitLab Runner (the whole second after `now` must match).
    Seconds7,
    /// taskscaler `[[runners.autoscaler.policy]]`: 5 fields `min hour dom month dow`; in
    /// period while the current local minute matches.
    Minutes5,
}

/// The period expressions of one section and its time zone.
#[derive(Debug, Clone)]
pub struct PeriodSet {
    exprs: Vec<Expr>,
    tz: TimeZone,
    /// Seconds between the instant asked about and the second whose civil fields decide it:
    /// 1 for [`CronDialect::Seconds7`] (the second after `now`), 0 for `Minutes5`.
    lead: i64,
}

impl PeriodSet {
    /// Parses a section's `periods` and `timezone`.
    ///
    /// An empty `timezone`, or `Local`, means UTC here. See the module documentation.
    /// An empty `periods` list is never in period.
    ///
    /// # Errors
    ///
    /// A message naming the first bad expression, with its index and text, and what was
    /// expected. Or a message naming the unknown time zone.
    pub fn parse(
        periods: &[String],
        timezone: &str,
        dialect: CronDialect,
    ) -> Result<PeriodSet, String> {
        let exprs = periods
            .iter()
            .enumerate()
            .map(|(i, text)| {
                Expr::parse(text, dialect).map_err(|why| format!("periods[{i}] = {text:?}: {why}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tz = load_zone(timezone)?;
        let lead = match dialect {
            CronDialect::Seconds7 => 1,
            CronDialect::Minutes5 => 0,
        };
        Ok(PeriodSet { exprs, tz, lead })
    }

    /// Whether the section is in period at `at`.
    pub fn in_period(&self, at: Timestamp) -> bool {
        let sec = at.as_second() - i64::from(at.subsec_nanosecond() < 0);
        let mut seg = Segment::EMPTY;
        self.in_period_sec(sec, &mut seg)
    }

    /// Whether the section is in period during the whole second starting at unix second `sec`.
    fn in_period_sec(&self, sec: i64, seg: &mut Segment) -> bool {
        let e = sec + self.lead;
        match seg.lookup(&self.tz, e) {
            Some((off, _)) => self.exprs.iter().any(|x| x.matches_civil(e + off)),
            None => false,
        }
    }
}

/// The active section of a list of [`PeriodSet`]s over simulated time: implements
/// [`PeriodSchedule`], with `SimTime(0)` at `origin`.
#[derive(Debug, Clone)]
pub struct CalendarPeriods {
    origin_ns: i128,
    sections: Vec<PeriodSet>,
    /// One offset cache per section (sections may have different zones).
    segs: Vec<Segment>,
    /// `(unix second, active section)`: the answer is constant within a second.
    active_cache: Option<(i64, Option<usize>)>,
    /// `(from, change)`: computed at unix second `from`, the first second after it at which the
    /// active section may differ (`None`: never). The same answer holds for every second in
    /// `from..change`.
    change_cache: Option<(i64, Option<i64>)>,
    /// `(from, until, active)` in simulated time: the active section is `active` for every
    /// instant in `from..until` (`until` `None`: from `from` on). `active` is asked after every
    /// input of a runner with periods; inside the span it answers without turning the instant
    /// into a calendar second (a 128-bit division) at all.
    span: Option<(SimTime, Option<SimTime>, Option<usize>)>,
}

impl CalendarPeriods {
    /// A schedule over `sections` in config order (the last one in period wins), with
    /// `SimTime(0)` at the instant `origin`.
    pub fn new(origin: Timestamp, sections: Vec<PeriodSet>) -> CalendarPeriods {
        let segs = vec![Segment::EMPTY; sections.len()];
        CalendarPeriods {
            origin_ns: origin.as_nanosecond(),
            sections,
            segs,
            active_cache: None,
            change_cache: None,
            span: None,
        }
    }

    /// The unix second containing `now`.
    fn sec_of(&self, now: SimTime) -> Option<i64> {
        let ns = self.origin_ns + i128::from(now.as_ms()) * 1_000_000;
        i64::try_from(ns.div_euclid(1_000_000_000)).ok()
    }

    /// The first simulated millisecond at or after the start of unix second `sec`.
    fn sim_of(&self, sec: i64) -> Option<SimTime> {
        let ns = i128::from(sec) * 1_000_000_000 - self.origin_ns;
        let ms = (ns + 999_999).div_euclid(1_000_000);
        u64::try_from(ms).ok().map(SimTime)
    }

    fn active_at_sec(&mut self, sec: i64) -> Option<usize> {
        if let Some((s, a)) = self.active_cache
            && s == sec
        {
            return a;
        }
        let mut active = None;
        for i in (0..self.sections.len()).rev() {
            if self.sections[i].in_period_sec(sec, &mut self.segs[i]) {
                active = Some(i);
                break;
            }
        }
        self.active_cache = Some((sec, active));
        active
    }

    /// The first unix second after `s` at which the active section differs, `s + HORIZON_S`
    /// when none does before that, or `None` when it can never change.
    fn compute_next_change(&mut self, s: i64) -> Option<i64> {
        let active = self.active_at_sec(s);
        let first_higher = active.map_or(0, |i| i + 1);
        let starts_dead = self.sections[first_higher..]
            .iter()
            .all(|set| set.exprs.iter().all(|x| x.dead_after(s)));
        let end_never = active.is_none_or(|i| self.sections[i].exprs.iter().any(Expr::always));
        if starts_dead && end_never {
            return None;
        }
        let horizon = s.saturating_add(HORIZON_S);
        // The answer changes exactly when a later section comes into period, or when the
        // active one goes out of period (all later sections are out of period at `s`).
        let mut bound = horizon;
        for j in first_higher..self.sections.len() {
            if let Some(u) = self.set_next_start(j, s, bound) {
                bound = u;
            }
        }
        if let Some(i) = active
            && let Some(u) = self.set_next_end(i, s, bound)
        {
            bound = u;
        }
        Some(bound)
    }

    /// The first unix second in `(s, bound)` at which section `j` is in period.
    fn set_next_start(&mut self, j: usize, s: i64, bound: i64) -> Option<i64> {
        let set = &self.sections[j];
        let seg = &mut self.segs[j];
        let mut limit = bound + set.lead;
        let mut found = None;
        for x in &set.exprs {
            if let Some(e) = x.next_where(&set.tz, seg, s + set.lead, limit, true) {
                limit = e;
                found = Some(e - set.lead);
            }
        }
        found
    }

    /// The first unix second in `(s, bound)` at which section `i`, in period at `s`, is not.
    fn set_next_end(&mut self, i: usize, s: i64, bound: i64) -> Option<i64> {
        let set = &self.sections[i];
        let seg = &mut self.segs[i];
        let limit = bound + set.lead;
        let mut e = s + set.lead;
        loop {
            let (off, _) = seg.lookup(&set.tz, e)?;
            // The section is in period at least until the latest end of the runs of the
            // expressions that match at `e`; jump there and look again.
            let mut far: Option<i64> = None;
            for x in &set.exprs {
                if x.matches_civil(e + off) {
                    let end = x.next_where(&set.tz, seg, e, limit, false)?;
                    far = Some(far.map_or(end, |f| f.max(end)));
                }
            }
            match far {
                Some(f) => e = f,
                None if e - set.lead > s => return Some(e - set.lead),
                None => return None, // not in period at `s` after all: nothing to end
            }
            if e >= limit {
                return None;
            }
        }
    }
}

impl PeriodSchedule for CalendarPeriods {
    fn active(&mut self, now: SimTime) -> Option<usize> {
        if let Some((from, until, active)) = self.span
            && from <= now
            && until.is_none_or(|u| now < u)
        {
            return active;
        }
        let sec = self.sec_of(now)?;
        let active = self.active_at_sec(sec);
        // The active section is constant over the seconds `sec..change`, so over the instants
        // from `now` to the first one in the second `change` (computed apart from
        // `change_cache`, whose answers the fast path's wakeups depend on).
        let until = match self.compute_next_change(sec) {
            None => None,
            Some(change) => match self.sim_of(change) {
                Some(at) => Some(at),
                None => return active, // past the end of simulated time: no span
            },
        };
        self.span = Some((now, until, active));
        active
    }

    fn next_change_after(&mut self, now: SimTime) -> Option<SimTime> {
        let s = self.sec_of(now)?;
        let change = match self.change_cache {
            Some((from, change)) if from <= s && change.is_none_or(|u| s < u) => change,
            _ => {
                let change = self.compute_next_change(s);
                self.change_cache = Some((s, change));
                change
            }
        };
        let at = self.sim_of(change?)?;
        debug_assert!(at > now, "next change {at} is not after {now}");
        Some(at)
    }
}

/// Loads a zone from the bundled IANA database; empty and `Local` mean UTC (see the module
/// documentation).
pub fn load_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() || name == "Local" || name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    let tz = TimeZoneDatabase::bundled().get(name).map_err(|_| {
        format!(
            "unknown time zone {name:?}: expected an IANA time zone name such as \
             \"Europe/Berlin\" or \"UTC\""
        )
    })?;
    match tz.iana_name() {
        Some(canonical) if canonical != name => Err(format!(
            "unknown time zone {name:?}: time zone names are case-sensitive (GitLab Runner \
             loads them as file names); expected {canonical:?}"
        )),
        _ => Ok(tz),
    }
}

/// A stretch `[lo, hi)` of unix seconds over which a zone's UTC offset is `off` seconds.
#[derive(Debug, Clone, Copy)]
struct Segment {
    lo: i64,
    hi: i64,
    off: i64,
}

impl Segment {
    const EMPTY: Segment = Segment { lo: 0, hi: 0, off: 0 };

    /// The offset at unix second `e` and the end of its stretch (the next transition), from
    /// the cache when `e` is inside it. `None` outside jiff's range of instants.
    fn lookup(&mut self, tz: &TimeZone, e: i64) -> Option<(i64, i64)> {
        if self.lo <= e && e < self.hi {
            return Some((self.off, self.hi));
        }
        let ts = Timestamp::from_second(e).ok()?;
        let off = i64::from(tz.to_offset(ts).seconds());
        let hi = tz.following(ts).next().map_or(i64::MAX, |t| t.timestamp().as_second()).max(e + 1);
        *self = Segment { lo: e, hi, off };
        Some((off, hi))
    }
}

// ---------------------------------------------------------------------------------------------
// Civil calendar arithmetic on "local seconds since 1970-01-01T00:00:00" (proleptic Gregorian).

/// Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
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
struct Civil {
    /// Days since 1970-01-01.
    days: i64,
    year: i64,
    month: u32,
    day: u32,
    /// 0 = Sunday.
    weekday: u32,
    month_len: u32,
    /// Second of the day.
    sod: u32,
}

impl Civil {
    fn at(c: i64) -> Civil {
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

fn hms(sod: u32) -> (u32, u32, u32) {
    (sod / 3600, sod / 60 % 60, sod % 60)
}

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
struct Expr {
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
    fn matches_civil(&self, c: i64) -> bool {
        let cv = Civil::at(c);
        self.date_ok(&cv) && self.tod_ok(cv.sod)
    }

    /// Field-level match, for callers that already have the civil fields.
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    fn matches_fields(
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
    fn dead_after(&self, s: i64) -> bool {
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
    fn always(&self) -> bool {
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
    fn next_where(
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
    fn parse(text: &str, dialect: CronDialect) -> Result<Expr, String> {
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
    use super::*;
    use jiff::Zoned;
    use proptest::prelude::*;

    use CronDialect::{Minutes5, Seconds7};

    fn set(periods: &[&str], tz: &str, dialect: CronDialect) -> PeriodSet {
        let periods: Vec<String> = periods.iter().map(|p| (*p).to_owned()).collect();
        PeriodSet::parse(&periods, tz, dialect).unwrap()
    }

    fn err(periods: &[&str], tz: &str, dialect: CronDialect) -> String {
        let periods: Vec<String> = periods.iter().map(|p| (*p).to_owned()).collect();
        PeriodSet::parse(&periods, tz, dialect).unwrap_err()
    }

    /// An instant written in UTC, e.g. `2025-06-02T08:59:59.000Z`.
    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// An instant written as local time in a zone, e.g. `2025-06-02T08:59:59[Asia/Seoul]`.
    fn local(s: &str) -> Timestamp {
        s.parse::<Zoned>().unwrap().timestamp()
    }

    /// The brute-force oracle: jiff's own civil conversion of the deciding second, then the
    /// field matcher. Shares only the field-level `matches_fields` with the fast path.
    fn brute_set(set: &PeriodSet, sec: i64) -> bool {
        let dt = set.tz.to_datetime(Timestamp::from_second(sec + set.lead).unwrap());
        let wd = dt.weekday().to_sunday_zero_offset() as u32;
        set.exprs.iter().any(|x| {
            x.matches_fields(
                i64::from(dt.year()),
                dt.month() as u32,
                dt.day() as u32,
                wd,
                dt.days_in_month() as u32,
                dt.hour() as u32,
                dt.minute() as u32,
                dt.second() as u32,
            )
        })
    }

    fn brute_active(sets: &[PeriodSet], sec: i64) -> Option<usize> {
        (0..sets.len()).rev().find(|&i| brute_set(&sets[i], sec))
    }

    /// Milliseconds from `origin` to `at`.
    fn sim(origin: Timestamp, at: Timestamp) -> SimTime {
        let ms = (at.as_nanosecond() - origin.as_nanosecond()) / 1_000_000;
        SimTime(u64::try_from(ms).unwrap())
    }

    #[test]
    fn the_59_detail_in_milliseconds() {
        let p = set(&["* * 9-17 * * mon-fri *"], "UTC", Seconds7);
        // Monday 2025-06-02.
        assert!(!p.in_period(utc("2025-06-02T08:59:58.999Z")));
        assert!(p.in_period(utc("2025-06-02T08:59:59.000Z")));
        assert!(p.in_period(utc("2025-06-02T09:00:00.000Z")));
        assert!(p.in_period(utc("2025-06-02T17:59:58.000Z")));
        assert!(p.in_period(utc("2025-06-02T17:59:58.999Z")));
        assert!(!p.in_period(utc("2025-06-02T17:59:59.000Z")));
        assert!(!p.in_period(utc("2025-06-02T17:59:59.999Z")));
        assert!(!p.in_period(utc("2025-06-02T18:00:00.000Z")));
        // Friday evening to Monday morning.
        assert!(p.in_period(utc("2025-06-06T17:59:58.999Z")));
        assert!(!p.in_period(utc("2025-06-07T12:00:00Z")));
        assert!(!p.in_period(utc("2025-06-08T23:59:59.000Z")));
        assert!(!p.in_period(utc("2025-06-09T08:59:58.999Z")));
        assert!(p.in_period(utc("2025-06-09T08:59:59.000Z")));

        // The same edges through the schedule, with exact next changes.
        let origin = utc("2025-06-02T00:00:00Z");
        let mut cp = CalendarPeriods::new(origin, vec![p]);
        let start = sim(origin, utc("2025-06-02T08:59:59.000Z"));
        let end = sim(origin, utc("2025-06-02T17:59:59.000Z"));
        assert_eq!(cp.active(SimTime::ZERO), None);
        assert_eq!(cp.next_change_after(SimTime::ZERO), Some(start));
        assert_eq!(cp.active(start + 0), Some(0));
        assert_eq!(cp.active(SimTime(start.0 - 1)), None);
        assert_eq!(cp.next_change_after(start), Some(end));
        assert_eq!(cp.active(SimTime(end.0 - 1)), Some(0));
        assert_eq!(cp.active(end), None);
        // Friday's end is followed by Monday's start.
        let fri_end = sim(origin, utc("2025-06-06T17:59:59.000Z"));
        let mon = sim(origin, utc("2025-06-09T08:59:59.000Z"));
        assert_eq!(cp.next_change_after(fri_end), Some(mon));
    }

    #[test]
    fn a_seconds_field_counts_from_the_next_second() {
        let p = set(&["0-29 * * * * * *"], "UTC", Seconds7);
        assert!(p.in_period(utc("2025-06-02T12:00:00.000Z")));
        assert!(p.in_period(utc("2025-06-02T12:00:28.999Z")));
        assert!(!p.in_period(utc("2025-06-02T12:00:29.000Z")));
        assert!(!p.in_period(utc("2025-06-02T12:00:58.999Z")));
        assert!(p.in_period(utc("2025-06-02T12:00:59.000Z")));
        let origin = utc("2025-06-02T12:00:00Z");
        let mut cp = CalendarPeriods::new(origin, vec![p]);
        assert_eq!(cp.next_change_after(SimTime(5)), Some(SimTime::from_secs(29)));
        assert_eq!(cp.next_change_after(SimTime::from_secs(29)), Some(SimTime::from_secs(59)));
        assert_eq!(cp.next_change_after(SimTime::from_secs(59)), Some(SimTime::from_secs(89)));
    }

    #[test]
    fn minutes5_is_the_current_minute() {
        let p = set(&["* 9-17 * * mon-fri"], "", Minutes5);
        assert!(!p.in_period(utc("2025-06-02T08:59:59.999Z")));
        assert!(p.in_period(utc("2025-06-02T09:00:00.000Z")));
        assert!(p.in_period(utc("2025-06-02T17:59:59.999Z")));
        assert!(!p.in_period(utc("2025-06-02T18:00:00.000Z")));
        let origin = utc("2025-06-02T00:00:00Z");
        let mut cp = CalendarPeriods::new(origin, vec![p]);
        assert_eq!(
            cp.next_change_after(SimTime(1)),
            Some(sim(origin, utc("2025-06-02T09:00:00Z")))
        );
        assert_eq!(
            cp.next_change_after(sim(origin, utc("2025-06-02T09:00:00Z"))),
            Some(sim(origin, utc("2025-06-02T18:00:00Z")))
        );
    }

    #[test]
    fn weekdays_follow_the_zone_not_utc() {
        // Asia/Seoul is UTC+9: Sunday 20:00 UTC is Monday 05:00 in Seoul.
        let seoul = set(&["* * * * * mon-fri *"], "Asia/Seoul", Seconds7);
        let utc_set = set(&["* * * * * mon-fri *"], "UTC", Seconds7);
        assert!(seoul.in_period(utc("2025-06-01T20:00:00Z")));
        assert!(!utc_set.in_period(utc("2025-06-01T20:00:00Z")));
        // Friday 23:59:59 Seoul is Friday 14:59:59 UTC; Saturday starts at 15:00 UTC.
        assert!(seoul.in_period(utc("2025-06-06T14:59:58.999Z")));
        assert!(!seoul.in_period(utc("2025-06-06T14:59:59.000Z")));
        assert!(utc_set.in_period(utc("2025-06-06T14:59:59.000Z")));
        // Sunday 23:59:59 Seoul: the next second is Monday.
        assert!(!seoul.in_period(utc("2025-06-08T14:59:58.999Z")));
        assert!(seoul.in_period(utc("2025-06-08T14:59:59.000Z")));
        assert!(seoul.in_period(local("2025-06-09T05:00:00[Asia/Seoul]")));
    }

    #[test]
    fn the_last_matching_section_wins() {
        let sections = vec![
            set(&["* * * * * * *"], "UTC", Seconds7),
            set(&["* * 9-17 * * * *"], "UTC", Seconds7),
            set(&["* * 12 * * * *"], "UTC", Seconds7),
            set(&["* * * * * * 1980"], "UTC", Seconds7),
        ];
        let origin = utc("2025-06-02T00:00:00Z");
        let mut cp = CalendarPeriods::new(origin, sections);
        let at = |s: &str| sim(origin, utc(s));
        assert_eq!(cp.active(at("2025-06-02T08:00:00Z")), Some(0));
        assert_eq!(cp.active(at("2025-06-02T10:00:00Z")), Some(1));
        assert_eq!(cp.active(at("2025-06-02T12:30:00Z")), Some(2));
        assert_eq!(cp.active(at("2025-06-02T13:30:00Z")), Some(1));
        assert_eq!(
            cp.next_change_after(at("2025-06-02T10:00:00Z")),
            Some(at("2025-06-02T11:59:59Z"))
        );
        assert_eq!(
            cp.next_change_after(at("2025-06-02T12:00:00Z")),
            Some(at("2025-06-02T12:59:59Z"))
        );
        let mut none = CalendarPeriods::new(origin, vec![set(&["* * 3 * * * *"], "", Seconds7)]);
        assert_eq!(none.active(at("2025-06-02T10:00:00Z")), None);
    }

    #[test]
    fn an_empty_or_local_zone_is_utc() {
        let e = set(&["* * 9-17 * * mon-fri *"], "", Seconds7);
        let l = set(&["* * 9-17 * * mon-fri *"], "Local", Seconds7);
        let u = set(&["* * 9-17 * * mon-fri *"], "UTC", Seconds7);
        for s in [
            "2025-06-02T08:59:58.999Z",
            "2025-06-02T08:59:59.000Z",
            "2025-06-02T17:59:58.999Z",
            "2025-06-02T17:59:59.000Z",
            "2025-06-01T20:00:00Z",
        ] {
            assert_eq!(e.in_period(utc(s)), u.in_period(utc(s)), "{s}");
            assert_eq!(l.in_period(utc(s)), u.in_period(utc(s)), "{s}");
        }
        assert!(e.in_period(utc("2025-06-02T09:00:00Z")));
        assert_eq!(e.tz, TimeZone::UTC);
    }

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

    #[test]
    fn dst_hours_are_local_clock_hours() {
        // Europe/Berlin: 2025-03-30 02:00 CET jumps to 03:00 CEST (01:00 UTC);
        // 2025-10-26 03:00 CEST falls back to 02:00 CET (01:00 UTC).
        let two = set(&["* * 2 * * * *"], "Europe/Berlin", Seconds7);
        let origin = utc("2025-03-29T00:00:00Z");
        let mut cp = CalendarPeriods::new(origin, vec![two.clone()]);
        // The skipped hour never matches: the next start is on March 31st.
        assert_eq!(
            cp.next_change_after(SimTime::ZERO),
            Some(sim(origin, local("2025-03-29T01:59:59[Europe/Berlin]")))
        );
        let after = sim(origin, local("2025-03-29T02:59:59[Europe/Berlin]"));
        assert_eq!(
            cp.next_change_after(after),
            Some(sim(origin, local("2025-03-31T01:59:59[Europe/Berlin]")))
        );
        // The repeated hour matches twice, back to back: one run of two hours.
        let origin = utc("2025-10-25T12:00:00Z");
        let mut cp = CalendarPeriods::new(origin, vec![two]);
        let start = sim(origin, utc("2025-10-25T23:59:59Z")); // 01:59:59 CEST
        let end = sim(origin, utc("2025-10-26T01:59:59Z")); // 02:59:59 CET
        assert_eq!(cp.next_change_after(SimTime::ZERO), Some(start));
        assert_eq!(cp.active(start), Some(0));
        assert_eq!(cp.next_change_after(start), Some(end));
        assert_eq!(cp.active(SimTime(end.0 - 1)), Some(0));
        assert_eq!(cp.active(end), None);
    }

    #[test]
    fn a_sub_second_origin_maps_changes_to_the_first_millisecond() {
        let origin = utc("2025-06-02T08:59:58.700Z");
        let p = set(&["* * 9-17 * * mon-fri *"], "UTC", Seconds7);
        let mut cp = CalendarPeriods::new(origin, vec![p.clone()]);
        assert_eq!(cp.next_change_after(SimTime::ZERO), Some(SimTime(300)));
        assert_eq!(cp.active(SimTime(299)), None);
        assert_eq!(cp.active(SimTime(300)), Some(0));
        // Sub-millisecond origin: the change lies inside millisecond 299, so 300 is the first
        // millisecond at which the new answer holds.
        let origin = utc("2025-06-02T08:59:58.700400Z");
        let mut cp = CalendarPeriods::new(origin, vec![p]);
        assert_eq!(cp.next_change_after(SimTime::ZERO), Some(SimTime(300)));
        assert_eq!(cp.active(SimTime(299)), None);
        assert_eq!(cp.active(SimTime(300)), Some(0));
    }

    #[test]
    fn constant_schedules_never_change_and_far_ones_use_the_horizon() {
        let origin = utc("2025-03-01T00:00:00Z");
        let mut empty = CalendarPeriods::new(origin, vec![]);
        assert_eq!(empty.active(SimTime::ZERO), None);
        assert_eq!(empty.next_change_after(SimTime::ZERO), None);
        let mut no_exprs = CalendarPeriods::new(origin, vec![set(&[], "", Seconds7)]);
        assert_eq!(no_exprs.next_change_after(SimTime::ZERO), None);
        // The taskscaler default `* * * * *` is in period forever.
        let mut always = CalendarPeriods::new(origin, vec![set(&["* * * * *"], "", Minutes5)]);
        assert_eq!(always.active(SimTime::ZERO), Some(0));
        assert_eq!(always.next_change_after(SimTime::ZERO), None);
        // An expression with no possible value never starts.
        let mut never =
            CalendarPeriods::new(origin, vec![set(&["* * 22-6 * * * *"], "", Seconds7)]);
        assert_eq!(never.next_change_after(SimTime::ZERO), None);
        // Past 2099 nothing matches again.
        let late = utc("2100-01-05T00:00:00Z");
        let mut past = CalendarPeriods::new(late, vec![set(&["* * * * * * *"], "", Seconds7)]);
        assert_eq!(past.next_change_after(SimTime::ZERO), None);
        // February 29th: the next one is 2028, beyond the 400-day window; the search returns
        // the window's end, then finds it.
        let leap = set(&["* * * 29 2 * *"], "UTC", Seconds7);
        let mut cp = CalendarPeriods::new(origin, vec![leap]);
        let mut now = SimTime::ZERO;
        let mut hops = 0;
        let target = sim(origin, utc("2028-02-28T23:59:59Z"));
        while now < target {
            now = cp.next_change_after(now).unwrap();
            assert!(now <= target);
            hops += 1;
        }
        assert_eq!(hops, 3);
        assert_eq!(cp.active(now), Some(0));
        assert_eq!(cp.next_change_after(now), Some(sim(origin, utc("2028-02-29T23:59:59Z"))));
    }

    #[test]
    fn a_year_of_weekdays_in_berlin() {
        let origin = local("2025-01-01T00:00:00[Europe/Berlin]");
        let end = sim(origin, local("2026-01-01T00:00:00[Europe/Berlin]"));
        let mut cp = CalendarPeriods::new(
            origin,
            vec![set(&["* * 9-17 * * mon-fri *"], "Europe/Berlin", Seconds7)],
        );
        let mut now = SimTime::ZERO;
        let mut changes = 0;
        let mut expect = Some(0);
        while let Some(next) = cp.next_change_after(now) {
            if next >= end {
                break;
            }
            assert_eq!(cp.active(next), expect);
            let local_time = Timestamp::from_millisecond(
                origin.as_millisecond() + i64::try_from(next.0).unwrap(),
            )
            .unwrap()
            .to_zoned(TimeZone::get("Europe/Berlin").unwrap());
            let hms = (local_time.hour(), local_time.minute(), local_time.second());
            assert_eq!(hms, if expect.is_some() { (8, 59, 59) } else { (17, 59, 59) });
            expect = if expect.is_some() { None } else { Some(0) };
            changes += 1;
            now = next;
        }
        assert_eq!(changes, 2 * 261); // 261 weekdays in 2025
    }

    /// `active` remembers the span over which its answer holds; asked at instants going
    /// forward (as the fleet asks), it must answer as a fresh schedule asked once does, across
    /// section ends, DST changes and the span edges themselves.
    #[test]
    fn remembered_spans_answer_as_a_fresh_schedule() {
        let origin = local("2025-03-28T00:00:00[Europe/Berlin]");
        let sections = || {
            vec![
                set(&["* * 9-17 * * mon-fri *"], "Europe/Berlin", Seconds7),
                set(&["* 0-29 12 * * * *"], "Europe/Berlin", Seconds7),
            ]
        };
        let mut remembering = CalendarPeriods::new(origin, sections());
        let mut now = SimTime::ZERO;
        let mut step = 1u64;
        for _ in 0..20_000 {
            let fresh = CalendarPeriods::new(origin, sections()).active(now);
            assert_eq!(remembering.active(now), fresh, "at {now}");
            if let Some(next) = remembering.next_change_after(now) {
                // The span edges: the last instant before the change and the change itself.
                for at in [SimTime(next.0 - 1), next] {
                    let fresh = CalendarPeriods::new(origin, sections()).active(at);
                    assert_eq!(remembering.active(at), fresh, "at {at}");
                }
            }
            step = step * 7 % 1_000_003 + 1;
            now = now + step * 97;
        }
    }

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

    /// Expression sets for the brute-force comparison: `(periods, zone, dialect)` per section.
    type Config = &'static [(&'static [&'static str], &'static str, CronDialect)];
    const CONFIGS: &[Config] = &[
        &[(&["* * 9-17 * * mon-fri *"], "UTC", Seconds7), (&["0-29 * * * * * *"], "UTC", Seconds7)],
        &[
            (&["* * 1-3 * * * *"], "Europe/Berlin", Seconds7),
            (&["* 0-30 2 * * sun *", "*/20 */7 * * * * *"], "Europe/Berlin", Seconds7),
        ],
        &[
            (&["* * 8-18 * * mon-fri *"], "Asia/Seoul", Seconds7),
            (&["* * 12 1-7 * fri *"], "UTC", Seconds7),
        ],
        &[
            (&["*/15 1-2 * * *"], "America/New_York", Minutes5),
            (&["* 9-17 * * mon-fri"], "America/New_York", Minutes5),
            (&["* * 1 * * * *"], "America/New_York", Seconds7),
        ],
        &[
            (&["* * * * * * *"], "Europe/Berlin", Seconds7),
            (&["0-10 * * * *"], "", Minutes5),
            (&["0-29 30-31 2 * * * *"], "Europe/Berlin", Seconds7),
        ],
        &[
            (&["* * * L * * *", "* * 10 * * 5L *"], "Europe/Berlin", Seconds7),
            (&["* * * 15W * * *", "* 30 * * * 1#2 *"], "Europe/Berlin", Seconds7),
            (&["0 0 0 1 * * *"], "Europe/Berlin", Seconds7),
        ],
        &[(&["* 9-17 * * mon-fri"], "Europe/Berlin", Seconds7)],
        &[
            (&["* * * * * mon-fri *"], "Asia/Seoul", Seconds7),
            (&["* * * * 6"], "America/New_York", Minutes5),
        ],
        &[(&["* * * L * * *"], "Europe/Berlin", Seconds7)],
        &[(&["* * 1 * *", "* * 28-31 2,3 *"], "UTC", Minutes5)],
        &[
            (&["*/2 * * * * * *", "1-59/2 * * * * * *"], "Asia/Seoul", Seconds7),
            (&["* * 3 * * * *"], "Asia/Seoul", Seconds7),
        ],
    ];

    /// Window starts near DST transitions, weekends, month, year and leap-day ends.
    const BASES: &[&str] = &[
        "2025-03-29T12:00:00Z", // Berlin spring forward (03-30 01:00 UTC)
        "2025-10-25T12:00:00Z", // Berlin fall back (10-26 01:00 UTC)
        "2025-03-08T12:00:00Z", // New York spring forward (03-09 07:00 UTC)
        "2025-11-01T12:00:00Z", // New York fall back (11-02 06:00 UTC)
        "2025-06-06T00:00:00Z", // a weekend
        "2025-12-30T12:00:00Z", // the year end
        "2024-02-27T12:00:00Z", // a leap day
        "2025-05-29T12:00:00Z", // a month ending on a Saturday
    ];

    const WINDOW_S: i64 = 2 * DAY;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Walking `next_change_after` never skips a change, and every change it reports is a
        /// real one: compared with a second-by-second brute force over a two-day window.
        #[test]
        fn next_change_after_matches_brute_force(
            config in 0..CONFIGS.len(),
            base in 0..BASES.len(),
            shift_s in -DAY..DAY,
            origin_ms in 0i64..1000,
            start_ms in 0u64..3_600_000,
            jitter in proptest::collection::vec(0u64..2500, 16),
        ) {
            let sets: Vec<PeriodSet> =
                CONFIGS[config].iter().map(|&(p, tz, d)| set(p, tz, d)).collect();
            let origin = Timestamp::from_millisecond(
                utc(BASES[base]).as_millisecond() + shift_s * 1000 + origin_ms,
            )
            .unwrap();
            let mut cp = CalendarPeriods::new(origin, sets.clone());
            let mut now = SimTime(start_ms);
            let end_sec = cp.sec_of(now).unwrap() + WINDOW_S;
            let mut hops = 0usize;
            loop {
                let s = cp.sec_of(now).unwrap();
                let a = cp.active(now);
                prop_assert_eq!(a, brute_active(&sets, s), "active at {}", now);
                let next = cp.next_change_after(now);
                let stop = match next {
                    Some(c) => {
                        prop_assert!(c > now);
                        cp.sec_of(c).unwrap().min(end_sec)
                    }
                    None => end_sec,
                };
                for k in s + 1..stop {
                    prop_assert_eq!(brute_active(&sets, k), a, "skipped a change at second {}", k);
                }
                let Some(c) = next else { break };
                let cs = cp.sec_of(c).unwrap();
                if cs >= end_sec {
                    break;
                }
                prop_assert_ne!(brute_active(&sets, cs), a, "not a change at {}", c);
                prop_assert_eq!(cp.active(SimTime(c.0 - 1)), a);
                prop_assert_eq!(cp.active(c), brute_active(&sets, cs));
                // Now and then resume from a little after the change, not on it.
                now = if hops.is_multiple_of(3) { c + jitter[hops / 3 % jitter.len()] } else { c };
                hops += 1;
            }
        }
    }
}
