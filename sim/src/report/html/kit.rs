//! The kit the report pages share (the run's `report.html`, `compare.html`, `sweep.html`):
//! HTML escaping and the number formats, the inline style sheet and the page head, figures,
//! and the plotters pieces (SVG charts drawn into strings, text styles and the palette,
//! legends, the bar chart on its category axis [`Slots`]).

use std::fmt::Write as _;
use std::io;
use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

pub(crate) const FONT: &str = "sans-serif";
pub(crate) const BLUE_C: RGBColor = RGBColor(31, 119, 180);
pub(super) const ORANGE_C: RGBColor = RGBColor(230, 115, 0);
pub(super) const GREEN_C: RGBColor = RGBColor(44, 160, 44);
pub(crate) const RED_C: RGBColor = RGBColor(214, 39, 40);
pub(crate) const GRAY_C: RGBColor = RGBColor(127, 127, 127);
pub(super) const LIGHT_C: RGBColor = RGBColor(158, 202, 225);

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

pub(super) fn text(v: &Value, path: &str) -> Option<String> {
    match at(v, path)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What a value the summary does not have is shown as.
pub(crate) const MISSING: &str = "—";

pub(super) fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| MISSING.to_owned(), f)
}

/// Seconds with one decimal, as on stdout.
pub fn fmt_s(x: f64) -> String {
    format!("{x:.1} s")
}

/// Dollars with two decimals.
pub(crate) fn fmt_usd(x: f64) -> String {
    format!("${x:.2}")
}

pub(super) fn fmt_pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

pub(super) fn fmt_count(x: f64) -> String {
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

pub(super) fn legend_marker(color: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.filled())
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

/// A category axis: `n` slots of width 1, labelled at their middles.
#[derive(Debug, Clone)]
pub(super) struct Slots(usize);

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

/// A chart (or any markup) and its caption.
pub(crate) fn figure(out: &mut String, svg: &str, caption: &str) {
    let _ = write!(out, "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n", esc(caption));
}
