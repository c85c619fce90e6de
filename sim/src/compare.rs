//! `sim compare A B`: two reports' `summary.json` side by side.
//!
//! Both files are read as plain JSON, not as this version's `Summary`, so reports written by
//! older or newer versions still compare: every numeric leaf that both files have is lined
//! up under its dotted path (`pending.p95_s`, `cost.per_month_usd`), the most telling ones
//! first, with the difference B − A and its share of A.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::input_error::InputError;
use crate::report::html::kit::{
    self, Bars, SERIES_COLORS, esc, fmt_s, fmt_usd, num, page_head, svg,
};
use crate::report::summary::round6;

/// The rows shown first, in this order, when both files have them.
pub const KEY_FIELDS: [&str; 12] = [
    "pending.p50_s",
    "pending.p95_s",
    "pending.p99_s",
    "pending.mean_s",
    "to_script.p95_s",
    "cost.total_usd",
    "cost.per_month_usd",
    "cost.per_job_usd",
    "machines.max",
    "machines.created",
    "jobs.finished",
    "jobs.failed",
];

/// One of the two compared reports.
#[derive(Debug, Clone)]
pub struct Side {
    /// The `summary.json` that was read.
    pub file: PathBuf,
    /// Its `scenario`, when it has one.
    pub scenario: Option<String>,
    /// Its `seed`, when it has one.
    pub seed: Option<u64>,
    /// Its `replay` command, when it has one.
    pub replay: Option<String>,
    /// The whole file.
    pub summary: Value,
}

impl Side {
    /// `path/summary.json (scenario, seed N)`.
    pub fn label(&self) -> String {
        let mut s = self.file.display().to_string();
        match (&self.scenario, self.seed) {
            (Some(name), Some(seed)) => {
                let _ = write!(s, " ({name}, seed {seed})");
            }
            (Some(name), None) => {
                let _ = write!(s, " ({name})");
            }
            (None, Some(seed)) => {
                let _ = write!(s, " (seed {seed})");
            }
            (None, None) => {}
        }
        s
    }
}

/// One numeric field both reports have.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Dotted path, such as `pending.p95_s` (array elements as `name[i]`).
    pub path: String,
    /// The value in A.
    pub a: f64,
    /// The value in B.
    pub b: f64,
    /// One of [`KEY_FIELDS`].
    pub key: bool,
}

impl Row {
    /// B − A.
    pub fn delta(&self) -> f64 {
        self.b - self.a
    }

    /// (B − A) / |A| in percent; `None` when A is 0 and B is not (0 when both are).
    pub fn delta_pct(&self) -> Option<f64> {
        if self.a == 0.0 {
            (self.b == 0.0).then_some(0.0)
        } else {
            Some(self.delta() / self.a.abs() * 100.0)
        }
    }
}

/// Two reports lined up.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The first report.
    pub a: Side,
    /// The second report.
    pub b: Side,
    /// The numeric fields both have: [`KEY_FIELDS`] first in their order, then the rest in
    /// A's order.
    pub rows: Vec<Row>,
}

/// The `summary.json` of a report folder, or `path` itself when it names a `.json` file.
pub fn summary_path(path: &Path) -> PathBuf {
    if path.extension().is_some_and(|e| e == "json") {
        path.to_path_buf()
    } else {
        path.join("summary.json")
    }
}

fn read_summary(path: &Path) -> Result<Side, InputError> {
    let file = summary_path(path);
    let text = crate::input_file::read_text(&file, "the report's summary")?;
    let summary: Value = serde_json::from_str(&text).map_err(|e| {
        InputError::file(&file, format!("not valid JSON: {e}")).at(e.line(), e.column())
    })?;
    if !summary.is_object() {
        return Err(InputError::file(&file, "expected a JSON object (a fleetsim summary.json)"));
    }
    Ok(Side {
        scenario: summary.get("scenario").and_then(Value::as_str).map(str::to_owned),
        seed: summary.get("seed").and_then(Value::as_u64),
        replay: summary.get("replay").and_then(Value::as_str).map(str::to_owned),
        file,
        summary,
    })
}

/// Every numeric leaf of `v` under its dotted path, in document order.
fn leaves(v: &Value, prefix: &str, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaves(v, &path, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, &format!("{prefix}[{i}]"), out);
            }
        }
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.push((prefix.to_owned(), x));
            }
        }
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// Reads `a/summary.json` and `b/summary.json` (or the two `.json` files given) and lines
/// up their numeric fields. A missing or malformed file is an error naming it.
pub fn compare(a: &Path, b: &Path) -> Result<Comparison, InputError> {
    let a = read_summary(a)?;
    let b = read_summary(b)?;
    let mut a_leaves = Vec::new();
    leaves(&a.summary, "", &mut a_leaves);
    let mut b_leaves = Vec::new();
    leaves(&b.summary, "", &mut b_leaves);
    let b_map: std::collections::BTreeMap<&str, f64> =
        b_leaves.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let a_map: std::collections::BTreeMap<&str, f64> =
        a_leaves.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let mut rows = Vec::new();
    for key in KEY_FIELDS {
        if let (Some(&va), Some(&vb)) = (a_map.get(key), b_map.get(key)) {
            rows.push(Row { path: key.to_owned(), a: va, b: vb, key: true });
        }
    }
    for (path, va) in &a_leaves {
        if KEY_FIELDS.contains(&path.as_str()) {
            continue;
        }
        if let Some(&vb) = b_map.get(path.as_str()) {
            rows.push(Row { path: path.clone(), a: *va, b: vb, key: false });
        }
    }
    Ok(Comparison { a, b, rows })
}

/// A value as in the JSON file (rounded to 6 decimals, no float noise).
fn fmt_value(x: f64) -> String {
    format!("{}", round6(x))
}

fn fmt_delta(x: f64) -> String {
    let x = round6(x);
    if x > 0.0 { format!("+{x}") } else { format!("{x}") }
}

fn fmt_delta_pct(p: Option<f64>) -> String {
    match p {
        Some(p) => format!("{p:+.1} %"),
        None => "—".to_owned(),
    }
}

impl Row {
    fn cells(&self) -> [String; 5] {
        [
            self.path.clone(),
            fmt_value(self.a),
            fmt_value(self.b),
            fmt_delta(self.delta()),
            fmt_delta_pct(self.delta_pct()),
        ]
    }
}

const HEADER: [&str; 5] = ["field", "A", "B", "delta (B − A)", "delta %"];

impl Comparison {
    /// The row of `path`, when both reports have it.
    pub fn row(&self, path: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.path == path)
    }

    /// An aligned text table: which file is A and which B, then the key rows, a rule, and
    /// the other numeric fields.
    pub fn table(&self) -> String {
        let cells: Vec<[String; 5]> = self.rows.iter().map(Row::cells).collect();
        let mut widths = HEADER.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |out: &mut String, row: &[&str; 5]| {
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                let pad = w - cell.chars().count();
                if i == 0 {
                    out.push_str(cell);
                    out.push_str(&" ".repeat(pad));
                } else {
                    out.push_str("  ");
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                }
            }
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            out.push('\n');
        };
        let mut out = String::new();
        let _ = writeln!(out, "A  {}", self.a.label());
        let _ = writeln!(out, "B  {}", self.b.label());
        out.push('\n');
        line(&mut out, &HEADER);
        let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        let rule = "-".repeat(total);
        let _ = writeln!(out, "{rule}");
        let mut in_key = true;
        for (row, c) in self.rows.iter().zip(&cells) {
            if in_key && !row.key {
                in_key = false;
                if self.rows.first().is_some_and(|r| r.key) {
                    let _ = writeln!(out, "{rule}");
                }
            }
            line(&mut out, &[&c[0], &c[1], &c[2], &c[3], &c[4]].map(String::as_str));
        }
        out
    }

    /// Writes a self-contained HTML page: the table, and side-by-side bars for the pending
    /// percentiles and for the cost per 30 days.
    pub fn write_html(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.html()?)
    }

    /// The page [`Comparison::write_html`] writes.
    pub fn html(&self) -> io::Result<String> {
        let mut out = page_head("fleetsim compare");
        out.push_str("<header>\n<h1>fleetsim compare</h1>\n");
        for (name, side) in [("A", &self.a), ("B", &self.b)] {
            let _ = write!(out, "<p class=\"meta\"><b>{name}</b> {}", esc(&side.label()));
            if let Some(replay) = &side.replay {
                let _ = write!(out, " · replay <code>{}</code>", esc(replay));
            }
            out.push_str("</p>\n");
        }
        out.push_str("</header>\n");

        out.push_str("<h2>Pending time and cost</h2>\n");
        let series = |paths: &[&str], scale: [f64; 2]| -> Vec<Bars> {
            [("A", &self.a, scale[0]), ("B", &self.b, scale[1])]
                .into_iter()
                .zip(SERIES_COLORS)
                .map(|((name, side, k), color)| Bars {
                    name: format!("{name}: {}", side.scenario.as_deref().unwrap_or("?")),
                    color,
                    values: paths.iter().map(|p| num(&side.summary, p).map(|x| x * k)).collect(),
                })
                .collect()
        };
        let pending_paths = ["pending.p50_s", "pending.p95_s", "pending.p99_s", "to_script.p95_s"];
        let pending_names: Vec<String> =
            ["pending p50", "pending p95", "pending p99", "to script p95"]
                .map(str::to_owned)
                .to_vec();
        let pending = series(&pending_paths, [1.0, 1.0]);
        let chart = svg((900, 340), |root| {
            kit::bar_chart(root, "Pending time", "seconds", &pending_names, &pending, fmt_s)
        })?;
        let _ = writeln!(out, "<figure>\n{chart}\n</figure>");

        // Cost per 30 days, split like the run report: each run scaled by its own
        // per_month / total, so runs of different lengths compare.
        let month = |s: &Value| match (num(s, "cost.per_month_usd"), num(s, "cost.total_usd")) {
            (Some(m), Some(t)) if t > 0.0 => m / t,
            _ => 1.0,
        };
        let cost_of = |s: &Value| -> Vec<Option<f64>> {
            let k = month(s);
            let machines = num(s, "cost.machines_usd");
            let idle = num(s, "cost.idle_share");
            vec![
                machines.zip(idle).map(|(m, i)| m * (1.0 - i) * k),
                machines.zip(idle).map(|(m, i)| m * i * k),
                num(s, "cost.hosts_usd").map(|h| h * k),
                num(s, "cost.per_month_usd"),
            ]
        };
        let cost: Vec<Bars> = [("A", &self.a), ("B", &self.b)]
            .into_iter()
            .zip(SERIES_COLORS)
            .map(|((name, side), color)| Bars {
                name: format!("{name}: {}", side.scenario.as_deref().unwrap_or("?")),
                color,
                values: cost_of(&side.summary),
            })
            .collect();
        let cost_names: Vec<String> =
            ["machines, busy", "machines, idle", "hosts / manager", "total"]
                .map(str::to_owned)
                .to_vec();
        let chart = svg((900, 340), |root| {
            kit::bar_chart(root, "Cost per 30 days", "USD per 30 days", &cost_names, &cost, fmt_usd)
        })?;
        let _ = writeln!(out, "<figure>\n{chart}\n</figure>");

        out.push_str("<h2>All numeric fields</h2>\n<table>\n<thead><tr>");
        for h in HEADER {
            let _ = write!(out, "<th>{}</th>", esc(h));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        let mut in_key = true;
        for row in &self.rows {
            if in_key && !row.key {
                in_key = false;
                out.push_str("<tr><td colspan=\"5\">&nbsp;</td></tr>\n");
            }
            out.push_str("<tr>");
            for (i, c) in row.cells().iter().enumerate() {
                if i == 0 {
                    let _ = write!(out, "<td><code>{}</code></td>", esc(c));
                } else {
                    let _ = write!(out, "<td>{}</td>", esc(c));
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        out.push_str(
            "<p class=\"note\">delta = B − A; delta % is relative to A (— when A is 0).</p>\n",
        );
        out.push_str("</body>\n</html>\n");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = r#"{
  "scenario": "one", "seed": 42, "replay": "sim run one.toml --seed 42",
  "jobs": { "total": 100, "finished": 100, "failed": 0 },
  "pending": { "mean_s": 200.0, "p50_s": 10.3, "p95_s": 1059.8, "p99_s": 1546.2 },
  "to_script": { "p95_s": 1059.8 },
  "machines": { "max": 0, "created": 0 },
  "cost": { "total_usd": 30.68, "per_month_usd": 138.24, "per_job_usd": 0.0097,
            "machines_usd": 0.0, "idle_share": 0.0, "hosts_usd": 30.68 },
  "only_in_a": 5,
  "mode": "sim"
}"#;

    const B: &str = r#"{
  "scenario": "two", "seed": 42,
  "jobs": { "total": 100, "finished": 98, "failed": 2 },
  "pending": { "mean_s": 5.725, "p50_s": 1.7, "p95_s": 32.5, "p99_s": 100.5 },
  "to_script": { "p95_s": 32.5 },
  "machines": { "max": 13, "created": 257 },
  "cost": { "total_usd": 11.93, "per_month_usd": 53.76, "per_job_usd": 0.003757,
            "machines_usd": 9.63, "idle_share": 0.705, "hosts_usd": 2.3 },
  "only_in_b": 1,
  "mode": "sim"
}"#;

    fn two_reports() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("summary.json"), A).unwrap();
        std::fs::write(b.join("summary.json"), B).unwrap();
        (dir, a, b)
    }

    #[test]
    fn deltas_are_b_minus_a() {
        let (_dir, a, b) = two_reports();
        let c = compare(&a, &b).unwrap();
        let p95 = c.row("pending.p95_s").unwrap();
        assert_eq!((p95.a, p95.b), (1059.8, 32.5));
        assert!((p95.delta() - (32.5 - 1059.8)).abs() < 1e-9);
        assert!((p95.delta_pct().unwrap() - (32.5 - 1059.8) / 1059.8 * 100.0).abs() < 1e-9);
        let created = c.row("machines.created").unwrap();
        assert_eq!(created.delta(), 257.0);
        assert_eq!(created.delta_pct(), None, "A is 0");
        assert_eq!(c.row("machines.max").unwrap().delta_pct(), None);
        assert_eq!(c.row("cost.idle_share").unwrap().delta(), 0.705);
        assert_eq!(c.row("jobs.total").unwrap().delta_pct(), Some(0.0));
        // Only fields both have; strings are not rows.
        assert!(c.row("only_in_a").is_none() && c.row("only_in_b").is_none());
        assert!(c.row("mode").is_none() && c.row("scenario").is_none());
        assert!(c.row("seed").is_some());
        // Key rows first, in order.
        let first: Vec<&str> =
            c.rows.iter().take(KEY_FIELDS.len()).map(|r| r.path.as_str()).collect();
        assert_eq!(first, KEY_FIELDS);
        assert!(c.rows[KEY_FIELDS.len()..].iter().all(|r| !r.key));
    }

    #[test]
    fn table_is_aligned() {
        let (_dir, a, b) = two_reports();
        let c = compare(&a, &b).unwrap();
        let t = c.table();
        assert!(t.starts_with("A  "), "{t}");
        assert!(t.contains("(one, seed 42)") && t.contains("(two, seed 42)"));
        let p95 = t.lines().find(|l| l.starts_with("pending.p95_s")).unwrap();
        let cells: Vec<&str> = p95.split_whitespace().collect();
        assert_eq!(cells, ["pending.p95_s", "1059.8", "32.5", "-1027.3", "-96.9", "%"]);
        let per_job = t.lines().find(|l| l.starts_with("cost.per_job_usd")).unwrap();
        assert!(per_job.contains("0.003757") && per_job.contains("-0.005943"), "{per_job}");
        // Every data row ends at the same column.
        let ends: Vec<usize> =
            t.lines().skip(3).filter(|l| !l.starts_with('-')).map(|l| l.chars().count()).collect();
        assert!(ends.windows(2).all(|w| w[0] == w[1]), "{t}");
        assert!(t.lines().position(|l| l.starts_with("pending.p50_s")).unwrap() < 6);
    }

    #[test]
    fn html_is_self_contained_and_deterministic() {
        let (dir, a, b) = two_reports();
        let c = compare(&a, &b).unwrap();
        let out = dir.path().join("cmp.html");
        c.write_html(&out).unwrap();
        let html = std::fs::read_to_string(&out).unwrap();
        crate::report::html::assert_self_contained(&html, 2);
        assert!(html.contains("1059.8") && html.contains("-1027.3"));
        assert!(html.contains("A: one") && html.contains("B: two"));
        c.write_html(&out).unwrap();
        assert_eq!(html, std::fs::read_to_string(&out).unwrap());
    }

    #[test]
    fn missing_or_bad_files_are_named() {
        let (dir, a, _b) = two_reports();
        let missing = dir.path().join("nope");
        let e = compare(&a, &missing).unwrap_err();
        assert_eq!(e.file, missing.join("summary.json"));
        assert!(e.to_string().contains("nope/summary.json"), "{e}");

        let bad = dir.path().join("bad");
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join("summary.json"), "{\n  \"a\": 1,\n  oops\n}").unwrap();
        let e = compare(&bad, &a).unwrap_err();
        assert_eq!(e.file, bad.join("summary.json"));
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("not valid JSON"), "{e}");

        std::fs::write(bad.join("summary.json"), "[1, 2]").unwrap();
        let e = compare(&bad, &a).unwrap_err();
        assert!(e.message.contains("JSON object"), "{e}");

        // A .json file can be given directly.
        let c = compare(&a.join("summary.json"), &a).unwrap();
        assert!(c.rows.iter().all(|r| r.delta() == 0.0));
    }
}
