//! The run's page, `report.html`: the summary as key figures and tables, the pending-time
//! CDF and its causes, the load and the machines over time, and the cost split.

use std::fmt::Write as _;
use std::io;
use std::ops::Range;

use hdrhistogram::Histogram;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

use super::MachineStats;
use super::kit::{
    Area, BLUE_C, Bars, GREEN_C, LIGHT_C, MISSING, ORANGE_C, PlotResult, RED_C, at, bar_chart,
    caption_style, desc_style, draw_legend, empty_chart, esc, figure, fmt_count, fmt_pct, fmt_s,
    fmt_usd, label_style, legend_marker, num, opt, page_head, svg, text, tick,
};
use crate::report::page_stats::{Bucket, JobStats, MAX_POINTS, TimelineStats};
use crate::report::summary::human;

/// Chart width in pixels.
const WIDTH: u32 = 900;
/// Height of the line charts in pixels.
const HEIGHT: u32 = 360;
/// Height of the bar charts in pixels.
const BAR_HEIGHT: u32 = 300;
/// Headroom above the data of the time charts, for the legend.
const LEGEND_ROOM: f64 = 1.45;

/// The page of one run from its summary (as JSON) and the statistics of its CSV files.
pub(super) fn render_run_page(
    s: &Value,
    jobs: &JobStats,
    timeline: &TimelineStats,
    machines: &MachineStats,
) -> io::Result<String> {
    let scenario = text(s, "scenario").unwrap_or_else(|| "(unnamed scenario)".to_owned());
    let mut out = page_head(&format!("fleetsim report: {scenario}"));
    header(&mut out, s, &scenario);
    key_figures(&mut out, s);
    summary_tables(&mut out, s);
    pending_section(&mut out, s, jobs)?;
    load_section(&mut out, s, timeline)?;
    machines_section(&mut out, s, timeline, machines)?;
    cost_section(&mut out, s)?;
    let _ = writeln!(
        out,
        "<p class=\"note\">Written by fleetsim from summary.json, jobs.csv, timeline.csv{} in this folder; the same run gives the same page.</p>",
        if machines.count > 0 { " and machines.csv" } else { "" }
    );
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

/// The title, the run's identity (seed, version, mode, simulated time), the fleet, the
/// replay command and the input hashes.
fn header(out: &mut String, s: &Value, scenario: &str) {
    let _ = writeln!(out, "<header>\n<h1>fleetsim report: {}</h1>", esc(scenario));
    let meta = |label: &str, value: Option<String>| -> String {
        format!("<b>{}</b> {}", esc(label), esc(&value.unwrap_or_else(|| MISSING.to_owned())))
    };
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} · {} · {} · {}</p>",
        meta("seed", text(s, "seed")),
        meta("version", text(s, "version")),
        meta("mode", text(s, "mode")),
        meta("simulated", num(s, "simulated_s").map(human)),
    );
    let fleet = fleet_line(s);
    let _ = writeln!(out, "<p class=\"meta\"><b>fleet</b> {}</p>", esc(&fleet));
    let _ = writeln!(
        out,
        "<p class=\"meta\"><b>replay</b> <code>{}</code></p>",
        esc(&text(s, "replay").unwrap_or_else(|| MISSING.to_owned()))
    );
    let _ = writeln!(
        out,
        "<p class=\"meta\"><b>scenario sha256</b> <code>{}</code> <b>trace sha256</b> <code>{}</code></p>\n</header>",
        esc(&text(s, "scenario_sha256").unwrap_or_else(|| MISSING.to_owned())),
        esc(&text(s, "trace_sha256").unwrap_or_else(|| MISSING.to_owned())),
    );
}

/// The key figures under the header.
fn key_figures(out: &mut String, s: &Value) {
    out.push_str("<div class=\"key\">");
    let key = [
        ("pending p95", opt(num(s, "pending.p95_s"), fmt_s)),
        ("to script p95", opt(num(s, "to_script.p95_s"), fmt_s)),
        ("cost per 30 days", opt(num(s, "cost.per_month_usd"), fmt_usd)),
        ("cost per job", opt(num(s, "cost.per_job_usd"), |x| format!("${x:.4}"))),
        ("jobs", opt(num(s, "jobs.total"), fmt_count)),
    ];
    for (label, value) in key {
        let _ = write!(out, "<div>{}<span>{}</span></div>", esc(label), esc(&value));
    }
    out.push_str("</div>\n");
}

/// The summary as tables: pending, queued → script start (and the window's jobs), jobs and
/// use, machines, cost.
fn summary_tables(out: &mut String, s: &Value) {
    out.push_str("<h2>Summary</h2>\n<div class=\"grid\">\n");
    let p = |k: &str| num(s, &format!("pending.{k}"));
    figure_table(
        out,
        "Pending (queued → picked up)",
        &[
            ("mean", opt(p("mean_s"), fmt_s)),
            ("p50", opt(p("p50_s"), fmt_s)),
            ("p90", opt(p("p90_s"), fmt_s)),
            ("p95", opt(p("p95_s"), fmt_s)),
            ("p99", opt(p("p99_s"), fmt_s)),
            ("max", opt(p("max_s"), fmt_s)),
            ("waited for capacity", opt(p("share_waited_for_capacity"), fmt_pct)),
        ],
    );
    let t = |k: &str| num(s, &format!("to_script.{k}"));
    let mut script_rows = vec![
        ("p50", opt(t("p50_s"), fmt_s)),
        ("p95", opt(t("p95_s"), fmt_s)),
        ("p99", opt(t("p99_s"), fmt_s)),
    ];
    if let Some(w) = at(s, "window").filter(|w| w.is_object()) {
        let wn = |k: &str| num(w, k);
        script_rows.push(("", String::new()));
        let label = text(w, "window").unwrap_or_default();
        figure_table(out, "Queued → script start", &script_rows);
        figure_table(
            out,
            &format!("Jobs queued in {label}"),
            &[
                ("job runs", opt(wn("jobs"), fmt_count)),
                ("pending mean", opt(wn("pending_mean_s"), fmt_s)),
                ("pending p50", opt(wn("pending_p50_s"), fmt_s)),
                ("pending p95", opt(wn("pending_p95_s"), fmt_s)),
                ("pending p99", opt(wn("pending_p99_s"), fmt_s)),
                ("to script p95", opt(wn("to_script_p95_s"), fmt_s)),
            ],
        );
    } else {
        figure_table(out, "Queued → script start", &script_rows);
    }
    let j = |k: &str| num(s, &format!("jobs.{k}"));
    let u = |k: &str| num(s, &format!("utilization.{k}"));
    figure_table(
        out,
        "Jobs and use",
        &[
            ("jobs in the trace", opt(j("total"), fmt_count)),
            ("runs finished", opt(j("finished"), fmt_count)),
            ("runs failed", opt(j("failed"), fmt_count)),
            ("retries", opt(j("retried"), fmt_count)),
            ("job slots", opt(u("slots"), fmt_count)),
            ("mean running", opt(u("mean_running"), |x| format!("{x:.2}"))),
            ("busy share", opt(u("busy_share"), fmt_pct)),
        ],
    );
    let m = |k: &str| num(s, &format!("machines.{k}"));
    figure_table(
        out,
        "Machines",
        &[
            ("created", opt(m("created"), fmt_count)),
            ("most at once", opt(m("max"), fmt_count)),
            ("creations failed", opt(m("creation_failed"), fmt_count)),
            ("interrupted", opt(m("interrupted"), fmt_count)),
            ("billed hours", opt(m("billed_hours"), |x| format!("{x:.1} h"))),
        ],
    );
    let c = |k: &str| num(s, &format!("cost.{k}"));
    figure_table(
        out,
        "Cost (USD)",
        &[
            ("total over the run", opt(c("total_usd"), fmt_usd)),
            ("per 30 days", opt(c("per_month_usd"), fmt_usd)),
            ("per job", opt(c("per_job_usd"), |x| format!("${x:.4}"))),
            ("machines", opt(c("machines_usd"), fmt_usd)),
            ("machines' idle share", opt(c("idle_share"), fmt_pct)),
            ("hosts / manager", opt(c("hosts_usd"), fmt_usd)),
            ("cache", opt(c("cache_usd"), fmt_usd)),
        ],
    );
    out.push_str("</div>\n");
}

/// The pending-time CDF and the mean pending time by cause.
fn pending_section(out: &mut String, s: &Value, jobs: &JobStats) -> io::Result<()> {
    let p = |k: &str| num(s, &format!("pending.{k}"));
    out.push_str("<h2>Pending time</h2>\n");
    let marks: Vec<(&'static str, f64, f64)> = [
        ("p50", "pending.p50_s", 0.5),
        ("p95", "pending.p95_s", 0.95),
        ("p99", "pending.p99_s", 0.99),
    ]
    .into_iter()
    .filter_map(|(label, path, q)| num(s, path).map(|x| (label, x, q)))
    .collect();
    let marks = if marks.len() == 3 { marks } else { Vec::new() };
    let input = CdfInput { pending: &jobs.pending, to_script: &jobs.to_script, marks };
    let chart = svg((WIDTH, HEIGHT), |root| cdf_chart(root, &input))?;
    figure(
        out,
        &chart,
        &format!(
            "Share of job runs picked up within x seconds ({} runs; HDR histogram, 3 significant digits; dots: the summary's p50, p95, p99).",
            jobs.pending.len()
        ),
    );

    let split = ["wait_capacity_mean_s", "wait_machine_mean_s", "wait_poll_mean_s"];
    let values: Vec<Option<f64>> = split.iter().map(|k| p(k)).collect();
    let categories: Vec<String> =
        ["no free slot (capacity)", "no idle machine", "runner had not polled"]
            .map(str::to_owned)
            .to_vec();
    let title =
        format!("Why jobs waited: mean pending time by cause (mean {})", opt(p("mean_s"), fmt_s));
    let chart = svg((WIDTH, BAR_HEIGHT), |root| {
        let bars = [Bars { name: String::new(), color: BLUE_C, values: values.clone() }];
        bar_chart(root, &title, "seconds (mean per job run)", &categories, &bars, fmt_s)
    })?;
    figure(
        out,
        &chart,
        "pending = wait for capacity (no free worker or limit slot) + wait for a machine (docker+machine) + wait for the runner's next poll.",
    );
    Ok(())
}

/// Pending and running jobs over time, with the job slots.
fn load_section(out: &mut String, s: &Value, timeline: &TimelineStats) -> io::Result<()> {
    let u = |k: &str| num(s, &format!("utilization.{k}"));
    out.push_str("<h2>Load over time</h2>\n");
    let slots = u("slots");
    let chart = svg((WIDTH, HEIGHT), |root| jobs_chart(root, timeline, slots))?;
    figure(
        out,
        &chart,
        "Averages are time-weighted; the peak is the most pending jobs at any instant of the bucket.",
    );
    Ok(())
}

/// Machines by state over time, and by removal reason and type (when the run had any).
fn machines_section(
    out: &mut String,
    s: &Value,
    timeline: &TimelineStats,
    machines: &MachineStats,
) -> io::Result<()> {
    let m = |k: &str| num(s, &format!("machines.{k}"));
    let any_machine =
        machines.count > 0 || timeline.any_machine || m("created").is_some_and(|x| x > 0.0);
    if any_machine {
        out.push_str("<h2>Machines</h2>\n");
        if timeline.has_machine_columns && !timeline.buckets.is_empty() {
            let chart = svg((WIDTH, HEIGHT), |root| machines_chart(root, timeline))?;
            figure(out, &chart, "Autoscaled machines by state (time-weighted averages).");
        }
        if machines.count > 0 {
            out.push_str("<div class=\"grid\">\n");
            let reasons: Vec<(&str, String)> =
                machines.by_reason.iter().map(|(k, v)| (k.as_str(), v.to_string())).collect();
            figure_table(out, &format!("{} machines by removal reason", machines.count), &reasons);
            let mut types: Vec<(&str, String)> =
                machines.by_type.iter().map(|(k, v)| (k.as_str(), v.to_string())).collect();
            let busy =
                if machines.billed_s > 0.0 { machines.busy_s / machines.billed_s } else { 0.0 };
            types.push(("busy share of billed time", fmt_pct(busy)));
            figure_table(out, "Instance types", &types);
            out.push_str("</div>\n");
        }
    }
    Ok(())
}

/// The cost over the run, split into busy and idle machines, hosts and cache.
fn cost_section(out: &mut String, s: &Value) -> io::Result<()> {
    let c = |k: &str| num(s, &format!("cost.{k}"));
    out.push_str("<h2>Cost</h2>\n");
    let machines_usd = c("machines_usd");
    let idle = c("idle_share");
    let cost_values = vec![
        machines_usd.zip(idle).map(|(m, i)| m * (1.0 - i)),
        machines_usd.zip(idle).map(|(m, i)| m * i),
        c("hosts_usd"),
        c("cache_usd"),
    ];
    let cost_categories: Vec<String> =
        ["machines, busy", "machines, idle", "hosts / manager", "cache"]
            .map(str::to_owned)
            .to_vec();
    let title = format!(
        "Cost over the run: {} ({} per 30 days)",
        opt(c("total_usd"), fmt_usd),
        opt(c("per_month_usd"), fmt_usd)
    );
    let chart = svg((WIDTH, BAR_HEIGHT), |root| {
        let bars = [Bars { name: String::new(), color: GREEN_C, values: cost_values.clone() }];
        bar_chart(root, &title, "USD over the simulated time", &cost_categories, &bars, fmt_usd)
    })?;
    figure(
        out,
        &chart,
        "Machines: per-second billing with a 60 s minimum; idle = billed while running no job. Hosts: runner hosts or the docker+machine manager. Cache: S3 requests and storage, or the MinIO server.",
    );
    Ok(())
}

fn fleet_line(s: &Value) -> String {
    let f = |k: &str| text(s, &format!("fleet.{k}")).unwrap_or_else(|| MISSING.to_owned());
    let mut line = format!(
        "{} host(s) × concurrent {}, {} runner entr{} each, check_interval {} s, pickup {}",
        f("hosts"),
        f("concurrent"),
        f("runners"),
        if f("runners") == "1" { "y" } else { "ies" },
        f("check_interval_s"),
        f("pickup"),
    );
    if let Some(lp) = num(s, "fleet.long_polling_s").filter(|&x| x > 0.0) {
        let _ = write!(line, ", long polling {lp} s");
    }
    line
}

/// A small two-column table: a heading and (label, value) rows.
fn figure_table(out: &mut String, heading: &str, rows: &[(&str, String)]) {
    let _ = write!(out, "<div><h3>{}</h3><table><tbody>", esc(heading));
    for (label, value) in rows {
        let _ = write!(out, "<tr><td>{}</td><td>{}</td></tr>", esc(label), esc(value));
    }
    out.push_str("</tbody></table></div>\n");
}

/// Points of a step CDF from a histogram of milliseconds, as (seconds, share) with zeros at
/// `floor_s`, at most [`MAX_POINTS`] steps.
fn cdf_points(h: &Histogram<u64>, floor_s: f64) -> Vec<(f64, f64)> {
    let total = h.len();
    if total == 0 {
        return Vec::new();
    }
    let steps: Vec<(f64, u64)> = {
        let mut cum = 0u64;
        h.iter_recorded()
            .map(|v| {
                cum += v.count_since_last_iteration();
                (h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0, cum)
            })
            .collect()
    };
    let stride = steps.len().div_ceil(MAX_POINTS).max(1);
    let mut points = Vec::with_capacity(2 * MAX_POINTS + 2);
    let mut last_share = 0.0;
    let n = steps.len();
    for (i, &(x, cum)) in steps.iter().enumerate() {
        if i % stride != stride - 1 && i != n - 1 {
            continue;
        }
        let x = x.max(floor_s);
        let share = cum as f64 / total as f64;
        points.push((x, last_share));
        points.push((x, share));
        last_share = share;
    }
    points
}

/// The x axis of the CDF: logarithmic when the values span more than two decades.
enum CdfAxis {
    Linear(Range<f64>),
    Log(Range<f64>),
}

fn cdf_axis(hists: &[&Histogram<u64>]) -> CdfAxis {
    let mut min_pos = f64::INFINITY;
    let mut max = 0.0f64;
    for h in hists {
        if h.is_empty() {
            continue;
        }
        max = max.max(h.highest_equivalent(h.max()) as f64 / 1000.0);
        if let Some(v) = h.iter_recorded().find(|v| v.value_iterated_to() > 0) {
            min_pos = min_pos.min(h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0);
        }
    }
    if max <= 0.0 {
        return CdfAxis::Linear(0.0..1.0);
    }
    if min_pos.is_finite() && max / min_pos > 100.0 {
        let lo = 10f64.powf(min_pos.log10().floor());
        let hi = 10f64.powf(max.log10().ceil()).max(lo * 10.0);
        CdfAxis::Log(lo..hi)
    } else {
        CdfAxis::Linear(0.0..max * 1.05)
    }
}

struct CdfInput<'a> {
    pending: &'a Histogram<u64>,
    to_script: &'a Histogram<u64>,
    /// (label, seconds, quantile) markers.
    marks: Vec<(&'static str, f64, f64)>,
}

fn cdf_chart(root: &Area<'_>, input: &CdfInput<'_>) -> PlotResult {
    let title = "Pending time, cumulative";
    if input.pending.is_empty() {
        return empty_chart(root, title, "no job runs in jobs.csv");
    }
    match cdf_axis(&[input.pending, input.to_script]) {
        CdfAxis::Linear(r) => {
            let floor = r.start;
            let chart = ChartBuilder::on(root)
                .caption(title, caption_style())
                .margin(12)
                .margin_right(40)
                .x_label_area_size(48)
                .y_label_area_size(64)
                .build_cartesian_2d(r, 0.0..1.02)?;
            cdf_body(chart, input, floor, "seconds (linear scale)")
        }
        CdfAxis::Log(r) => {
            let floor = r.start;
            let chart = ChartBuilder::on(root)
                .caption(title, caption_style())
                .margin(12)
                .margin_right(40)
                .x_label_area_size(48)
                .y_label_area_size(64)
                .build_cartesian_2d(r.log_scale(), 0.0..1.02)?;
            let desc = format!("seconds (log scale; zero shown at {})", tick(floor));
            cdf_body(chart, input, floor, &desc)
        }
    }
}

fn cdf_body<'a, X>(
    mut chart: ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<X, plotters::coord::types::RangedCoordf64>,
    >,
    input: &CdfInput<'_>,
    floor: f64,
    x_desc: &str,
) -> PlotResult
where
    X: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("share of job runs")
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
        .label_style(label_style())
        .axis_desc_style(desc_style())
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    // Pending first and thick, queued → script start on top, thin and dashed: where the
    // two agree (no on-demand boot) both stay visible.
    chart
        .draw_series(LineSeries::new(
            cdf_points(input.pending, floor),
            ShapeStyle::from(BLUE_C).stroke_width(4),
        ))?
        .label("pending (queued → picked up)")
        .legend(legend_marker(BLUE_C));
    if !input.to_script.is_empty() {
        chart
            .draw_series(DashedLineSeries::new(
                cdf_points(input.to_script, floor),
                6,
                4,
                ShapeStyle::from(ORANGE_C).stroke_width(2),
            ))?
            .label("queued → script start (runs that did not fail)")
            .legend(legend_marker(ORANGE_C));
    }
    for (i, &(label, x, q)) in input.marks.iter().enumerate() {
        let x = x.max(floor);
        chart.draw_series(std::iter::once(Circle::new((x, q), 4, BLACK.filled())))?;
        // p50 and p99 to the right, p95 to the left and below, so they do not collide.
        let pos = if i == 1 {
            Pos::new(HPos::Right, VPos::Top)
        } else {
            Pos::new(HPos::Left, VPos::Center)
        };
        let style = label_style().pos(pos);
        let offset = if i == 1 { (-6, 4) } else { (8, 0) };
        chart.draw_series(std::iter::once(
            EmptyElement::at((x, q))
                + Text::new(format!("{label} {}", fmt_s(input.marks[i].1)), offset, style),
        ))?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}

/// The axes of a chart over the run's time: x from 0 to `x_end` in `unit`, y from 0 to
/// `y_max` with room for the legend, labelled and gridded like every chart of the page.
fn time_chart<'a, 'b>(
    root: &'a Area<'b>,
    caption: &str,
    x_end: f64,
    y_max: f64,
    unit: &str,
    y_desc: &str,
) -> Result<
    ChartContext<
        'a,
        SVGBackend<'b>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    Box<dyn std::error::Error>,
> {
    let mut chart = ChartBuilder::on(root)
        .caption(caption, caption_style())
        .margin(12)
        .margin_right(40)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_end, 0.0..(y_max * LEGEND_ROOM).max(1.0))?;
    chart
        .configure_mesh()
        .x_desc(unit)
        .y_desc(y_desc)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style(label_style())
        .axis_desc_style(desc_style())
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    Ok(chart)
}

/// The time axis: hours, or minutes for runs shorter than three hours.
fn time_axis(t: &TimelineStats) -> (f64, &'static str) {
    let end_h = t.buckets.last().map_or(0.0, |b| (b.start_s + 60.0 * b.minutes as f64) / 3600.0);
    if end_h < 3.0 { (60.0, "minutes since start") } else { (1.0, "hours since start") }
}

fn bucket_note(t: &TimelineStats) -> String {
    if t.width <= 1 { "per minute".to_owned() } else { format!("per {}-minute bucket", t.width) }
}

fn jobs_chart(root: &Area<'_>, t: &TimelineStats, slots: Option<f64>) -> PlotResult {
    let title = "Pending and running jobs over time";
    if t.buckets.is_empty() {
        return empty_chart(root, title, "timeline.csv has no rows");
    }
    let (scale, unit) = time_axis(t);
    let x_end = t.buckets.last().map_or(1.0, |b| (b.start_s + 60.0 * b.minutes as f64) / 3600.0);
    let mut y_max = t.buckets.iter().map(|b| b.peaks[0].max(b.avg(1))).fold(0.0, f64::max);
    let slots = slots.filter(|&s| s > 0.0 && s <= 2.0 * y_max.max(1.0));
    if let Some(s) = slots {
        y_max = y_max.max(s);
    }
    let caption = format!("{title} ({})", bucket_note(t));
    let mut chart = time_chart(root, &caption, x_end * scale, y_max, unit, "jobs")?;
    chart
        .draw_series(
            AreaSeries::new(
                t.buckets.iter().map(|b| (b.mid_h() * scale, b.avg(1))),
                0.0,
                BLUE_C.mix(0.35),
            )
            .border_style(BLUE_C),
        )?
        .label("running (average)")
        .legend(legend_marker(BLUE_C));
    chart
        .draw_series(LineSeries::new(
            t.buckets.iter().map(|b| (b.mid_h() * scale, b.peaks[0])),
            ShapeStyle::from(ORANGE_C.mix(0.55)).stroke_width(1),
        ))?
        .label("pending (peak)")
        .legend(legend_marker(ORANGE_C.mix(0.55).to_rgba().rgb_color()));
    chart
        .draw_series(LineSeries::new(
            t.buckets.iter().map(|b| (b.mid_h() * scale, b.avg(0))),
            ShapeStyle::from(RED_C).stroke_width(2),
        ))?
        .label("pending (average)")
        .legend(legend_marker(RED_C));
    if let Some(s) = slots {
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, s), (x_end * scale, s)],
                10,
                6,
                ShapeStyle::from(BLACK.mix(0.7)).stroke_width(2),
            ))?
            .label("job slots (concurrent × hosts)")
            .legend(legend_marker(RGBColor(77, 77, 77)));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

trait RgbOf {
    fn rgb_color(&self) -> RGBColor;
}

impl RgbOf for RGBAColor {
    /// The color blended on white.
    fn rgb_color(&self) -> RGBColor {
        let (r, g, b) = self.rgb();
        let a = self.alpha();
        let blend = |c: u8| (f64::from(c) * a + 255.0 * (1.0 - a)).round() as u8;
        RGBColor(blend(r), blend(g), blend(b))
    }
}

fn machines_chart(root: &Area<'_>, t: &TimelineStats) -> PlotResult {
    let title = format!("Machines by state over time (stacked averages, {})", bucket_note(t));
    let (scale, unit) = time_axis(t);
    let x_end = t.buckets.last().map_or(1.0, |b| (b.start_s + 60.0 * b.minutes as f64) / 3600.0);
    // Layers bottom to top: busy, idle, creating, removing (indexes into Bucket::sums).
    let layers: [(usize, &str, RGBColor); 4] = [
        (4, "busy (running a job)", GREEN_C),
        (3, "idle", LIGHT_C),
        (2, "creating", ORANGE_C),
        (5, "removing", RED_C),
    ];
    let stacked = |b: &Bucket, upto: usize| -> f64 {
        layers[..=upto].iter().map(|&(i, _, _)| b.avg(i)).sum()
    };
    let y_max = t.buckets.iter().map(|b| stacked(b, 3)).fold(0.0, f64::max);
    let mut chart = time_chart(root, &title, x_end * scale, y_max, unit, "machines")?;
    // Top layer first, so each lower layer paints over the part that is its own.
    for upto in (0..layers.len()).rev() {
        let (_, name, color) = layers[upto];
        chart
            .draw_series(AreaSeries::new(
                t.buckets.iter().map(|b| (b.mid_h() * scale, stacked(b, upto))),
                0.0,
                color.filled(),
            ))?
            .label(name)
            .legend(legend_marker(color));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::page_stats::new_histogram;

    #[test]
    fn cdf_points_are_bounded_and_end_at_one() {
        let mut h = new_histogram().unwrap();
        for v in 0..200_000u64 {
            h.record(v * 37 % 3_600_000).unwrap();
        }
        let pts = cdf_points(&h, 0.001);
        assert!(pts.len() <= 2 * MAX_POINTS + 2, "{}", pts.len());
        assert_eq!(pts.last().map(|p| p.1), Some(1.0));
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }
}
