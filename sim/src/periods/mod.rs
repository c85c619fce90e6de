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
//! The module is in three files: this one holds the schedule (sections, zones, the active
//! section and its next change), `cron.rs` the cron grammar and matcher (its documentation
//! lists the field semantics and the cronexpr quirks kept), and `civil.rs` the civil date
//! arithmetic both use.
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
//! The field grammar is the one `cron.rs` describes for cronexpr, but with exactly 5 fields, no
//! `@` shortcuts and no year limit. That part is also a reconstruction.
//!
//! # Time zones
//!
//! Zones come from jiff's bundled copy of the IANA database (feature `tzdb-bundle-always`).
//! Results therefore do not depend on the host's tzdata. An **empty** zone, or `Local`, means
//! the runner host's local zone in GitLab Runner. Reading it here would make a simulation
//! depend on the machine it runs on, so **UTC** is used instead. The caller may log a warning.
//! A time zone name must match the IANA spelling exactly, case included, as Go's
//! `time.LoadLocation` does on Linux.
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

use civil::DAY;
use cron::Expr;

mod civil;
mod cron;

/// How far [`CalendarPeriods::next_change_after`] looks for an exact change.
const HORIZON_S: i64 = 400 * DAY;

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

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Zoned;
    use proptest::prelude::*;

    use CronDialect::{Minutes5, Seconds7};

    pub(super) fn set(periods: &[&str], tz: &str, dialect: CronDialect) -> PeriodSet {
        let periods: Vec<String> = periods.iter().map(|p| (*p).to_owned()).collect();
        PeriodSet::parse(&periods, tz, dialect).unwrap()
    }

    pub(super) fn err(periods: &[&str], tz: &str, dialect: CronDialect) -> String {
        let periods: Vec<String> = periods.iter().map(|p| (*p).to_owned()).collect();
        PeriodSet::parse(&periods, tz, dialect).unwrap_err()
    }

    /// An instant written in UTC, e.g. `2025-06-02T08:59:59.000Z`.
    pub(super) fn utc(s: &str) -> Timestamp {
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
