//! Work moved off the engine's thread during `sim run`: the trace is parsed on one thread
//! ([`TraceReadAhead`]) and the finished jobs are recorded and formatted, and the streamed
//! report files written, on another ([`ReportThread`]), while the engine runs on the caller's.
//!
//! Why: on a long trace the engine is the larger part of a run, but parsing the trace CSV and
//! formatting and writing `jobs.csv` and `timeline.csv` are most of the rest, and none of it
//! needs the fleet. Each helper does exactly what the one-thread path does, in the same order
//! on the same data, so every report is byte-identical; the threads only run it beside the
//! engine.
//!
//! Work is handed over in batches through bounded channels, and the batches come back to
//! be reused, so memory stays flat in the length of the trace and nothing is allocated per
//! job. The trace reader fills a fixed pool of batches (it waits for the engine to give one
//! back). The engine never waits for the report thread to give a batch back: it takes a new
//! one when none has come back yet, and waits only when the channel is full, so the batches
//! in existence stay bounded by the channel's capacity plus the ones in hand (on a busy
//! machine the report thread may be scheduled late, and the engine should not stop for it). A helper that finds its partner gone (the run
//! stopped early) simply stops; the engine side joins its thread when it is dropped, so
//! everything handed over is written before the run returns, as the buffered writers of the
//! one-thread path flush when they are dropped.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use fleetsim_core::JobRecord;

use crate::input_error::InputError;
use crate::report::observer::{ReportFile, WrittenJobs};
use crate::report::timeline::{MinuteValues, TimelineCsv, TimelineRows};
use crate::trace::{IdSet, TraceReader, TraceRecord};

/// Trace rows per batch handed from the parser thread to the engine.
const RECORDS_PER_BATCH: usize = 512;
/// Batches of trace rows in existence: in the channel, being filled or being read.
const RECORD_BATCHES: usize = 4;
/// Finished jobs, or rows of `timeline.csv`, per batch handed to the report thread.
const ITEMS_PER_BATCH: usize = 1024;
/// Batches of each kind made in advance for the report thread (more are made if it lags).
const BATCHES_AHEAD: usize = 4;

/// Joins a helper thread, passing its panic on.
fn join<T>(handle: JoinHandle<T>) -> T {
    handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

// ---------------------------------------------------------------------------------------
// The trace, parsed ahead on its own thread
// ---------------------------------------------------------------------------------------

/// Rows parsed by the reader thread, and what followed them.
struct RecordBatch {
    /// Records; only the first `filled` are this batch's (the rest are spare buffers).
    records: Vec<TraceRecord>,
    filled: usize,
    /// `None`: more rows follow. `Some(Ok(()))`: the trace ends after these rows.
    /// `Some(Err(_))`: the row after these failed to read; the reader stopped there.
    end: Option<Result<(), InputError>>,
}

/// A [`TraceReader`] running on its own thread, a few batches of rows ahead of the engine.
///
/// It yields exactly the rows, and stops at exactly the error, that calling
/// [`TraceReader::read_next`] in a loop would: the rows before a bad one come out first, and
/// the bad row's error comes out when the engine asks for that row. Unlike `read_next` it does
/// not go on after an error (the run stops at the first one).
pub struct TraceReadAhead {
    full: Receiver<RecordBatch>,
    spare: Sender<RecordBatch>,
    current: Option<RecordBatch>,
    /// Index in `current` of the next record to hand out.
    next: usize,
    /// The ids of the rows handed out (what the reader had seen, in the one-thread path), when
    /// they are asked about (a trace with pipelines).
    seen: Option<IdSet>,
    handle: Option<JoinHandle<()>>,
}

impl TraceReadAhead {
    /// Moves `reader` to a new thread that starts reading at once. With `track_ids`,
    /// [`has_seen`](Self::has_seen) answers.
    pub fn start<R: Read + Send + 'static>(
        reader: TraceReader<R>,
        track_ids: bool,
    ) -> TraceReadAhead {
        let (full_tx, full) = sync_channel(RECORD_BATCHES);
        let (spare, spare_rx) = channel();
        for _ in 0..RECORD_BATCHES {
            let records = (0..RECORDS_PER_BATCH).map(|_| TraceRecord::new()).collect();
            let batch = RecordBatch { records, filled: 0, end: None };
            spare.send(batch).expect("the receiver is alive");
        }
        let handle = std::thread::Builder::new()
            .name("trace reader".into())
            .spawn(move || read_batches(reader, &spare_rx, &full_tx))
            .expect("cannot start the trace reader thread");
        TraceReadAhead {
            full,
            spare,
            current: None,
            next: 0,
            seen: track_ids.then(IdSet::new),
            handle: Some(handle),
        }
    }

    /// The next row, `None` at the end of the trace, or the error of the next row. After an
    /// error it returns `None`.
    pub fn next_record(&mut self) -> Result<Option<&TraceRecord>, InputError> {
        loop {
            let Some(batch) = &mut self.current else {
                self.receive();
                continue;
            };
            if self.next < batch.filled {
                break;
            }
            match batch.end.take() {
                None => self.receive(),
                // The end stays; an error is handed out once, then the trace ends there.
                Some(end) => {
                    batch.end = Some(Ok(()));
                    return end.map(|()| None);
                }
            }
        }
        let batch = self.current.as_ref().expect("a batch with a row");
        let record = &batch.records[self.next];
        self.next += 1;
        if let Some(seen) = &mut self.seen {
            seen.insert(record.job_id);
        }
        Ok(Some(record))
    }

    /// Hands out the last row again on the next call of [`next_record`](Self::next_record).
    pub fn unread(&mut self) {
        assert!(self.next > 0, "unread without a row read");
        self.next -= 1;
    }

    /// Whether a row handed out so far had the job id `id` (as [`TraceReader::has_seen`]).
    /// Panics unless started with `track_ids`.
    pub fn has_seen(&self, id: u64) -> bool {
        self.seen.as_ref().expect("started with track_ids").contains(id)
    }

    /// Gives the current batch back and waits for the next one.
    fn receive(&mut self) {
        if let Some(batch) = self.current.take() {
            // The reader thread may have stopped (it sent the end); nothing to give back then.
            let _ = self.spare.send(batch);
        }
        match self.full.recv() {
            Ok(batch) => {
                self.current = Some(batch);
                self.next = 0;
            }
            // The reader sends an end before it stops; its channel closes early only if it
            // panicked.
            Err(_) => {
                if let Some(handle) = self.handle.take() {
                    join(handle);
                }
                panic!("the trace reader thread stopped without an end");
            }
        }
    }
}

impl Drop for TraceReadAhead {
    fn drop(&mut self) {
        // Closing the channels stops the reader at its next hand-over.
        let (_, closed) = channel();
        drop(std::mem::replace(&mut self.full, closed));
        let (closed, _) = channel();
        drop(std::mem::replace(&mut self.spare, closed));
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
            && !std::thread::panicking()
        {
            panic!("the trace reader thread panicked");
        }
    }
}

/// The reader thread: fills spare batches until the trace ends, a row fails, or the engine
/// side goes away.
fn read_batches<R: Read>(
    mut reader: TraceReader<R>,
    spare: &Receiver<RecordBatch>,
    full: &SyncSender<RecordBatch>,
) {
    while let Ok(mut batch) = spare.recv() {
        batch.filled = 0;
        batch.end = None;
        while batch.filled < batch.records.len() {
            match reader.read_next(&mut batch.records[batch.filled]) {
                Ok(true) => batch.filled += 1,
                Ok(false) => batch.end = Some(Ok(())),
                Err(error) => batch.end = Some(Err(error)),
            }
            if batch.end.is_some() {
                break;
            }
        }
        let last = batch.end.is_some();
        if full.send(batch).is_err() || last {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Finished jobs and timeline rows, formatted and written on their own thread
// ---------------------------------------------------------------------------------------

/// A timeline row: the minute and its values.
type Row = (u64, MinuteValues);

/// What the engine side hands to the report thread, in the order it happened.
enum Work {
    /// Jobs finished, in finishing order.
    Jobs(Vec<JobRecord>),
    /// The next rows of `timeline.csv`, to format.
    Timeline(Vec<Row>),
}

/// Items handed to the report thread in batches of [`ITEMS_PER_BATCH`], in order, wrapped
/// as `wrap` says. The thread gives each batch back emptied, to be filled again; when none
/// has come back yet a new one is made, so the engine never waits for the thread to catch
/// up, only for room in the channel. Dropping it hands over the last items.
struct Batches<T> {
    batch: Vec<T>,
    work: SyncSender<Work>,
    spare: Receiver<Vec<T>>,
    wrap: fn(Vec<T>) -> Work,
}

impl<T> Batches<T> {
    /// Batches sent on `work`; returns it and where the thread gives batches back, with a
    /// pool of [`BATCHES_AHEAD`] in it.
    fn new(work: SyncSender<Work>, wrap: fn(Vec<T>) -> Work) -> (Batches<T>, Sender<Vec<T>>) {
        let (returns, spare) = channel();
        for _ in 0..BATCHES_AHEAD {
            returns.send(Vec::with_capacity(ITEMS_PER_BATCH)).expect("the receiver is alive");
        }
        let batch = Vec::with_capacity(ITEMS_PER_BATCH);
        (Batches { batch, work, spare, wrap }, returns)
    }

    fn push(&mut self, item: T) -> io::Result<()> {
        self.batch.push(item);
        if self.batch.len() >= ITEMS_PER_BATCH {
            self.hand_over()?;
        }
        Ok(())
    }

    fn hand_over(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(ITEMS_PER_BATCH));
        let batch = std::mem::replace(&mut self.batch, next);
        // A closed channel means the thread panicked; joining it passes the panic on.
        self.work.send((self.wrap)(batch)).map_err(|_| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the report writer thread stopped")
        })
    }
}

impl<T> Drop for Batches<T> {
    fn drop(&mut self) {
        let _ = self.hand_over();
    }
}

/// What the report thread gives back when the run ends.
pub struct ReportsDone {
    /// The finished jobs' statistics and `jobs.csv` (not yet flushed).
    pub jobs: WrittenJobs<ReportFile>,
    /// `timeline.csv` (not yet flushed).
    pub timeline: TimelineCsv<ReportFile>,
    /// The first error writing either file.
    pub error: Option<io::Error>,
}

/// [`WrittenJobs`] on its own thread: the engine side collects finished jobs into batches
/// and the thread records them (statistics, `jobs.csv` rows) in the same order. It also formats
/// and writes `timeline.csv`, whose rows come through a [`TimelineSender`] made by
/// [`timeline_sender`](Self::timeline_sender).
pub struct ReportThread {
    /// Dropped (the last jobs handed over, the channel let go) before the thread is joined.
    jobs: Option<Batches<JobRecord>>,
    /// The timeline's rows, until `timeline_sender` takes them.
    rows: Option<Batches<Row>>,
    handle: Option<JoinHandle<ReportsDone>>,
}

impl ReportThread {
    /// Starts the thread, which records jobs into `jobs` and writes timeline rows to
    /// `timeline`.
    pub fn start(jobs: WrittenJobs<ReportFile>, timeline: TimelineCsv<ReportFile>) -> ReportThread {
        let (work, work_rx) = sync_channel(2 * BATCHES_AHEAD);
        let (job_batches, job_returns) = Batches::new(work.clone(), Work::Jobs);
        let (row_batches, row_returns) = Batches::new(work, Work::Timeline);
        let returns = (job_returns, row_returns);
        let handle = std::thread::Builder::new()
            .name("report writer".into())
            .spawn(move || write_reports(jobs, timeline, &work_rx, &returns))
            .expect("cannot start the report writer thread");
        ReportThread { jobs: Some(job_batches), rows: Some(row_batches), handle: Some(handle) }
    }

    /// Where the timeline hands its rows (once).
    pub fn timeline_sender(&mut self) -> TimelineSender {
        TimelineSender { rows: self.rows.take().expect("one timeline sender") }
    }

    /// Hands a finished job to the thread; an error if the thread has stopped (it panicked,
    /// which [`finish`](Self::finish) passes on).
    pub fn push(&mut self, record: &JobRecord) -> io::Result<()> {
        self.jobs.as_mut().expect("jobs are handed over until the end").push(*record)
    }

    /// Hands over the last jobs, waits for the thread to record everything handed over and
    /// returns its files and statistics. The [`TimelineSender`] must be dropped first.
    pub fn finish(mut self) -> ReportsDone {
        self.jobs = None;
        self.rows = None;
        let handle = self.handle.take().expect("the thread is joined once");
        join(handle)
    }
}

impl Drop for ReportThread {
    fn drop(&mut self) {
        // The run stopped early: what was handed over is still written (as the one-thread
        // path's buffered writers flush when dropped), then the thread ends.
        self.jobs = None;
        self.rows = None;
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
            && !std::thread::panicking()
        {
            panic!("the report writer thread panicked");
        }
    }
}

/// The report thread: applies the work in order until the engine side hangs up, giving
/// each batch back emptied.
fn write_reports(
    mut jobs: WrittenJobs<ReportFile>,
    mut timeline: TimelineCsv<ReportFile>,
    work: &Receiver<Work>,
    (job_returns, row_returns): &(Sender<Vec<JobRecord>>, Sender<Vec<Row>>),
) -> ReportsDone {
    let mut error = None;
    let mut failed = |written: io::Result<()>| {
        if let Err(e) = written {
            error.get_or_insert(e);
        }
    };
    for item in work {
        match item {
            Work::Jobs(mut batch) => {
                failed(jobs.record_all(batch.iter()));
                batch.clear();
                let _ = job_returns.send(batch);
            }
            Work::Timeline(mut rows) => {
                for &(minute, values) in &rows {
                    failed(timeline.row(minute, values));
                }
                rows.clear();
                let _ = row_returns.send(rows);
            }
        }
    }
    ReportsDone { jobs, timeline, error }
}

/// The timeline's rows, handed to the report thread in batches, in order; dropping it hands
/// over the last ones.
pub struct TimelineSender {
    rows: Batches<Row>,
}

impl TimelineRows for TimelineSender {
    fn row(&mut self, minute: u64, values: MinuteValues) -> io::Result<()> {
        self.rows.push((minute, values))
    }
}
