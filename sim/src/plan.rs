//! `sim plan`: the cheapest configuration of a grid that meets every SLO.
//!
//! SLOs are `METRIC<=VALUE` (or `<`): pending-time metrics `p50_pending`, `p95_pending`,
//! `p99_pending`, `mean_pending`, `p95_to_script`, `window_p95_pending` (with `--window`),
//! in seconds (`60`, `60s`, `2m`, `500ms`), and `cost_per_month` in USD (`500`, `$500`).
//!
//! Without `--monotone`, every point is run (in parallel) and the cheapest feasible one wins.
//! With `--monotone KEY`, the planner assumes that along KEY (numeric, increasing) the cost
//! does not fall and the SLO metrics do not rise — true of `runner.hosts`, `concurrent` or
//! `limit` for a saturated fleet, *not* of `IdleCount` with docker+machine (1 can be worse
//! than 0) — and binary-searches each line of the grid along KEY for its first feasible
//! value, in rounds that run the lines' probes in parallel.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::input_error::InputError;
use crate::sweep::grid::{self, Axis};
use crate::sweep::{PointResult, SweepFailure, SweepSpec, run_points};

/// What an SLO constrains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Median pending time.
    P50Pending,
    /// 95th percentile pending time.
    P95Pending,
    /// 99th percentile pending time.
    P99Pending,
    /// Mean pending time.
    MeanPending,
    /// 95th percentile of queued → script start.
    P95ToScript,
    /// 95th percentile pending time of jobs queued inside `--window`.
    WindowP95Pending,
    /// Cost per 30 days, USD.
    CostPerMonth,
}

impl Metric {
    fn parse(name: &str) -> Option<Metric> {
        Some(match name {
            "p50_pending" => Metric::P50Pending,
            "p95_pending" => Metric::P95Pending,
            "p99_pending" => Metric::P99Pending,
            "mean_pending" => Metric::MeanPending,
            "p95_to_script" => Metric::P95ToScript,
            "window_p95_pending" => Metric::WindowP95Pending,
            "cost_per_month" => Metric::CostPerMonth,
            _ => return None,
        })
    }

    /// The metric's value for a point.
    pub fn of(self, r: &PointResult) -> f64 {
        match self {
            Metric::P50Pending => r.p50_s,
            Metric::P95Pending => r.p95_s,
            Metric::P99Pending => r.p99_s,
            Metric::MeanPending => r.mean_s,
            Metric::P95ToScript => r.to_script_p95_s,
            Metric::WindowP95Pending => r.window_p95_s.unwrap_or(f64::INFINITY),
            Metric::CostPerMonth => r.cost_per_month_usd,
        }
    }
}

/// One service-level objective.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// As written.
    pub text: String,
    /// The metric.
    pub metric: Metric,
    /// The bound (seconds or USD).
    pub bound: f64,
    /// `<` rather than `<=`.
    pub strict: bool,
}

impl Slo {
    /// Parses `p95_pending<=60s`, `cost_per_month<$500`, ….
    pub fn parse(text: &str) -> Result<Slo, InputError> {
        let bad = |msg: &str| InputError::file("--slo", msg.to_owned()).key(text.to_owned());
        let (name, strict, value) = if let Some((n, v)) = text.split_once("<=") {
            (n, false, v)
        } else if let Some((n, v)) = text.split_once('<') {
            (n, true, v)
        } else {
            return Err(bad(
                "expected METRIC<=VALUE, e.g. p95_pending<=60s or cost_per_month<=500",
            ));
        };
        let metric = Metric::parse(name.trim()).ok_or_else(|| {
            bad("unknown metric; expected p50_pending, p95_pending, p99_pending, mean_pending, p95_to_script, window_p95_pending or cost_per_month")
        })?;
        let value = value.trim();
        let bound = if metric == Metric::CostPerMonth {
            value
                .trim_start_matches('$')
                .parse::<f64>()
                .map_err(|_| bad("expected an amount in USD such as 500"))?
        } else if let Ok(secs) = value.parse::<f64>() {
            secs
        } else {
            crate::config::parse_go_duration_ms(value)
                .map_err(|_| bad("expected a time such as 60s, 2m or 500ms"))? as f64
                / 1000.0
        };
        if !(bound.is_finite() && bound >= 0.0) {
            return Err(bad("the bound must be ≥ 0"));
        }
        Ok(Slo { text: text.to_owned(), metric, bound, strict })
    }

    /// Whether a point meets it.
    pub fn met(&self, r: &PointResult) -> bool {
        let v = self.metric.of(r);
        if self.strict { v < self.bound } else { v <= self.bound }
    }

    /// How much of the bound a point uses (1.0 = exactly at the bound).
    pub fn load(&self, r: &PointResult) -> f64 {
        if self.bound == 0.0 { f64::INFINITY } else { self.metric.of(r) / self.bound }
    }
}

/// The planner's answer.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The cheapest point that meets every SLO, if any.
    pub best: Option<PointResult>,
    /// The next cheapest feasible point found, if any.
    pub runner_up: Option<PointResult>,
    /// The SLO closest to its bound at the best point.
    pub binding: Option<Slo>,
    /// Every point evaluated, in grid order.
    pub evaluated: Vec<PointResult>,
    /// Points in the grid.
    pub grid_size: usize,
}

fn feasible(slos: &[Slo], r: &PointResult) -> bool {
    slos.iter().all(|s| s.met(r))
}

fn cheaper(a: &PointResult, b: &PointResult) -> std::cmp::Ordering {
    a.cost_per_month_usd
        .total_cmp(&b.cost_per_month_usd)
        .then(a.p95_s.total_cmp(&b.p95_s))
        .then(a.point.cmp(&b.point))
}

/// Finds the cheapest point of `spec`'s grid that meets every SLO.
pub fn plan(
    spec: &SweepSpec,
    slos: &[Slo],
    monotone: Option<&str>,
    progress: bool,
) -> Result<Plan, SweepFailure> {
    if spec.window.is_none()
        && let Some(slo) = slos.iter().find(|s| s.metric == Metric::WindowP95Pending)
    {
        return Err(SweepFailure::Input(InputError::file(
            "--slo",
            format!("`{}` needs --window (the calendar window whose jobs it measures)", slo.text),
        )));
    }
    let points = grid::points(&spec.axes);
    let grid_size = points.len();
    let evaluated = match monotone {
        None => run_points(spec, &points.into_iter().enumerate().collect::<Vec<_>>(), progress)?,
        Some(key) => search_monotone(spec, slos, key, progress)?,
    };
    let mut feasible_points: Vec<&PointResult> =
        evaluated.iter().filter(|r| feasible(slos, r)).collect();
    feasible_points.sort_by(|a, b| cheaper(a, b));
    let best = feasible_points.first().map(|r| (*r).clone());
    let runner_up = feasible_points.get(1).map(|r| (*r).clone());
    let binding = best
        .as_ref()
        .and_then(|b| slos.iter().max_by(|x, y| x.load(b).total_cmp(&y.load(b))).cloned());
    Ok(Plan { best, runner_up, binding, evaluated, grid_size })
}

/// Binary search along the monotone axis, one line per combination of the other axes; each
/// round runs the probes of every unfinished line in parallel.
fn search_monotone(
    spec: &SweepSpec,
    slos: &[Slo],
    key: &str,
    progress: bool,
) -> Result<Vec<PointResult>, SweepFailure> {
    let axis_ix = spec.axes.iter().position(|a| a.key == key).ok_or_else(|| {
        SweepFailure::Input(InputError::file(
            "--monotone",
            format!("{key} is not one of the --vary keys"),
        ))
    })?;
    let axis: &Axis = &spec.axes[axis_ix];
    let numeric: Option<Vec<f64>> = axis.values.iter().map(|v| v.parse::<f64>().ok()).collect();
    match numeric {
        Some(v) if v.windows(2).all(|w| w[0] < w[1]) => {}
        _ => {
            return Err(SweepFailure::Input(InputError::file(
                "--monotone",
                format!("the values of {key} must be increasing numbers"),
            )));
        }
    }
    let points = grid::points(&spec.axes);
    // Lines: the points sharing every value but the monotone one, in axis order.
    let mut lines: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for (k, p) in points.iter().enumerate() {
        let rest: Vec<String> = p
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != axis_ix)
            .map(|(_, (_, v))| v.clone())
            .collect();
        lines.entry(rest).or_default().push(k);
    }
    // Per line: the search interval [lo, hi) over the line's points; hi = first known feasible.
    let mut bounds: Vec<(Vec<usize>, usize, usize)> = lines
        .into_values()
        .map(|l| {
            let n = l.len();
            (l, 0, n)
        })
        .collect();
    let mut done: BTreeMap<usize, PointResult> = BTreeMap::new();
    loop {
        let probes: Vec<(usize, Vec<(String, String)>)> = bounds
            .iter()
            .filter(|(_, lo, hi)| lo < hi)
            .map(|(line, lo, hi)| {
                let k = line[(lo + hi) / 2];
                (k, points[k].clone())
            })
            .filter(|(k, _)| !done.contains_key(k))
            .collect();
        if probes.is_empty() && bounds.iter().all(|(_, lo, hi)| lo >= hi) {
            break;
        }
        for r in run_points(spec, &probes, progress)? {
            done.insert(r.point, r);
        }
        for (line, lo, hi) in &mut bounds {
            if lo < hi {
                let mid = (*lo + *hi) / 2;
                if feasible(slos, &done[&line[mid]]) {
                    *hi = mid;
                } else {
                    *lo = mid + 1;
                }
            }
        }
    }
    Ok(done.into_values().collect())
}

impl Plan {
    /// A report for the terminal.
    pub fn text(&self, axes: &[Axis], slos: &[Slo]) -> String {
        let mut s = String::new();
        let show = |r: &PointResult| {
            let values: Vec<String> = r
                .values
                .iter()
                .map(|(k, v)| crate::redact::assignment(&format!("{k}={v}")))
                .collect();
            format!(
                "{}  → ${:.2} per 30 days, pending p95 {:.1} s, p99 {:.1} s{}",
                values.join(" "),
                r.cost_per_month_usd,
                r.p95_s,
                r.p99_s,
                r.window_p95_s.map_or(String::new(), |w| format!(", window p95 {w:.1} s"))
            )
        };
        let _ = writeln!(
            s,
            "evaluated {} of {} points over {} key(s)",
            self.evaluated.len(),
            self.grid_size,
            axes.len()
        );
        let slo_list: Vec<&str> = slos.iter().map(|x| x.text.as_str()).collect();
        match &self.best {
            None => {
                let _ = writeln!(s, "no point meets every SLO ({})", slo_list.join(", "));
            }
            Some(b) => {
                let _ = writeln!(s, "cheapest meeting {}:", slo_list.join(", "));
                let _ = writeln!(s, "  {}", show(b));
                if let Some(slo) = &self.binding {
                    let _ = writeln!(
                        s,
                        "  binding: {} (at {:.1} % of its bound)",
                        slo.text,
                        slo.load(b) * 100.0
                    );
                }
                match &self.runner_up {
                    Some(r) => {
                        let _ = writeln!(
                            s,
                            "runner-up (+${:.2} per 30 days):\n  {}",
                            r.cost_per_month_usd - b.cost_per_month_usd,
                            show(r)
                        );
                    }
                    None => {
                        let _ = writeln!(s, "no other evaluated point meets every SLO");
                    }
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_syntax() {
        let s = Slo::parse("p95_pending<=60s").unwrap();
        assert_eq!((s.metric, s.bound, s.strict), (Metric::P95Pending, 60.0, false));
        assert_eq!(Slo::parse("p99_pending<2m").unwrap().bound, 120.0);
        assert_eq!(Slo::parse("mean_pending<=1.5").unwrap().bound, 1.5);
        assert_eq!(Slo::parse("cost_per_month<=$500").unwrap().bound, 500.0);
        assert!(Slo::parse("p95<=60s").is_err());
        assert!(Slo::parse("p95_pending>=60s").is_err());
        assert!(Slo::parse("p95_pending<=soon").is_err());
    }
}
