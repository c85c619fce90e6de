//! What `report.html` draws from `jobs.csv` and `timeline.csv`, gathered row by row.
//!
//! The same accumulators are fed two ways: by the writers while the run streams the rows out
//! ([`crate::report::jobs_csv::JobsCsv`], [`crate::report::timeline::Timeline`]), so a run's
//! page needs no second pass over hundreds of megabytes of CSV (issue 15: on the
//! million-job trace that pass was a sixth of the run); and by the page's CSV readers, for
//! report folders written before or elsewhere (`sim report`). Every value goes in exactly as
//! the file gives it back: both files hold exact thousandths, and `x as f64 / 1000.0` is the
//! same double as parsing `x / 1000` written with three decimals (both are the double nearest
//! to the same rational), so both ways draw byte-identical pages (tested).

use std::io;

use hdrhistogram::Histogram;

/// Most points per time series on the charts.
pub const MAX_POINTS: usize = 2000;

/// Longest time the histograms hold (1000 days in ms); longer ones count as this.
const HISTOGRAM_MAX_MS: u64 = 1000 * 86_400_000;

/// A fixed-range histogram of milliseconds, 3 significant digits (like the summary's), so
/// that `saturating_record` never clamps a real value.
pub fn new_histogram() -> io::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_MS, 3)
        .map_err(|e| io::Error::other(format!("histogram: {e}")))
}

/// What the page needs from `jobs.csv`: two histograms, the same size for a thousand jobs or
/// ten million.
#[derive(Debug, Clone)]
pub struct JobStats {
    /// Pending time of every job run, in ms.
    pub pending: Histogram<u64>,
    /// Queued → script start of the runs that did not fail, in ms.
    pub to_script: Histogram<u64>,
}

impl JobStats {
    /// No job yet.
    pub fn new() -> io::Result<JobStats> {
        Ok(JobStats { pending: new_histogram()?, to_script: new_histogram()? })
    }

    /// One job run: its pending time, and its queued → script start unless it failed.
    pub fn add(&mut self, pending_ms: u64, to_script_ms: Option<u64>) {
        self.pending.saturating_record(pending_ms);
        if let Some(t) = to_script_ms {
            self.to_script.saturating_record(t);
        }
    }
}

/// One bucket of whole minutes of `timeline.csv`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bucket {
    /// `time_s` of the bucket's first minute.
    pub start_s: f64,
    /// Minutes in the bucket.
    pub minutes: u64,
    /// Sums over the minutes of pending, running, creating, idle, busy, removing averages.
    pub sums: [f64; 6],
    /// Peaks of pending and running.
    pub peaks: [f64; 2],
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
    pub fn mid_h(&self) -> f64 {
        (self.start_s + 30.0 * self.minutes as f64) / 3600.0
    }

    /// The average of series `i` (in [`Bucket::sums`] order) over the bucket's minutes.
    pub fn avg(&self, i: usize) -> f64 {
        if self.minutes == 0 { 0.0 } else { self.sums[i] / self.minutes as f64 }
    }
}

/// `timeline.csv` downsampled to at most [`MAX_POINTS`] buckets: buckets are whole numbers
/// of minutes that double in width (neighbours merged, averages averaged and peaks kept)
/// whenever there would be more.
#[derive(Debug, Clone, Default)]
pub struct TimelineStats {
    /// The buckets, oldest first.
    pub buckets: Vec<Bucket>,
    /// Minutes per bucket (a power of two).
    pub width: u64,
    /// Whether any machine column was ever above zero.
    pub any_machine: bool,
    /// Whether the file has the machine columns at all.
    pub has_machine_columns: bool,
    /// Minutes added so far.
    rows: u64,
    /// The last row added, repeated over a gap in `minute`.
    previous: Option<Bucket>,
}

impl TimelineStats {
    /// No row yet, from a file with (or without) the machine columns.
    pub fn new(has_machine_columns: bool) -> TimelineStats {
        TimelineStats { width: 1, has_machine_columns, ..TimelineStats::default() }
    }

    /// One row of `timeline.csv` (its `minute` if the file has the column, its `time_s`, the
    /// six averages and the two peaks). A gap in `minute` is a compressed idle stretch: its
    /// minutes repeat the row before.
    pub fn add_row(&mut self, minute: Option<u64>, time_s: f64, sums: [f64; 6], peaks: [f64; 2]) {
        if let (Some(at), Some(prev)) = (minute, self.previous) {
            while self.rows < at {
                self.add_minute(Bucket { start_s: self.rows as f64 * 60.0, ..prev });
                self.rows += 1;
            }
        }
        let row = Bucket { start_s: time_s, minutes: 1, sums, peaks };
        self.any_machine |= sums[2..].iter().any(|&x| x > 0.0);
        self.add_minute(row);
        self.previous = Some(row);
        self.rows += 1;
    }

    /// Adds the next minute (number `self.rows`), halving the resolution when the buckets
    /// are full.
    fn add_minute(&mut self, minute: Bucket) {
        let mut index = (self.rows / self.width) as usize;
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
            index = (self.rows / self.width) as usize;
        }
        match self.buckets.get_mut(index) {
            Some(bucket) => *bucket = bucket.merge(minute),
            None => self.buckets.push(minute),
        }
    }
}
