//! `sweep.html` (and `plan.html`): one self-contained page per sweep table (no scripts, no
//! network: the style sheet and the plotters SVG chart of [`crate::report::html::kit`] inline).
//!
//! - The grid: the varied keys with their values (in the order the table has them) and the
//!   seeds per point.
//! - A scatter chart of the cost per 30 days against the p95 pending time (the window's p95
//!   when the table has one), the Pareto front highlighted and joined by a step line, each
//!   front point labelled with its varied values, and the p95 spread over the seeds as error
//!   bars when there are several.
//! - The Pareto points sorted by cost, then the whole table.
//!
//! The page is built from the table's text only (no clock, no hash map), so the same table
//! gives the same bytes: `sim sweep` and `sim merge` of its shards write the same page.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::html::kit::{
    Area, BLUE_C, FONT, GRAY_C, MISSING, PlotResult, RED_C, caption_style, desc_style, draw_legend,
    empty_chart, esc, figure, fmt_usd, label_style, page_head, svg, tick,
};
use crate::sweep::SweepTable;

/// Chart size in pixels.
const CHART: (u32, u32) = (900, 580);
/// Font size of the point labels (plotters writes it as 16 / 1.24 ≈ 12.9 px).
const LABEL_PX: u32 = 16;
/// Estimated width of one label character in pixels (a sans-serif font at 12.9 px averages
/// about 6.5 px; a little more so that the boxes cover wider fonts too).
const CHAR_PX: f64 = 7.0;
/// Height of a label box in pixels.
const LABEL_H: i32 = 18;
/// Background of the Pareto rows in the tables.
const FRONT_ROW: &str = " style=\"background:#fdecea\"";
const CHART_TITLE: &str = "Cost against p95 pending time";

/// Writes the page for `table` (a `sweep.csv` or `plan.csv` table) to `path`.
pub fn write_sweep_report(path: &Path, table: &SweepTable, title: &str) -> io::Result<()> {
    let page = render_sweep_page(table, title)?;
    std::fs::write(path, page)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// One row of the table, as the chart sees it.
#[derive(Debug, Clone)]
struct Row {
    /// Index into the table's rows.
    row: usize,
    /// Cost per 30 days.
    cost: f64,
    /// The plotted p95: the window's when present, else the whole run's.
    p95: f64,
    /// Whether `p95` is the window's.
    windowed: bool,
    /// The p95 spread over the seeds (only for the whole run's p95 and more than one seed).
    spread: Option<(f64, f64)>,
    /// On the Pareto front.
    front: bool,
    /// `IdleCount=0, market=spot`.
    label: String,
}

/// The table's columns the page needs.
struct Columns {
    /// Varied keys: (column, full key, short name).
    keys: Vec<(usize, String, String)>,
    point: usize,
    seeds: Option<usize>,
    p95: Option<usize>,
    p95_min: Option<usize>,
    p95_max: Option<usize>,
    window: Option<usize>,
    cost: Option<usize>,
    pareto: Option<usize>,
}

impl Columns {
    fn of(table: &SweepTable) -> Columns {
        let find = |name: &str| table.header.iter().position(|h| h == name);
        let seeds = find("seeds");
        let end = seeds.unwrap_or_else(|| {
            table.header.len().saturating_sub(crate::sweep::METRIC_COLUMNS.len())
        });
        let full: Vec<(usize, String)> =
            (1..end.max(1)).map(|i| (i, table.header[i].clone())).collect();
        let short = |k: &str| k.rsplit('.').next().unwrap_or(k).to_owned();
        let shorts: Vec<String> = full.iter().map(|(_, k)| short(k)).collect();
        let unique = shorts.iter().enumerate().all(|(i, s)| !shorts[..i].contains(s));
        let keys = full
            .into_iter()
            .zip(shorts)
            .map(|((i, k), s)| if unique { (i, k, s) } else { (i, k.clone(), k) })
            .collect();
        Columns {
            keys,
            point: 0,
            seeds,
            p95: find("pending_p95_s"),
            p95_min: find("pending_p95_min_s"),
            p95_max: find("pending_p95_max_s"),
            window: find("window_pending_p95_s"),
            cost: find("cost_per_month_usd"),
            pareto: find("pareto"),
        }
    }
}

fn cell(row: &[String], col: Option<usize>) -> &str {
    col.and_then(|c| row.get(c)).map_or("", String::as_str)
}

fn number(row: &[String], col: Option<usize>) -> Option<f64> {
    cell(row, col).trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// The rows that can be drawn (a cost and a p95 that are numbers).
fn chart_rows(table: &SweepTable, cols: &Columns) -> Vec<Row> {
    let mut out = Vec::new();
    for (i, r) in table.rows.iter().enumerate() {
        let window = number(r, cols.window);
        let (Some(cost), Some(p95)) = (number(r, cols.cost), window.or(number(r, cols.p95))) else {
            continue;
        };
        let seeds = number(r, cols.seeds).unwrap_or(1.0);
        let spread = match (window, number(r, cols.p95_min), number(r, cols.p95_max)) {
            (None, Some(lo), Some(hi)) if seeds > 1.0 => Some((lo, hi)),
            _ => None,
        };
        let label = cols
            .keys
            .iter()
            .map(|(c, _, short)| format!("{short}={}", cell(r, Some(*c))))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(Row {
            row: i,
            cost,
            p95,
            windowed: window.is_some(),
            spread,
            front: cell(r, cols.pareto) == "true",
            label,
        });
    }
    out
}

/// Distinct values in order of first appearance.
fn distinct(table: &SweepTable, col: Option<usize>) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::new();
    for r in &table.rows {
        let v = cell(r, col);
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen
}

/// Seconds in a table: two decimals (p95s of neighbouring points often differ by less than
/// a tenth), none from 1000 s up.
fn fmt_secs(x: f64) -> String {
    if x.abs() >= 1000.0 { format!("{x:.0}\u{a0}s") } else { format!("{x:.2}\u{a0}s") }
}

/// A column name that may break after its underscores.
fn breakable(name: &str) -> String {
    esc(name).replace('_', "_<wbr>").replace('.', ".<wbr>")
}

fn render_sweep_page(table: &SweepTable, title: &str) -> io::Result<String> {
    let cols = Columns::of(table);
    let rows = chart_rows(table, &cols);
    let windowed = rows.iter().filter(|r| r.windowed).count();
    let p95_name = if windowed == 0 {
        "p95 pending"
    } else if windowed == rows.len() {
        "p95 pending in the window"
    } else {
        "p95 pending (the window's where given)"
    };
    let max_seeds = table.rows.iter().filter_map(|r| number(r, cols.seeds)).fold(0.0, f64::max);

    let mut out = page_head(title);
    let _ = writeln!(out, "<header>\n<h1>{}</h1>", esc(title));
    let front_count = table.rows.iter().filter(|r| cell(r, cols.pareto) == "true").count();
    let _ = writeln!(
        out,
        "<p class=\"meta\"><b>points</b> {} · <b>seeds per point</b> {} · <b>on the Pareto front</b> {}</p>",
        table.rows.len(),
        esc(&distinct(table, cols.seeds).join(", ")),
        front_count
    );
    if cols.keys.is_empty() {
        out.push_str("<p class=\"meta\"><b>varied</b> nothing</p>\n");
    }
    for (c, key, _) in &cols.keys {
        let values = distinct(table, Some(*c));
        let _ = writeln!(
            out,
            "<p class=\"meta\"><b>varied</b> <code>{}</code>: {} ({} value{})</p>",
            esc(key),
            esc(&values.join(", ")),
            values.len(),
            if values.len() == 1 { "" } else { "s" }
        );
    }
    out.push_str("</header>\n");

    // The chart.
    out.push_str("<h2>Cost and pending time</h2>\n");
    let y_desc = format!("{p95_name} (seconds)");
    let chart = svg(CHART, |root| scatter(root, &rows, &y_desc))?;
    let mut caption = format!(
        "Each dot is one point of the grid{}. Red: the Pareto front (no other point is both \
         cheaper and faster), joined by the best {p95_name} each budget buys.",
        if max_seeds > 1.0 { ", averaged over its seeds" } else { "" }
    );
    if rows.iter().any(|r| r.spread.is_some()) {
        caption.push_str(" Bars: lowest to highest p95 over the seeds.");
    } else if max_seeds > 1.0 && windowed > 0 {
        caption.push_str(" The seeds' spread is of the whole run's p95, so it is not drawn here.");
    }
    let undrawn = table.rows.len() - rows.len();
    if undrawn > 0 {
        let _ = write!(caption, " {undrawn} point(s) without a cost or p95 are not drawn.");
    }
    figure(&mut out, &chart, &caption);

    // The front, by cost.
    let mut front: Vec<&Row> = rows.iter().filter(|r| r.front).collect();
    front.sort_by(|a, b| {
        a.cost.total_cmp(&b.cost).then(a.p95.total_cmp(&b.p95)).then(a.row.cmp(&b.row))
    });
    out.push_str("<h2>The Pareto front, by cost</h2>\n");
    if front.is_empty() {
        out.push_str("<p class=\"note\">No point is marked as on the front.</p>\n");
    } else {
        let spread = front.iter().any(|r| r.spread.is_some());
        out.push_str(
            "<div style=\"overflow-x:auto\">\n<table style=\"font-size:.9em\">\n<thead><tr><th>point</th>",
        );
        for (_, key, _) in &cols.keys {
            let _ = write!(out, "<th>{}</th>", breakable(key));
        }
        let _ = write!(out, "<th>{}</th>", esc(p95_name));
        if spread {
            out.push_str("<th>p95 of one seed, lowest – highest</th>");
        }
        out.push_str("<th>p50 pending</th><th>p99 pending</th><th>cost per 30 days</th><th>cost per job</th><th>machines at most</th></tr></thead>\n<tbody>\n");
        let find = |name: &str| table.header.iter().position(|h| h == name);
        for r in front {
            let t = &table.rows[r.row];
            let _ = write!(out, "<tr><td>{}</td>", esc(cell(t, Some(cols.point))));
            for (c, _, _) in &cols.keys {
                let _ = write!(out, "<td>{}</td>", esc(cell(t, Some(*c))));
            }
            let _ = write!(out, "<td>{}</td>", esc(&fmt_secs(r.p95)));
            if spread {
                let s = r.spread.map_or_else(
                    || MISSING.to_owned(),
                    |(lo, hi)| format!("{}\u{a0}–\u{a0}{}", fmt_secs(lo), fmt_secs(hi)),
                );
                let _ = write!(out, "<td style=\"white-space:nowrap\">{}</td>", esc(&s));
            }
            let secs =
                |name: &str| number(t, find(name)).map_or_else(|| MISSING.to_owned(), fmt_secs);
            let _ = writeln!(
                out,
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&secs("pending_p50_s")),
                esc(&secs("pending_p99_s")),
                esc(&fmt_usd(r.cost)),
                esc(&number(t, find("cost_per_job_usd"))
                    .map_or_else(|| MISSING.to_owned(), |x| format!("${x:.4}"))),
                esc(&number(t, find("machines_max")).map_or_else(|| MISSING.to_owned(), tick)),
            );
        }
        out.push_str("</tbody>\n</table>\n</div>\n");
    }

    // Everything.
    out.push_str("<h2>All points</h2>\n");
    out.push_str("<div style=\"overflow-x:auto\">\n<table style=\"font-size:.85em\">\n<thead><tr>");
    for h in &table.header {
        let _ = write!(out, "<th>{}</th>", breakable(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in &table.rows {
        let on = cell(r, cols.pareto) == "true";
        let _ = write!(out, "<tr{}>", if on { FRONT_ROW } else { "" });
        for v in r {
            let v = if v.is_empty() { MISSING } else { v.as_str() };
            let _ = write!(out, "<td>{}</td>", esc(v));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
    out.push_str(
        "<p class=\"note\">Seconds are means over the seeds; <code>pending_p95_min_s</code> and \
         <code>pending_p95_max_s</code> are the lowest and highest p95 of a single seed. \
         Cost is per 30 days, in USD. Shaded rows are on the Pareto front.</p>\n",
    );
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The chart
// ---------------------------------------------------------------------------------------

fn scatter(root: &Area<'_>, rows: &[Row], y_desc: &str) -> PlotResult {
    if rows.is_empty() {
        return empty_chart(root, CHART_TITLE, "no point with a cost and a p95 to draw");
    }
    let (lo, hi) = rows
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| (lo.min(r.cost), hi.max(r.cost)));
    let span = if hi > lo { hi - lo } else { hi.abs().max(1.0) * 0.2 };
    let x_lo = if lo >= 0.0 && lo < span { 0.0 } else { lo - 0.08 * span };
    let x_range = x_lo..hi + 0.08 * span;

    let ys = rows.iter().flat_map(|r| {
        let (a, b) = r.spread.unwrap_or((r.p95, r.p95));
        [r.p95, a, b]
    });
    let y_max = ys.clone().fold(0.0, f64::max);
    let y_min_pos = ys.filter(|&y| y > 0.0).fold(f64::INFINITY, f64::min);
    if y_min_pos.is_finite() && y_max / y_min_pos > 100.0 {
        let lo = 10f64.powf(y_min_pos.log10().floor());
        let hi = 10f64.powf((y_max * 1.2).log10().ceil()).max(lo * 10.0);
        let chart = chart_builder(root).build_cartesian_2d(x_range, (lo..hi).log_scale())?;
        let desc = if rows.iter().any(|r| r.p95 <= 0.0 || r.spread.is_some_and(|s| s.0 <= 0.0)) {
            format!("{y_desc}, log scale; zero shown at {}", tick(lo))
        } else {
            format!("{y_desc}, log scale")
        };
        draw_scatter(chart, rows, lo, &desc)
    } else {
        let chart =
            chart_builder(root).build_cartesian_2d(x_range, 0.0..(y_max * 1.15).max(1.0))?;
        draw_scatter(chart, rows, 0.0, y_desc)
    }
}

fn chart_builder<'a, 'b>(root: &'a Area<'b>) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(CHART_TITLE, caption_style())
        .margin(12)
        .margin_right(40)
        .x_label_area_size(48)
        .y_label_area_size(72);
    b
}

/// A label's box in pixels: left, top, right, bottom.
type PxBox = (i32, i32, i32, i32);

/// A placement's score, lowest best: hard overlaps (other labels, outside the plot), soft
/// ones (dots, bars, the step line), distance level, candidate.
type Score = (usize, usize, usize, usize);

/// A placed label.
struct Label<'r> {
    row: &'r Row,
    /// The box relative to its dot: left, top, width, height.
    rel: (i32, i32, i32, i32),
    /// Whether it is far enough from its dot to need a leader line.
    leader: bool,
}

fn overlaps(a: PxBox, b: PxBox) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

fn draw_scatter<'a, Y>(
    mut chart: ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    rows: &[Row],
    floor: f64,
    y_desc: &str,
) -> PlotResult
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("cost per 30 days (USD)")
        .y_desc(y_desc)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style(label_style())
        .axis_desc_style(desc_style())
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let at = |r: &Row| (r.cost, r.p95.max(floor));

    // Error bars first, under the dots.
    let bar_style = ShapeStyle::from(GRAY_C).stroke_width(1);
    let bars: Vec<&Row> = rows.iter().filter(|r| r.spread.is_some()).collect();
    if !bars.is_empty() {
        chart
            .draw_series(bars.iter().map(|r| {
                let (lo, hi) = r.spread.unwrap_or((r.p95, r.p95));
                PathElement::new(vec![(r.cost, lo.max(floor)), (r.cost, hi.max(floor))], bar_style)
            }))?
            .label("p95 lowest – highest over the seeds")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x + 8, y - 7), (x + 8, y + 7)], bar_style)
            });
        for r in &bars {
            let (lo, hi) = r.spread.unwrap_or((r.p95, r.p95));
            for y in [lo, hi] {
                chart.draw_series(std::iter::once(
                    EmptyElement::at((r.cost, y.max(floor)))
                        + PathElement::new(vec![(-4, 0), (4, 0)], bar_style),
                ))?;
            }
        }
    }

    // The front's step line: the best p95 each budget buys.
    let mut front: Vec<&Row> = rows.iter().filter(|r| r.front).collect();
    front.sort_by(|a, b| {
        a.cost.total_cmp(&b.cost).then(a.p95.total_cmp(&b.p95)).then(a.row.cmp(&b.row))
    });
    let mut steps: Vec<(f64, f64)> = Vec::new();
    for r in &front {
        let (x, y) = at(r);
        if let Some(&(_, prev_y)) = steps.last() {
            steps.push((x, prev_y));
        }
        steps.push((x, y));
    }
    let front_style = ShapeStyle::from(RED_C).stroke_width(2);
    if steps.len() > 1 {
        chart.draw_series(LineSeries::new(steps.iter().copied(), front_style))?;
    }

    let others: Vec<&Row> = rows.iter().filter(|r| !r.front).collect();
    if !others.is_empty() {
        let style = ShapeStyle::from(BLUE_C).stroke_width(2);
        chart
            .draw_series(others.iter().map(|r| Circle::new(at(r), 4, style)))?
            .label("other points")
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, style));
    }
    if !front.is_empty() {
        chart
            .draw_series(front.iter().map(|r| Circle::new(at(r), 6, RED_C.filled())))?
            .label("Pareto front")
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (16, 0)], front_style)
                    + Circle::new((8, 0), 5, RED_C.filled())
            });
    }

    // The legend's box, roughly, so that labels keep out of it.
    let (x_px, y_px) = chart.plotting_area().get_pixel_range();
    let legend_lines =
        i32::from(!bars.is_empty()) + i32::from(!others.is_empty()) + i32::from(!front.is_empty());
    let legend_w = if bars.is_empty() { 150 } else { 330 };
    let legend: PxBox =
        (x_px.end - legend_w - 14, y_px.start, x_px.end, y_px.start + 14 + 26 * legend_lines);

    // Labels of the front, placed one by one where they overlap nothing placed before.
    let mut obstacles: Vec<PxBox> = Vec::new();
    for r in rows {
        let (px, py) = chart.backend_coord(&at(r));
        obstacles.push((px - 6, py - 6, px + 6, py + 6));
        if let Some((lo, hi)) = r.spread {
            let (_, top) = chart.backend_coord(&(r.cost, hi.max(floor)));
            let (_, bottom) = chart.backend_coord(&(r.cost, lo.max(floor)));
            obstacles.push((px - 4, top, px + 4, bottom));
        }
    }
    // The step line, segment by segment (it runs only horizontally and vertically).
    for w in steps.windows(2) {
        let (a, b) = (chart.backend_coord(&w[0]), chart.backend_coord(&w[1]));
        obstacles.push((a.0.min(b.0) - 2, a.1.min(b.1) - 2, a.0.max(b.0) + 2, a.1.max(b.1) + 2));
    }
    let area: PxBox = (x_px.start + 2, y_px.start + 2, x_px.end - 2, y_px.end - 2);
    let mut placed: Vec<PxBox> = vec![legend];
    let font = (FONT, LABEL_PX).into_font().color(&BLACK);
    let mut labels: Vec<Label<'_>> = Vec::new();
    for r in &front {
        let (px, py) = chart.backend_coord(&at(r));
        let w = (r.label.chars().count() as f64 * CHAR_PX).ceil() as i32 + 6;
        let h = LABEL_H;
        let mut best: Option<(Score, PxBox, bool)> = None;
        for level in 0..10usize {
            let gap = 7 + level as i32 * h;
            // Below-left first: nothing is cheaper and faster than a front point, so that
            // corner is free of dots.
            let mut candidates = vec![
                (px - 4 - w, py + gap - 4),
                (px - 4 - w, py - gap - h + 4),
                (px + 4, py + gap - 4),
                (px + 4, py - gap - h + 4),
            ];
            if level == 0 {
                candidates.insert(0, (px - 9 - w, py - h / 2));
            }
            for (k, &(left, top)) in candidates.iter().enumerate() {
                let b = (left, top, left + w, top + h);
                let outside = b.0 < area.0 || b.1 < area.1 || b.2 > area.2 || b.3 > area.3;
                let hard =
                    usize::from(outside) + placed.iter().filter(|p| overlaps(**p, b)).count();
                let soft = obstacles.iter().filter(|o| overlaps(**o, b)).count();
                let score = (hard, soft, level, k);
                if best.as_ref().is_none_or(|(s, _, _)| score < *s) {
                    best = Some((score, b, level > 0));
                }
            }
        }
        let Some((_, b, far)) = best else { continue };
        placed.push(b);
        labels.push(Label { row: r, rel: (b.0 - px, b.1 - py, w, h), leader: far });
    }
    // Leader lines (from the dot to the nearest corner of its label) under every label.
    let line = ShapeStyle::from(GRAY_C).stroke_width(1);
    for &Label { row: r, rel: (bx, by, w, h), leader } in &labels {
        if leader {
            let cx = if bx > 0 { bx } else { bx + w };
            let cy = if by > 0 { by } else { by + h };
            chart.draw_series(std::iter::once(
                EmptyElement::at(at(r)) + PathElement::new(vec![(0, 0), (cx, cy)], line),
            ))?;
        }
    }
    for &Label { row: r, rel: (bx, by, w, h), .. } in &labels {
        chart.draw_series(std::iter::once(
            EmptyElement::at(at(r))
                + Rectangle::new([(bx, by), (bx + w, by + h)], WHITE.mix(0.85).filled())
                + Text::new(
                    r.label.clone(),
                    (bx + 3, by + h / 2),
                    font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
                ),
        ))?;
    }

    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::METRIC_COLUMNS;

    /// Six points, IdleCount 0..2 × two markets, two seeds; (IdleCount 0, spot) and
    /// (IdleCount 1, spot) are on the front.
    fn table(window: bool) -> SweepTable {
        let mut header = vec![
            "point".to_owned(),
            "runners[0].machine.IdleCount".to_owned(),
            "cloud.market".to_owned(),
        ];
        header.extend(METRIC_COLUMNS.iter().map(|c| (*c).to_owned()));
        // point, idle, market, p95, min, max, cost
        let data = [
            (0, "0", "spot", 30.5, 20.0, 41.0, 46.28),
            (1, "0", "on-demand", 30.5, 20.0, 41.0, 154.2),
            (2, "1", "spot", 3.1, 2.9, 3.3, 53.9),
            (3, "1", "on-demand", 3.1, 2.9, 3.3, 185.1),
            (4, "2", "spot", 3.4, 3.0, 3.8, 65.2),
            (5, "2", "on-demand", 3.2, 3.0, 3.4, 230.0),
        ];
        let rows = data
            .iter()
            .map(|&(p, idle, market, p95, lo, hi, cost)| {
                let w = if window { format!("{}", p95 * 2.0) } else { String::new() };
                [
                    p.to_string(),
                    idle.to_owned(),
                    market.to_owned(),
                    "2".to_owned(),
                    "1.5".to_owned(),
                    p95.to_string(),
                    lo.to_string(),
                    hi.to_string(),
                    "60".to_owned(),
                    "2.5".to_owned(),
                    p95.to_string(),
                    w,
                    cost.to_string(),
                    (cost / 14000.0).to_string(),
                    "13".to_owned(),
                    "300".to_owned(),
                    "0".to_owned(),
                    "0.95".to_owned(),
                    String::new(),
                ]
                .to_vec()
            })
            .collect();
        let mut t = SweepTable { header, rows };
        t.mark_pareto().unwrap();
        t
    }

    fn page(t: &SweepTable) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.html");
        write_sweep_report(&path, t, "fleetsim sweep").unwrap();
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn renders_a_self_contained_page() {
        let t = table(false);
        assert_eq!(t.rows.iter().filter(|r| r.last().unwrap() == "true").count(), 2);
        let html = page(&t);
        assert!(html.starts_with("<!DOCTYPE html>"));
        crate::report::html::assert_self_contained(&html, 1);
        for label in ["IdleCount=0, market=spot", "IdleCount=1, market=spot"] {
            assert!(html.contains(label), "label {label}");
        }
        assert!(!html.contains("IdleCount=2, market=spot"), "only the front is labelled");
        assert!(html.contains("cost per 30 days (USD)") && html.contains("p95 pending (seconds)"));
        assert!(html.contains("<code>runners[0].machine.IdleCount</code>: 0, 1, 2 (3 values)"));
        assert!(html.contains("<code>cloud.market</code>: spot, on-demand (2 values)"));
        assert!(html.contains("20.00\u{a0}s\u{a0}–\u{a0}41.00\u{a0}s"), "the seeds' spread");
        // The front table is sorted by cost: $46.28 before $53.90.
        let front = &html[html.find("The Pareto front, by cost").unwrap()..];
        assert!(front.find("$46.28").unwrap() < front.find("$53.90").unwrap());
    }

    #[test]
    fn the_page_is_deterministic() {
        let t = table(false);
        assert_eq!(page(&t).into_bytes(), page(&t.clone()).into_bytes());
    }

    #[test]
    fn a_window_is_plotted_without_the_seed_spread() {
        let html = page(&table(true));
        crate::report::html::assert_self_contained(&html, 1);
        assert!(html.contains("p95 pending in the window (seconds)"));
        assert!(html.contains("not drawn here"));
    }

    #[test]
    fn wide_ranges_use_a_log_scale_and_empty_tables_render() {
        let mut t = table(false);
        t.rows[0][5] = "5000".to_owned();
        t.rows[0][7] = "9000".to_owned();
        let html = page(&t);
        crate::report::html::assert_self_contained(&html, 1);
        assert!(html.contains("log scale"));

        let empty = SweepTable { header: t.header.clone(), rows: vec![] };
        let html = page(&empty);
        crate::report::html::assert_self_contained(&html, 1);
        assert!(html.contains("no point with a cost and a p95"));
    }
}
