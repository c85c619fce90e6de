//! Reports of a run: `summary.json` (and its table on stdout), `jobs.csv`, `timeline.csv`.
//! Everything is written in a fixed order with fixed formatting, so the same scenario and
//! seed give byte-identical files.

pub mod csv_line;
pub mod html;
pub mod jobs_csv;
pub mod level_areas;
pub mod observer;
pub mod page_stats;
pub mod pending;
pub mod summarize;
pub mod summary;
pub mod sweep_html;
pub mod timeline;
