//! The grid of a sweep: `--vary KEY=V1,V2,…` or `--vary KEY=A..B[:STEP]` (inclusive, like
//! a shell's `{A..B}`), the cartesian product in the order the flags are given (the last
//! key varies fastest), and the deterministic slice of it a shard runs.

use crate::input_error::InputError;

/// One varied key and its values, as `--set` values (TOML text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    /// The key, e.g. `runners[0].machine.IdleCount`.
    pub key: String,
    /// The values, as written for `--set` (`0`, `"t3.medium"`, `true`).
    pub values: Vec<String>,
}

/// Parses one `--vary` argument.
pub fn parse_axis(arg: &str) -> Result<Axis, InputError> {
    let shown = crate::redact::assignment(arg);
    let bad = |msg: String| InputError::file("--vary", msg).key(shown.clone());
    let (key, spec) = arg.split_once('=').ok_or_else(|| {
        InputError::file(
            "--vary",
            "an argument is not KEY=V1,V2,… or KEY=A..B (inclusive) or KEY=A..B:STEP; it is \
             not repeated here in case it is a credential",
        )
    })?;
    let key = key.trim();
    if key.is_empty() {
        return Err(bad("the key is empty".into()));
    }
    let secret = crate::redact::is_secret_key(key);
    let values = match parse_range(spec) {
        Some(r) => r.map_err(|m| {
            bad(if secret { "not a valid integer range (values not shown)".into() } else { m })
        })?,
        None => spec.split(',').map(|v| v.trim().to_owned()).collect::<Vec<_>>(),
    };
    if values.is_empty() || values.iter().any(String::is_empty) {
        return Err(bad("every value must be non-empty".into()));
    }
    Ok(Axis { key: key.to_owned(), values })
}

/// `A..B` or `A..B:STEP` with integers; `None` if `spec` is not a range.
fn parse_range(spec: &str) -> Option<Result<Vec<String>, String>> {
    let (range, step) = match spec.split_once(':') {
        Some((r, s)) => (r, Some(s)),
        None => (spec, None),
    };
    let (a, b) = range.split_once("..")?;
    let parse = |t: &str| t.trim().parse::<i64>().map_err(|_| format!("{t:?} is not an integer"));
    Some((|| {
        let (a, b) = (parse(a)?, parse(b)?);
        let step = match step {
            Some(s) => parse(s)?,
            None => 1,
        };
        if step <= 0 {
            return Err("the step must be positive".into());
        }
        if b < a {
            return Err(format!("the range {a}..{b} is empty"));
        }
        let n = (b - a) / step + 1;
        if n > 100_000 {
            return Err(format!("the range has {n} values; at most 100000"));
        }
        Ok((0..n).map(|k| (a + k * step).to_string()).collect())
    })())
}

/// The most points a grid may have. A sweep's points are run, not sampled: at even 10 ms a
/// run, 100,000 points take a quarter of an hour per seed on one core.
pub const MAX_GRID_POINTS: u64 = 100_000;

/// The most seeds per point (`--seeds`).
pub const MAX_SEEDS: u32 = 10_000;

/// The most runs (points × seeds) of one sweep or plan.
pub const MAX_GRID_RUNS: u64 = 1_000_000;

/// Checks the size of the grid and the seed count before anything is allocated for them.
///
/// # Errors
/// Naming `--vary` or `--seeds` and the bound, when the grid or the runs are too many.
pub fn check_size(axes: &[Axis], seeds: u32) -> Result<u64, InputError> {
    if seeds == 0 || seeds > MAX_SEEDS {
        return Err(InputError::file(
            "--seeds",
            format!("expected 1 to {MAX_SEEDS} seeds per point, found {seeds}"),
        ));
    }
    let sizes: Vec<String> = axes.iter().map(|a| a.values.len().to_string()).collect();
    let points = axes
        .iter()
        .try_fold(1u64, |n, a| n.checked_mul(a.values.len() as u64))
        .filter(|&n| n <= MAX_GRID_POINTS)
        .ok_or_else(|| {
            InputError::file(
                "--vary",
                format!(
                    "the grid has {} points; at most {MAX_GRID_POINTS} (run a coarser grid \
                     first, then a finer one around its best points)",
                    sizes.join(" × ")
                ),
            )
        })?;
    if points * u64::from(seeds) > MAX_GRID_RUNS {
        return Err(InputError::file(
            "--seeds",
            format!(
                "{points} points × {seeds} seeds = {} runs; at most {MAX_GRID_RUNS}",
                points * u64::from(seeds)
            ),
        ));
    }
    Ok(points)
}

/// The points of the grid: each a list of `(key, value)` in axis order.
pub fn points(axes: &[Axis]) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for axis in axes {
        let mut next = Vec::with_capacity(out.len() * axis.values.len());
        for p in &out {
            for v in &axis.values {
                let mut q = p.clone();
                q.push((axis.key.clone(), v.clone()));
                next.push(q);
            }
        }
        out = next;
    }
    out
}

/// `--shard I/N`: shard `i` (1-based) of `n` runs the points whose index is `i − 1` modulo `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based index.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl Shard {
    /// The whole grid.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Parses `I/N` with 1 ≤ I ≤ N.
    pub fn parse(text: &str) -> Result<Shard, InputError> {
        let bad =
            || InputError::file("--shard", format!("expected I/N with 1 ≤ I ≤ N, found {text:?}"));
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether the point with this index belongs to the shard.
    pub fn owns(self, point: usize) -> bool {
        point as u64 % u64::from(self.count) == u64::from(self.index - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_inclusive_ranges() {
        assert_eq!(parse_axis("concurrent=4,8").unwrap().values, vec!["4", "8"]);
        assert_eq!(
            parse_axis("runners[0].machine.IdleCount=0..3").unwrap().values,
            vec!["0", "1", "2", "3"]
        );
        assert_eq!(parse_axis("x=0..8:4").unwrap().values, vec!["0", "4", "8"]);
        assert!(parse_axis("x=3..1").is_err());
        assert!(parse_axis("novalue").is_err());
        assert!(parse_axis("x=1,,2").is_err());
    }

    #[test]
    fn the_grid_is_a_product_with_the_last_axis_fastest() {
        let axes = [parse_axis("a=1,2").unwrap(), parse_axis("b=x,y,z").unwrap()];
        let p = points(&axes);
        assert_eq!(p.len(), 6);
        assert_eq!(p[1], vec![("a".to_owned(), "1".to_owned()), ("b".to_owned(), "y".to_owned())]);
        assert_eq!(p[3][0].1, "2");
    }

    #[test]
    fn shards_partition_the_points() {
        let shards: Vec<Shard> =
            (1..=3).map(|i| Shard::parse(&format!("{i}/3")).unwrap()).collect();
        for point in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.owns(point)).count(), 1);
        }
        assert!(
            Shard::parse("0/3").is_err()
                && Shard::parse("4/3").is_err()
                && Shard::parse("x").is_err()
        );
    }
}
