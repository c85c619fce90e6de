//! `report.html`: one self-contained page per run (no network: inline CSS and inline SVG
//! charts drawn here with `plotters`), built from the files the run already wrote.
//!
//! - `jobs.csv` is streamed into two HDR histograms (pending and queued → script start), so
//!   the page costs the same memory for a thousand jobs or ten million; the CDF is drawn from
//!   the histograms' buckets.
//! - `timeline.csv` is streamed into at most [`MAX_POINTS`] buckets per series: buckets are
//!   whole numbers of minutes that double in width (neighbours merged, averages averaged and
//!   peaks kept) whenever there would be more.
//! - `machines.csv` (optional: older runs have none) gives the machine counts by removal
//!   reason.
//!
//! The summary is read through its JSON form, so the page renders whatever fields it has
//! and shows "—" for the ones it does not. Nothing here reads a clock or iterates a hash map:
//! the same report folder gives a byte-identical page.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader};
use std::ops::Range;
use std::path::Path;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

use crate::report::summary::{Summary, human};

/// Most points per time series on the charts.
pub const MAX_POINTS: usize = 2000;

/// Chart width in pixels.
const WIDTH: u32 = 900;
/// Height of the line charts in pixels.
const HEIGHT: u32 = 360;
/// Height of the bar charts in pixels.
const BAR_HEIGHT: u32 = 300;
/// Headroom above the data of the time charts, for the legend.
const LEGEND_ROOM: f64 = 1.45;

pub(crate) const FONT: &str = "sans-serif";
pub(crate) const BLUE_C: RGBColor = RGBColor(31, 119, 180);
const ORANGE_C: RGBColor = RGBColor(230, 115, 0);
const GREEN_C: RGBColor = RGBColor(44, 160, 44);
pub(crate) const RED_C: RGBColor = RGBColor(214, 39, 40);
pub(crate) const GRAY_C: RGBColor = RGBColor(127, 127, 127);
const LIGHT_C: RGBColor = RGBColor(158, 202, 225);

/// Writes `out_dir/report.html` from `summary` and the `jobs.csv`, `timeline.csv` and (when
/// present) `machines.csv` that the run wrote in `out_dir`.
///
/// Errors name the file: a missing or unreadable CSV, a missing column, a value that is not
/// a number, or a failure to write the page.
pub fn write_run_report(out_dir: &Path, summary: &Summary) -> io::Result<()> {
    let value = serde_json::to_value(summary)
        .map_err(|e| io::Error::other(format!("encoding the summary: {e}")))?;
    write_run_report_from_value(out_dir, &value)
}

/// [`write_run_report`] from the summary's JSON form (`summary.json` as a
/// `serde_json::Value`), for report folders written by other versions.
pub fn write_run_report_from_value(out_dir: &Path, summary: &Value) -> io::Result<()> {
    let jobs = read_jobs(&out_dir.join("jobs.csv"))?;
    let timeline = read_timeline(&out_dir.join("timeline.csv"))?;
    let machines = read_machines(&out_dir.join("machines.csv"))?;
    let page = render_run_page(summary, &jobs, &timeline, &machines)?;
    let path = out_dir.join("report.html");
    std::fs::write(&path, page).map_err(|e| named(&path, e))
}

// ---------------------------------------------------------------------------------------
// Reading the CSV files
// ---------------------------------------------------------------------------------------

/// What the page needs from `jobs.csv`.
struct JobStats {
    /// Pending time of every job run, in ms.
    pending: Histogram<u64>,
    /// Queued → script start of the runs that did not fail, in ms.
    to_script: Histogram<u64>,
}

/// One bucket of whole minutes of `timeline.csv`.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// `time_s` of the bucket's first minute.
    start_s: f64,
    /// Minutes in the bucket.
    minutes: u64,
    /// Sums over the minutes of pending, running, creating, idle, busy, removing averages.
    sums: [f64; 6],
    /// Peaks of pending and running.
    peaks: [f64; 2],
}

impl Bucket {
    fn merge(self, next: Bucket) -> Bucket {
        let mut sums = self.sums;
        for (s, n) in sums.iter_mut().zip(next.sums) {
            *s += n;
        }
        Bucket {
            start_s: self.start_s,
            minutes: self.minutes + next.minutes,
            sums,
            peaks: [self.peaks[0].max(next.peaks[0]), self.peaks[1].max(next.peaks[1])],
        }
    }

    /// Hours since the start at the bucket's middle.
    fn mid_h(&self) -> f64 {
        (self.start_s + 30.0 * self.minutes as f64) / 3600.0
    }

    fn avg(&self, i: usize) -> f64 {
        if self.minutes == 0 { 0.0 } else { self.sums[i] / self.minutes as f64 }
    }
}

/// `timeline.csv` downsampled to at most [`MAX_POINTS`] buckets.
#[derive(Debug, Default)]
struct TimelineStats {
    buckets: Vec<Bucket>,
    /// Minutes per bucket (a power of two).
    width: u64,
    /// Whether any machine column was ever above zero.
    any_machine: bool,
    /// Whether the file has the machine columns at all.
    has_machine_columns: bool,
}

/// What the page needs from `machines.csv`.
#[derive(Debug, Default)]
struct MachineStats {
    count: u64,
    by_reason: BTreeMap<String, u64>,
    by_type: BTreeMap<String, u64>,
    busy_s: f64,
    billed_s: f64,
}

fn named(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {e}", path.display()))
}

fn named_kind(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// A streaming CSV reader with the header's column positions.
struct Columns {
    reader: csv::Reader<BufReader<File>>,
    header: csv::ByteRecord,
}

impl Columns {
    fn open(path: &Path) -> io::Result<Columns> {
        let file = File::open(path).map_err(|e| named_kind(path, e))?;
        let mut reader =
            csv::ReaderBuilder::new().has_headers(true).from_reader(BufReader::new(file));
        let header = reader.byte_headers().map_err(|e| named(path, e))?.clone();
        Ok(Columns { reader, header })
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name.as_bytes())
    }

    fn need(&self, path: &Path, name: &str) -> io::Result<usize> {
        self.find(name).ok_or_else(|| named(path, format!("no `{name}` column")))
    }
}

fn field<'r>(path: &Path, rec: &'r csv::ByteRecord, i: usize, name: &str) -> io::Result<&'r [u8]> {
    rec.get(i).ok_or_else(|| {
        let line = rec.position().map_or(0, csv::Position::line);
        named(path, format!("line {line}: no `{name}` value"))
    })
}

fn number(path: &Path, rec: &csv::ByteRecord, i: usize, name: &str) -> io::Result<f64> {
    let raw = field(path, rec, i, name)?;
    let parsed = std::str::from_utf8(raw).ok().and_then(|s| s.trim().parse::<f64>().ok());
    match parsed {
        Some(x) if x.is_finite() => Ok(x),
        _ => {
            let line = rec.position().map_or(0, csv::Position::line);
            Err(named(
                path,
                format!(
                    "line {line}: `{name}`: expected a number, found `{}`",
                    String::from_utf8_lossy(raw)
                ),
            ))
        }
    }
}

fn seconds_to_ms(s: f64) -> u64 {
    (s.max(0.0) * 1000.0).round() as u64
}

/// Longest time the histograms hold (1000 days in ms); longer ones count as this.
const HISTOGRAM_MAX_MS: u64 = 1000 * 86_400_000;

/// A fixed-range histogram of milliseconds, 3 significant digits (like the summary's), so
/// that `saturating_record` never clamps a real value.
fn new_histogram() -> io::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_MS, 3)
        .map_err(|e| io::Error::other(format!("histogram: {e}")))
}

fn read_jobs(path: &Path) -> io::Result<JobStats> {
    let mut cols = Columns::open(path)?;
    let pending_i = cols.need(path, "pending_s")?;
    let to_script_i = cols.find("to_script_s");
    let failed_i = cols.find("failed");
    let mut stats = JobStats { pending: new_histogram()?, to_script: new_histogram()? };
    let mut rec = csv::ByteRecord::new();
    while cols.reader.read_byte_record(&mut rec).map_err(|e| named(path, e))? {
        let pending = number(path, &rec, pending_i, "pending_s")?;
        stats.pending.saturating_record(seconds_to_ms(pending));
        let failed = match failed_i {
            Some(i) => field(path, &rec, i, "failed")? == b"true",
            None => false,
        };
        if let (Some(i), false) = (to_script_i, failed) {
            let t = number(path, &rec, i, "to_script_s")?;
            stats.to_script.saturating_record(seconds_to_ms(t));
        }
    }
    Ok(stats)
}

fn read_timeline(path: &Path) -> io::Result<TimelineStats> {
    let mut cols = Columns::open(path)?;
    let time_i = cols.need(path, "time_s")?;
    let avg_names = ["pending_avg", "running_avg"];
    let machine_names = [
        "machines_creating_avg",
        "machines_idle_avg",
        "machines_busy_avg",
        "machines_removing_avg",
    ];
    let peak_names = ["pending_max", "running_max"];
    let mut avg_i = Vec::new();
    for name in avg_names {
        avg_i.push((Some(cols.need(path, name)?), name));
    }
    let machine_i: Vec<_> = machine_names.iter().map(|&n| (cols.find(n), n)).collect();
    let has_machine_columns = machine_i.iter().all(|(i, _)| i.is_some());
    avg_i.extend(machine_i);
    let mut peak_i = Vec::new();
    for name in peak_names {
        peak_i.push((cols.need(path, name)?, name));
    }

    let minute_i = cols.find("minute");
    let mut stats = TimelineStats { width: 1, has_machine_columns, ..TimelineStats::default() };
    let mut row: u64 = 0;
    let mut previous: Option<Bucket> = None;
    let mut rec = csv::ByteRecord::new();
    while cols.reader.read_byte_record(&mut rec).map_err(|e| named(path, e))? {
        // A gap in `minute` is a compressed idle stretch: its minutes repeat the row before.
        if let (Some(i), Some(prev)) = (minute_i, previous) {
            let at = number(path, &rec, i, "minute")? as u64;
            while row < at {
                stats.add_minute(row, Bucket { start_s: row as f64 * 60.0, ..prev });
                row += 1;
            }
        }
        let mut minute = Bucket {
            start_s: number(path, &rec, time_i, "time_s")?,
            minutes: 1,
            ..Bucket::default()
        };
        for (k, &(i, name)) in avg_i.iter().enumerate() {
            if let Some(i) = i {
                minute.sums[k] = number(path, &rec, i, name)?;
            }
        }
        for (k, &(i, name)) in peak_i.iter().enumerate() {
            minute.peaks[k] = number(path, &rec, i, name)?;
        }
        stats.any_machine |= minute.sums[2..].iter().any(|&x| x > 0.0);
        stats.add_minute(row, minute);
        previous = Some(minute);
        row += 1;
    }
    Ok(stats)
}

impl TimelineStats {
    /// Adds minute number `row` (0-based, in order), halving the resolution when the buckets
    /// are full.
    fn add_minute(&mut self, row: u64, minute: Bucket) {
        let mut index = (row / self.width) as usize;
        if index >= MAX_POINTS {
            self.buckets = self
                .buckets
                .chunks(2)
                .map(|pair| match pair {
                    [a, b] => a.merge(*b),
                    [a] => *a,
                    _ => Bucket::default(),
                })
                .collect();
            self.width *= 2;
            index = (row / self.width) as usize;
        }
        match self.buckets.get_mut(index) {
            Some(bucket) => *bucket = bucket.merge(minute),
            None => self.buckets.push(minute),
        }
    }
}

fn read_machines(path: &Path) -> io::Result<MachineStats> {
    let mut stats = MachineStats::default();
    if !path.exists() {
        return Ok(stats);
    }
    let mut cols = Columns::open(path)?;
    let reason_i = cols.need(path, "removal_reason")?;
    let type_i = cols.find("instance_type");
    let market_i = cols.find("market");
    let busy_i = cols.find("busy_s");
    let billed_i = cols.find("billed_s");
    let mut rec = csv::ByteRecord::new();
    while cols.reader.read_byte_record(&mut rec).map_err(|e| named(path, e))? {
        stats.count += 1;
        let reason = String::from_utf8_lossy(field(path, &rec, reason_i, "removal_reason")?);
        let reason = if reason.is_empty() { "still running at the end".into() } else { reason };
        *stats.by_reason.entry(reason.into_owned()).or_default() += 1;
        if let Some(i) = type_i {
            let mut kind =
                String::from_utf8_lossy(field(path, &rec, i, "instance_type")?).into_owned();
            if let Some(m) = market_i {
                let market = String::from_utf8_lossy(field(path, &rec, m, "market")?);
                let _ = write!(kind, " ({market})");
            }
            *stats.by_type.entry(kind).or_default() += 1;
        }
        if let Some(i) = busy_i {
            stats.busy_s += number(path, &rec, i, "busy_s")?;
        }
        if let Some(i) = billed_i {
            stats.billed_s += number(path, &rec, i, "billed_s")?;
        }
    }
    Ok(stats)
}

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The value at a dotted path such as `pending.p95_s`.
pub(crate) fn at<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

/// The number at a dotted path.
pub(crate) fn num(v: &Value, path: &str) -> Option<f64> {
    at(v, path).and_then(Value::as_f64)
}

fn text(v: &Value, path: &str) -> Option<String> {
    match at(v, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) const MISSING: &str = "—";

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| MISSING.to_owned(), f)
}

/// Seconds with one decimal, as on stdout.
pub(crate) fn fmt_s(x: f64) -> String {
    format!("{x:.1} s")
}

/// Dollars with two decimals.
pub(crate) fn fmt_usd(x: f64) -> String {
    format!("${x:.2}")
}

fn fmt_pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn fmt_count(x: f64) -> String {
    format!("{x:.0}")
}

/// A tick label: no trailing zeros, no float noise.
pub(crate) fn tick(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    };
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

// ---------------------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------------------

pub(crate) type PlotResult = Result<(), Box<dyn std::error::Error>>;
pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws one SVG chart of `size` into a string.
pub(crate) fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> PlotResult,
) -> io::Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        let drawn: PlotResult = (|| {
            root.fill(&WHITE)?;
            draw(&root)?;
            root.present()?;
            Ok(())
        })();
        drawn.map_err(|e| io::Error::other(format!("drawing a chart: {e}")))?;
    }
    Ok(buf)
}

pub(crate) fn caption_style() -> TextStyle<'static> {
    (FONT, 23).into_font().style(FontStyle::Bold).color(&BLACK)
}

pub(crate) fn label_style() -> TextStyle<'static> {
    (FONT, 17).into_font().color(&BLACK)
}

pub(crate) fn desc_style() -> TextStyle<'static> {
    (FONT, 18).into_font().color(&BLACK)
}

/// A chart with nothing to show: its title and a note.
pub(crate) fn empty_chart(root: &Area<'_>, title: &str, note: &str) -> PlotResult {
    let (w, h) = root.dim_in_pixel();
    root.draw(&Text::new(title.to_owned(), (20, 16), caption_style()))?;
    let style = desc_style().color(&GRAY_C).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(note.to_owned(), (w as i32 / 2, h as i32 / 2), style))?;
    Ok(())
}

fn legend_marker(color: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.filled())
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

/// The time axis: hours, or minutes for runs shorter than three hours.
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

/// Draws a chart's legend at `position`, styled like every legend of the pages.
pub(crate) fn draw_legend<'a, 'b: 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
    position: SeriesLabelPosition,
) -> PlotResult {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(label_style())
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .draw()?;
    Ok(())
}

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

/// A category axis: `n` slots of width 1, labelled at their middles.
#[derive(Debug, Clone)]
struct Slots(usize);

impl Ranged for Slots {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let n = self.0.max(1) as f64;
        limit.0 + (f64::from(limit.1 - limit.0) * v / n).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        (0..self.0).map(|i| i as f64 + 0.5).collect()
    }

    fn range(&self) -> Range<f64> {
        0.0..self.0 as f64
    }
}

/// One series of a bar chart.
pub(crate) struct Bars {
    /// Legend name (unused when there is one series).
    pub name: String,
    /// Fill color.
    pub color: RGBColor,
    /// One value per category; `None` is shown as "—".
    pub values: Vec<Option<f64>>,
}

/// The colors of the first and second run on a comparison.
pub(crate) const SERIES_COLORS: [RGBColor; 2] = [BLUE_C, ORANGE_C];

/// A bar chart: one group per category, one bar per series, values written on the bars.
pub(crate) fn bar_chart(
    root: &Area<'_>,
    title: &str,
    y_desc: &str,
    categories: &[String],
    series: &[Bars],
    fmt: fn(f64) -> String,
) -> PlotResult {
    // A value that is not finite (a summary.json edited by hand, or a product of absurd
    // values) is drawn as missing: an infinite axis would make plotters' ticks loop forever.
    let finite: Vec<Bars> = series
        .iter()
        .map(|s| Bars {
            name: s.name.clone(),
            color: s.color,
            values: s.values.iter().map(|v| v.filter(|x| x.is_finite())).collect(),
        })
        .collect();
    let series = finite.as_slice();
    let y_max =
        series.iter().flat_map(|s| s.values.iter().flatten()).fold(0.0f64, |m, &v| m.max(v));
    let y_top = if y_max > 0.0 { (y_max * 1.2).min(f64::MAX) } else { 1.0 };
    let n = categories.len();
    let mut chart = ChartBuilder::on(root)
        .caption(title, caption_style())
        .margin(12)
        .margin_right(40)
        .x_label_area_size(40)
        .y_label_area_size(72)
        .build_cartesian_2d(Slots(n), 0.0..y_top)?;
    let names = categories.to_vec();
    let label = move |v: &f64| {
        let i = v.floor().max(0.0) as usize;
        names.get(i).cloned().unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&label)
        .y_desc(y_desc)
        .y_label_formatter(&|v| tick(*v))
        .label_style(label_style())
        .axis_desc_style(desc_style())
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let m = series.len().max(1);
    let group = 0.7;
    let width = group / m as f64;
    for (j, s) in series.iter().enumerate() {
        let x0 = |i: usize| i as f64 + (1.0 - group) / 2.0 + width * j as f64;
        let drawn = chart.draw_series(s.values.iter().enumerate().filter_map(|(i, v)| {
            v.map(|v| {
                Rectangle::new([(x0(i) + 0.01, 0.0), (x0(i) + width - 0.01, v)], s.color.filled())
            })
        }))?;
        if series.len() > 1 {
            drawn.label(s.name.clone()).legend(legend_marker(s.color));
        }
        let style = label_style().pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(s.values.iter().enumerate().map(|(i, v)| {
            let (y, t) = match v {
                Some(v) => (*v, fmt(*v)),
                None => (0.0, MISSING.to_owned()),
            };
            EmptyElement::at((x0(i) + width / 2.0, y)) + Text::new(t, (0, -3), style.clone())
        }))?;
    }
    if series.len() > 1 {
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------

/// The page's inline style sheet.
pub(crate) const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;\
color:#222;background:#fff;max-width:960px;margin:0 auto;padding:16px 20px 40px;line-height:1.4}\
h1{font-size:1.6em;margin:.2em 0 .3em}h2{font-size:1.25em;margin:1.4em 0 .4em;\
border-bottom:1px solid #ddd;padding-bottom:.2em}h3{font-size:1em;margin:.2em 0 .3em}\
code{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f3f3f3;padding:1px 4px;\
border-radius:3px;word-break:break-all}\
table{border-collapse:collapse;font-variant-numeric:tabular-nums}\
th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:right;vertical-align:top}\
th:first-child,td:first-child{text-align:left}thead th{border-bottom:2px solid #ccc}\
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(290px,1fr));gap:10px 24px}\
.meta{color:#555;margin:.2em 0}.meta b{color:#222}\
.key{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}\
.key div{border:1px solid #ddd;border-radius:6px;padding:6px 14px;min-width:120px}\
.key span{display:block;font-size:1.4em;font-weight:600}\
figure{margin:18px 0}figcaption{color:#555;font-size:.9em;margin-top:2px}\
svg{max-width:100%;height:auto;display:block}\
.note{color:#666;font-size:.9em}";

/// The page up to and including `<body>`.
pub(crate) fn page_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(title)
    )
}

/// A small two-column table: a heading and (label, value) rows.
fn figure_table(out: &mut String, heading: &str, rows: &[(&str, String)]) {
    let _ = write!(out, "<div><h3>{}</h3><table><tbody>", esc(heading));
    for (label, value) in rows {
        let _ = write!(out, "<tr><td>{}</td><td>{}</td></tr>", esc(label), esc(value));
    }
    out.push_str("</tbody></table></div>\n");
}

pub(crate) fn figure(out: &mut String, svg: &str, caption: &str) {
    let _ = write!(out, "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n", esc(caption));
}

fn render_run_page(
    s: &Value,
    jobs: &JobStats,
    timeline: &TimelineStats,
    machines: &MachineStats,
) -> io::Result<String> {
    let scenario = text(s, "scenario").unwrap_or_else(|| "(unnamed scenario)".to_owned());
    let mut out = page_head(&format!("fleetsim report: {scenario}"));
    let _ = writeln!(out, "<header>\n<h1>fleetsim report: {}</h1>", esc(&scenario));
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

    // Key figures.
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

    // The summary as tables.
    out.push_str("<h2>Summary</h2>\n<div class=\"grid\">\n");
    let p = |k: &str| num(s, &format!("pending.{k}"));
    figure_table(
        &mut out,
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
        figure_table(&mut out, "Queued → script start", &script_rows);
        figure_table(
            &mut out,
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
        figure_table(&mut out, "Queued → script start", &script_rows);
    }
    let j = |k: &str| num(s, &format!("jobs.{k}"));
    let u = |k: &str| num(s, &format!("utilization.{k}"));
    figure_table(
        &mut out,
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
        &mut out,
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
        &mut out,
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

    // Charts.
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
        &mut out,
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
        &mut out,
        &chart,
        "pending = wait for capacity (no free worker or limit slot) + wait for a machine (docker+machine) + wait for the runner's next poll.",
    );

    out.push_str("<h2>Load over time</h2>\n");
    let slots = u("slots");
    let chart = svg((WIDTH, HEIGHT), |root| jobs_chart(root, timeline, slots))?;
    figure(
        &mut out,
        &chart,
        "Averages are time-weighted; the peak is the most pending jobs at any instant of the bucket.",
    );

    let any_machine =
        machines.count > 0 || timeline.any_machine || m("created").is_some_and(|x| x > 0.0);
    if any_machine {
        out.push_str("<h2>Machines</h2>\n");
        if timeline.has_machine_columns && !timeline.buckets.is_empty() {
            let chart = svg((WIDTH, HEIGHT), |root| machines_chart(root, timeline))?;
            figure(&mut out, &chart, "Autoscaled machines by state (time-weighted averages).");
        }
        if machines.count > 0 {
            out.push_str("<div class=\"grid\">\n");
            let reasons: Vec<(&str, String)> =
                machines.by_reason.iter().map(|(k, v)| (k.as_str(), v.to_string())).collect();
            figure_table(
                &mut out,
                &format!("{} machines by removal reason", machines.count),
                &reasons,
            );
            let mut types: Vec<(&str, String)> =
                machines.by_type.iter().map(|(k, v)| (k.as_str(), v.to_string())).collect();
            let busy =
                if machines.billed_s > 0.0 { machines.busy_s / machines.billed_s } else { 0.0 };
            types.push(("busy share of billed time", fmt_pct(busy)));
            figure_table(&mut out, "Instance types", &types);
            out.push_str("</div>\n");
        }
    }

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
        &mut out,
        &chart,
        "Machines: per-second billing with a 60 s minimum; idle = billed while running no job. Hosts: runner hosts or the docker+machine manager. Cache: S3 requests and storage, or the MinIO server.",
    );
    let _ = writeln!(
        out,
        "<p class=\"note\">Written by fleetsim from summary.json, jobs.csv, timeline.csv{} in this folder; the same run gives the same page.</p>",
        if machines.count > 0 { " and machines.csv" } else { "" }
    );
    out.push_str("</body>\n</html>\n");
    Ok(out)
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SUMMARY_JSON: &str = r#"{
  "scenario": "tiny <test>",
  "mode": "sim",
  "version": "0.1.0",
  "seed": 7,
  "scenario_sha256": "aa",
  "trace_sha256": "bb",
  "replay": "sim run scenarios/tiny.toml --seed 7",
  "simulated_s": 300.0,
  "jobs": { "total": 4, "finished": 4, "failed": 0, "retried": 0 },
  "pending": { "mean_s": 12.5, "p50_s": 3.0, "p90_s": 40.0, "p95_s": 43.217, "p99_s": 45.0,
    "max_s": 45.0, "share_waited": 1.0, "share_waited_for_capacity": 0.5,
    "wait_capacity_mean_s": 8.0, "wait_machine_mean_s": 3.0, "wait_poll_mean_s": 1.5 },
  "to_script": { "p50_s": 3.0, "p95_s": 50.0, "p99_s": 50.0 },
  "machines": { "max": 2, "created": 2, "creation_failed": 0, "interrupted": 0, "billed_hours": 0.1 },
  "utilization": { "mean_running": 1.2, "mean_pending": 0.4, "slots": 4, "busy_share": 0.3, "mean_run_s": 90.0 },
  "fleet": { "hosts": 1, "concurrent": 4, "runners": 1, "check_interval_s": 3.0, "pickup": "polling", "long_polling_s": 0.0 },
  "cost": { "total_usd": 0.05, "per_month_usd": 432.0, "per_job_usd": 0.0125, "machines_usd": 0.04,
    "idle_share": 0.25, "hosts_usd": 0.01, "host_price_per_hour": 0.12, "host_price_source": "given" }
}
"#;

    fn write_fake_report(dir: &Path) {
        let jobs = format!(
            "{}\n\
             1,1,r,host-0,0,1,false,0.000,0.000,3.000,3.000,60.000,3.000,0.000,2.000,1.000,0.000,3.000,57.000,hit_local,0.000,0.000,0.000,0,0\n\
             2,1,r,host-0,1,1,false,10.000,10.000,55.000,60.000,120.000,45.000,40.000,3.000,2.000,5.000,50.000,65.000,miss_never_uploaded,1.000,0.500,2.000,0,100\n\
             3,2,r,host-0,0,1,false,20.000,20.000,20.000,20.000,200.000,0.000,0.000,0.000,0.000,0.000,0.000,180.000,,0.000,0.000,0.000,0,0\n\
             4,2,r,host-0,1,1,true,30.000,30.000,32.000,32.000,90.000,2.000,0.000,0.000,2.000,0.000,2.000,58.000,hit_remote,0.000,1.000,0.000,100,0\n",
            crate::report::jobs_csv::COLUMNS.join(",")
        );
        let mut timeline = crate::report::timeline::COLUMNS.join(",");
        timeline.push('\n');
        for m in 0..5u32 {
            let _ = writeln!(
                timeline,
                "{m},{},{}.500,2,1.000,2,1,1,1,0.500,0.250,{}.000,0.000",
                m * 60,
                m % 2,
                m % 3
            );
        }
        let machines = format!(
            "{}\n\
             0,r,t2.medium,ap-northeast-2,spot,0.000,30.000,250.000,260.000,too many idle machines,2,200.000,260,0.001\n\
             1,r,t2.medium,ap-northeast-2,spot,10.000,40.000,,300.000,,2,120.000,290,0.002\n",
            crate::cloud::ec2::COLUMNS.join(",")
        );
        std::fs::write(dir.join("jobs.csv"), jobs).unwrap();
        std::fs::write(dir.join("timeline.csv"), timeline).unwrap();
        std::fs::write(dir.join("machines.csv"), machines).unwrap();
        std::fs::write(dir.join("summary.json"), SUMMARY_JSON).unwrap();
    }

    fn summary_value() -> Value {
        serde_json::from_str(SUMMARY_JSON).unwrap()
    }

    /// Checks that hold for any report page.
    pub(crate) fn assert_self_contained(html: &str, min_svgs: usize) {
        assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..40.min(html.len())]);
        let without_ns = html.replace("http://www.w3.org/2000/svg", "");
        assert!(!without_ns.contains("http://"), "the page references the network");
        assert!(!without_ns.contains("https://"), "the page references the network");
        for banned in ["<script", "<link", "src=", "@import", "url("] {
            assert!(!html.contains(banned), "the page has `{banned}`");
        }
        let opens = html.matches("<svg").count();
        assert!(opens >= min_svgs, "{opens} charts");
        assert_eq!(opens, html.matches("</svg>").count(), "unbalanced <svg>");
        // Every chart is closed before the next opens.
        let mut depth = 0i32;
        let mut rest = html;
        while let Some(i) = rest.find("svg") {
            let before = &rest[..i];
            if before.ends_with("</") {
                depth -= 1;
            } else if before.ends_with('<') {
                depth += 1;
            }
            assert!((0..=1).contains(&depth), "nested or stray svg");
            rest = &rest[i + 3..];
        }
        assert_eq!(depth, 0);
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn renders_a_self_contained_page() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        write_run_report_from_value(dir.path(), &summary_value()).unwrap();
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert_self_contained(&html, 5);
        assert!(html.contains("43.2 s"), "the p95 figure");
        assert!(html.contains("tiny &lt;test&gt;"), "the scenario name, escaped");
        assert!(html.contains("sim run scenarios/tiny.toml --seed 7"));
        assert!(html.contains("Machines by state"));
        assert!(html.contains("too many idle machines"));
        assert!(html.contains("still running at the end"));
        // Axis descriptions with units.
        for unit in
            ["seconds", "share of job runs", "minutes since start", "jobs", "machines", "USD"]
        {
            assert!(html.contains(unit), "axis `{unit}`");
        }
        // The cost split: busy $0.03, idle $0.01, hosts $0.01.
        assert!(html.contains("$0.03"));
    }

    #[test]
    fn the_page_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        write_run_report_from_value(dir.path(), &summary_value()).unwrap();
        let first = std::fs::read(dir.path().join("report.html")).unwrap();
        write_run_report_from_value(dir.path(), &summary_value()).unwrap();
        let second = std::fs::read(dir.path().join("report.html")).unwrap();
        assert!(first == second, "two renderings differ");
    }

    #[test]
    fn no_machines_no_machine_chart() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        std::fs::remove_file(dir.path().join("machines.csv")).unwrap();
        let mut timeline = crate::report::timeline::COLUMNS.join(",");
        timeline.push_str("\n0,0,0.000,0,1.000,1,1,1,0,0.000,0.000,0.000,0.000\n");
        std::fs::write(dir.path().join("timeline.csv"), timeline).unwrap();
        let mut s = summary_value();
        s["machines"]["created"] = 0.into();
        write_run_report_from_value(dir.path(), &s).unwrap();
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert_self_contained(&html, 4);
        assert!(!html.contains("Machines by state"));
    }

    #[test]
    fn empty_csvs_still_render() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        let header = |cols: &[&str]| format!("{}\n", cols.join(","));
        std::fs::write(dir.path().join("jobs.csv"), header(&crate::report::jobs_csv::COLUMNS))
            .unwrap();
        std::fs::write(dir.path().join("timeline.csv"), header(&crate::report::timeline::COLUMNS))
            .unwrap();
        std::fs::write(dir.path().join("machines.csv"), header(&crate::cloud::ec2::COLUMNS))
            .unwrap();
        write_run_report_from_value(dir.path(), &summary_value()).unwrap();
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert_self_contained(&html, 4);
        assert!(html.contains("no job runs in jobs.csv"));
    }

    #[test]
    fn histograms_hold_long_waits() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        let jobs = read_jobs(&dir.path().join("jobs.csv")).unwrap();
        assert_eq!(jobs.pending.len(), 4);
        assert_eq!(jobs.to_script.len(), 3, "the failed run is left out");
        let max = jobs.pending.max();
        assert!((44_950..=45_050).contains(&max), "{max}");
        assert!((49_950..=50_050).contains(&jobs.to_script.max()));
        assert_eq!(jobs.pending.value_at_quantile(0.0), 0);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        std::fs::remove_file(dir.path().join("jobs.csv")).unwrap();
        let e = write_run_report_from_value(dir.path(), &summary_value()).unwrap_err();
        assert!(e.to_string().contains("jobs.csv"), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);

        write_fake_report(dir.path());
        let bad = format!("{}\nx,1,r\n", crate::report::jobs_csv::COLUMNS.join(","));
        std::fs::write(dir.path().join("jobs.csv"), bad).unwrap();
        let e = write_run_report_from_value(dir.path(), &summary_value()).unwrap_err();
        assert!(e.to_string().contains("jobs.csv"), "{e}");
    }

    #[test]
    fn long_timelines_are_downsampled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.csv");
        let mut text = crate::report::timeline::COLUMNS.join(",");
        text.push('\n');
        let minutes = 10_000u64;
        for m in 0..minutes {
            let pending_max = if m == 7_777 { 99 } else { 1 };
            let _ = writeln!(
                text,
                "{m},{},1.000,{pending_max},2.000,2,0,0,0,0.000,0.000,0.000,0.000",
                m * 60
            );
        }
        std::fs::write(&path, text).unwrap();
        let t = read_timeline(&path).unwrap();
        assert!(t.buckets.len() <= MAX_POINTS && t.buckets.len() >= MAX_POINTS / 2);
        assert_eq!(t.width, 8);
        assert_eq!(t.buckets.iter().map(|b| b.minutes).sum::<u64>(), minutes);
        assert!(t.buckets.iter().all(|b| (b.avg(0) - 1.0).abs() < 1e-12));
        assert_eq!(t.buckets.iter().map(|b| b.peaks[0]).fold(0.0, f64::max), 99.0);
        assert!(!t.any_machine);
    }

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

    #[test]
    fn renders_a_real_run() {
        let dir = tempfile::tempdir().unwrap();
        let scenario =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/seed-autoscale-spot.toml");
        let opts = crate::run::RunOptions {
            out: Some(dir.path().to_path_buf()),
            ..crate::run::RunOptions::default()
        };
        let output = crate::run::run_file(&scenario, &opts).unwrap();
        write_run_report(dir.path(), &output.summary).unwrap();
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert_self_contained(&html, 5);
        assert!(html.contains(&fmt_s(output.summary.pending.p95_s)));
        if let Some(keep) = std::env::var_os("FLEETSIM_KEEP_REPORT") {
            std::fs::copy(dir.path().join("report.html"), keep).unwrap();
        }
    }

    /// Screenshots the page with headless Chromium when it is installed (it is not installed
    /// by the test; without it the test passes with a note).
    #[test]
    fn screenshot_with_chromium() {
        let chromium = Path::new("/usr/bin/chromium");
        if !chromium.exists() {
            eprintln!("note: /usr/bin/chromium is absent; screenshot check skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        write_fake_report(dir.path());
        write_run_report_from_value(dir.path(), &summary_value()).unwrap();
        let shot = dir.path().join("shot.png");
        let profile = dir.path().join("profile");
        let mut child = std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg("--window-size=1000,1400")
            .arg(format!("file://{}", dir.path().join("report.html").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // At most two minutes, then give up (counting sleeps: no clock here).
        let mut status = None;
        for _ in 0..1200 {
            if let Some(s) = child.try_wait().unwrap() {
                status = Some(s);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within two minutes");
        }
        if let Some(keep) = std::env::var_os("FLEETSIM_KEEP_SHOT") {
            std::fs::copy(&shot, keep).unwrap();
        }
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "screenshot of {size} bytes");
    }
}
