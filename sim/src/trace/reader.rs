//! [`TraceReader`]: reads a trace one row at a time into a caller-owned [`TraceRecord`].
//! The format and the streaming design are described in the [module docs](super).

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use csv::ByteRecord;
use jiff::Timestamp;

use super::id_set::IdSet;
use super::record::{
    CachePolicy, CacheWhen, MAX_TRACE_MS, MAX_TRACE_YEARS, TraceRecord, check_instant, parse_bool,
    parse_seconds_ms, parse_size_bytes, parse_u64, unix_time_hint,
};
use crate::input_error::InputError;

/// Every column a trace may have, in the order of the documentation.
pub const COLUMNS: [&str; 21] = [
    "job_id",
    "pipeline_id",
    "project_id",
    "name",
    "stage",
    "needs",
    "created_at",
    "duration",
    "tags",
    "cache_key",
    "cache_fallback_keys",
    "cache_policy",
    "cache_when",
    "protected",
    "cache_size",
    "cache_changed",
    "cache_miss_penalty",
    "image",
    "image_size",
    "retry",
    "status",
];

/// The columns every trace must have.
pub const REQUIRED_COLUMNS: [&str; 3] = ["job_id", "created_at", "duration"];

/// A column, as an index into [`COLUMNS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    JobId,
    PipelineId,
    ProjectId,
    Name,
    Stage,
    Needs,
    CreatedAt,
    Duration,
    Tags,
    CacheKey,
    CacheFallbackKeys,
    CachePolicy,
    CacheWhen,
    Protected,
    CacheSize,
    CacheChanged,
    CacheMissPenalty,
    Image,
    ImageSize,
    Retry,
    Status,
}

impl Column {
    fn name(self) -> &'static str {
        COLUMNS[self as usize]
    }
}

/// How the trace writes `created_at`; fixed by its first row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeForm {
    /// Decimal seconds from the trace start.
    Seconds,
    /// RFC 3339 instants, relative to the first row's.
    Rfc3339,
}

impl TimeForm {
    fn describe(self) -> &'static str {
        match self {
            TimeForm::Seconds => "seconds from the trace start",
            TimeForm::Rfc3339 => "RFC 3339 times",
        }
    }
}

/// A streaming reader of a CSV job trace.
///
/// It holds one CSV row buffer, the column layout, the previous row's time and an [`IdSet`] of
/// the job ids seen, never the rows themselves. [`read_next`](Self::read_next) fills a
/// caller-owned [`TraceRecord`], reusing its buffers.
///
/// ```no_run
/// # use fleetsim::trace::{TraceReader, TraceRecord};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut reader = TraceReader::open("scenarios/traces/team-week.csv")?;
/// let mut job = TraceRecord::new();
/// while reader.read_next(&mut job)? {
///     // use `job`; it is overwritten by the next call
/// }
/// for warning in reader.warnings() {
///     eprintln!("warning: {warning}");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TraceReader<R: Read = File> {
    csv: csv::Reader<LineTracker<R>>,
    /// The current row; reused for every row.
    row: ByteRecord,
    /// The line of the first data row when the constructor has read it ahead (to learn the
    /// origin) and `read_next` has not consumed it yet.
    pending_line: Option<usize>,
    parser: RowParser,
    warnings: Vec<String>,
}

/// The per-trace state that turns a CSV row into a [`TraceRecord`]; separate from the CSV
/// reader so that a row can be borrowed while the state is updated.
#[derive(Debug)]
struct RowParser {
    path: PathBuf,
    /// For each of [`COLUMNS`], its field index in the file.
    fields: [Option<usize>; COLUMNS.len()],
    form: Option<TimeForm>,
    origin: Option<Timestamp>,
    /// The last accepted row's `created_at` (ms), raw text and line.
    previous_ms: u64,
    previous_raw: String,
    previous_line: usize,
    ids: IdSet,
    /// Strings dropped from the record's lists, kept for the next longer list.
    spare_strings: Vec<String>,
}

/// Passes bytes through to the CSV parser and remembers the offsets of the `\n` bytes it has
/// not yet been asked about. The `csv` crate's own line of a record is where it began
/// scanning, which is off by one for CRLF files and ignores skipped blank lines; with the
/// byte offset where a record ended, the reader can tell whether that record's terminator was
/// a `\n` and so compute the line the record starts on exactly. Only the newlines in the
/// parser's read-ahead buffer (8 KiB) are held.
#[derive(Debug)]
struct LineTracker<R> {
    inner: R,
    offset: u64,
    newlines: VecDeque<u64>,
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, &byte) in buf[..n].iter().enumerate() {
            if byte == b'\n' {
                self.newlines.push_back(self.offset + i as u64);
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> LineTracker<R> {
    /// Whether the byte at `offset` is a `\n`; forgets every newline up to `offset`, so
    /// offsets must be asked in increasing order.
    fn take_newline_at(&mut self, offset: u64) -> bool {
        let mut found = false;
        while let Some(&front) = self.newlines.front()
            && front <= offset
        {
            found = front == offset;
            self.newlines.pop_front();
        }
        found
    }
}

impl TraceReader<File> {
    /// Opens the trace at `path` and reads its header (and looks ahead at the first row to
    /// learn the origin of an RFC 3339 trace).
    ///
    /// Errors if the file cannot be opened, is empty, or its header lacks a required column
    /// or repeats one. Unknown columns are ignored with a [warning](Self::warnings).
    pub fn open(path: impl AsRef<Path>) -> Result<TraceReader, InputError> {
        let path = path.as_ref();
        let file = crate::input_file::open_regular(path, "the trace")?;
        TraceReader::from_reader(file, path)
    }
}

impl<R: Read> TraceReader<R> {
    /// Reads a trace from `reader` (a file, a byte slice in tests, …); errors and warnings
    /// name `display_path`. Checks the header as [`open`](TraceReader::open) does.
    pub fn from_reader(reader: R, display_path: impl AsRef<Path>) -> Result<Self, InputError> {
        let tracker = LineTracker { inner: reader, offset: 0, newlines: VecDeque::new() };
        // The header is read as an ordinary row, so that rows and header count lines alike.
        let csv = csv::ReaderBuilder::new().has_headers(false).from_reader(tracker);
        let mut reader = TraceReader {
            csv,
            row: ByteRecord::new(),
            pending_line: None,
            parser: RowParser {
                path: display_path.as_ref().to_path_buf(),
                fields: [None; COLUMNS.len()],
                form: None,
                origin: None,
                previous_ms: 0,
                previous_raw: String::new(),
                previous_line: 0,
                ids: IdSet::new(),
                spare_strings: Vec::new(),
            },
            warnings: Vec::new(),
        };
        let header_line = reader.read_row()?;
        reader.read_header(header_line.unwrap_or(1))?;
        // Look ahead at the first row so that `origin()` is known before the first
        // `read_next`. Its errors, if any, are reported by that `read_next`.
        reader.pending_line = reader.read_row()?;
        if reader.pending_line.is_some()
            && let Some(row) = Row::checked(&reader.row)
            && let Ok(instant) = reader.parser.cell(row, Column::CreatedAt).parse()
        {
            reader.parser.origin = Some(instant);
        }
        Ok(reader)
    }

    /// Resolves the column indexes from the header row in `self.row`.
    fn read_header(&mut self, line: usize) -> Result<(), InputError> {
        let path = &self.parser.path;
        if self.row.iter().all(|name| name.trim_ascii().is_empty()) {
            return Err(InputError::file(
                path,
                "the trace is empty: expected a CSV header naming at least job_id, created_at \
                 and duration",
            )
            .at_line(line));
        }
        for (index, name) in self.row.iter().enumerate() {
            let Ok(name) = std::str::from_utf8(name) else {
                return Err(InputError::file(
                    path,
                    format!("the name of column {} is not valid UTF-8", index + 1),
                )
                .at_line(line));
            };
            let name = name.trim();
            match COLUMNS.iter().position(|column| *column == name) {
                Some(column) => {
                    if let Some(first) = self.parser.fields[column] {
                        return Err(InputError::file(
                            path,
                            format!(
                                "column `{name}` appears twice in the header (columns {} and {})",
                                first + 1,
                                index + 1
                            ),
                        )
                        .at_line(line)
                        .key(name));
                    }
                    self.parser.fields[column] = Some(index);
                }
                None => self.warnings.push(format!(
                    "{}:{line}: unknown column `{name}` (column {}) is ignored; known columns \
                     are {}",
                    path.display(),
                    index + 1,
                    COLUMNS.join(", ")
                )),
            }
        }
        for required in [Column::JobId, Column::CreatedAt, Column::Duration] {
            if self.parser.fields[required as usize].is_none() {
                return Err(InputError::file(
                    path,
                    format!(
                        "the header has no `{}` column; a trace needs at least job_id, \
                         created_at and duration",
                        required.name()
                    ),
                )
                .at_line(line)
                .key(required.name()));
            }
        }
        Ok(())
    }

    /// Reads the next row into `out`, overwriting every field and reusing its buffers.
    /// Returns `Ok(false)` at the end of the trace.
    ///
    /// An error names the file, the line and the column. The bad row is skipped: calling
    /// `read_next` again goes on with the next row, as if the bad row were not there.
    pub fn read_next(&mut self, out: &mut TraceRecord) -> Result<bool, InputError> {
        let line = match self.pending_line.take() {
            Some(line) => line,
            None => match self.read_row()? {
                Some(line) => line,
                None => return Ok(false),
            },
        };
        self.parser.parse(&self.row, line, out)?;
        Ok(true)
    }

    /// For an RFC 3339 trace, the instant of its first row, from which every
    /// [`created_at_ms`](TraceRecord::created_at_ms) counts; `None` for a trace in seconds
    /// (or an empty one). Known as soon as the reader is constructed.
    pub fn origin(&self) -> Option<Timestamp> {
        match self.parser.form {
            Some(TimeForm::Seconds) => None,
            _ => self.parser.origin,
        }
    }

    /// Warnings about the trace so far (unknown columns), each naming the file and line.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The path errors and warnings name.
    pub fn path(&self) -> &Path {
        &self.parser.path
    }

    /// Whether a row read so far (without error) had the job id `id`.
    pub fn has_seen(&self, id: u64) -> bool {
        self.parser.ids.contains(id)
    }

    /// Whether the trace has the column `name` (one of [`COLUMNS`]).
    pub fn has_column(&self, name: &str) -> bool {
        COLUMNS
            .iter()
            .position(|column| *column == name)
            .is_some_and(|index| self.parser.fields[index].is_some())
    }

    /// Reads the next CSV row into `self.row`; returns the line it starts on, or `None` at the
    /// end of the file.
    fn read_row(&mut self) -> Result<Option<usize>, InputError> {
        match self.csv.read_byte_record(&mut self.row) {
            Ok(true) => Ok(Some(self.row_line())),
            Ok(false) => Ok(None),
            Err(error) => {
                let line = match error.kind() {
                    // The parser has read the whole row into `self.row` before checking its length.
                    csv::ErrorKind::UnequalLengths { .. } => Some(self.row_line()),
                    _ => None,
                };
                Err(csv_error(&self.parser.path, &error, line))
            }
        }
    }

    /// The line the row just read starts on: the line it ends on (from the parser's newline
    /// count and whether its terminator was a `\n`) less the newlines inside quoted cells.
    fn row_line(&mut self) -> usize {
        let position = self.csv.position();
        let (end_byte, mut line) = (position.byte(), position.line());
        if end_byte > 0 && self.csv.get_mut().take_newline_at(end_byte - 1) {
            line -= 1;
        }
        let inner_newlines = bytecount_newlines(self.row.as_slice());
        line_number(line).saturating_sub(inner_newlines).max(1)
    }
}

/// The newlines in `bytes` (one `memchr` pass when there are none, as in nearly every row).
fn bytecount_newlines(bytes: &[u8]) -> usize {
    if bytes.contains(&b'\n') { bytes.iter().filter(|&&b| b == b'\n').count() } else { 0 }
}

/// A row whose bytes are UTF-8, checked once: its cells are slices of that one text (a field
/// ends where the CSV parser met an ASCII delimiter or quote, never inside a character), so
/// no cell is checked again (issue 15: checking every cell again was the trace thread's
/// largest single cost).
#[derive(Clone, Copy)]
struct Row<'r> {
    record: &'r ByteRecord,
    text: &'r str,
}

impl<'r> Row<'r> {
    /// The row, if its bytes are UTF-8.
    fn checked(record: &'r ByteRecord) -> Option<Row<'r>> {
        let text = std::str::from_utf8(record.as_slice()).ok()?;
        Some(Row { record, text })
    }
}

impl RowParser {
    /// The trimmed text of `column` in `row`; empty if the trace has no such column.
    fn cell<'r>(&self, row: Row<'r>, column: Column) -> &'r str {
        self.fields[column as usize]
            .and_then(|index| row.record.range(index))
            .and_then(|range| row.text.get(range))
            .map_or("", str::trim)
    }

    /// `row` checked to be UTF-8, else an error naming the first column that is not.
    fn check_utf8<'r>(&self, row: &'r ByteRecord, line: usize) -> Result<Row<'r>, InputError> {
        if let Some(row) = Row::checked(row) {
            return Ok(row);
        }
        for (index, bytes) in row.iter().enumerate() {
            if let Err(error) = std::str::from_utf8(bytes) {
                let message = format!("column {} is not valid UTF-8 ({error})", index + 1);
                return Err(self.cell_error(index, line, message));
            }
        }
        // Not reached: the row's bytes are its fields', and UTF-8 pieces join into UTF-8.
        Err(InputError::file(&self.path, "the row is not valid UTF-8").at_line(line))
    }

    /// A cell that runs over a line break is an unclosed quote: every row up to the next
    /// quote became part of one cell, and those jobs would silently vanish. No trace column
    /// holds a line break (GitLab's job names, tags, keys and images have none), except a
    /// `name` cell, which fleetsim only carries; there a stray quote shows up as a short row.
    fn check_line_breaks(&self, row: &ByteRecord, line: usize) -> Result<(), InputError> {
        if !row.as_slice().contains(&b'\n') {
            return Ok(());
        }
        let name = self.fields[Column::Name as usize];
        for (index, bytes) in row.iter().enumerate() {
            let breaks = bytes.iter().filter(|&&b| b == b'\n').count();
            if breaks == 0 || Some(index) == name {
                continue;
            }
            let message = format!(
                "this cell runs over {} lines (to line {}): a quote opened here is closed only \
                 there, so the rows in between would be read as part of one cell; close the \
                 quote on its own line (a trace cell holds no line break)",
                breaks + 1,
                line + breaks
            );
            return Err(self.cell_error(index, line, message));
        }
        Ok(())
    }

    /// An error in the cell at position `index` of the row at `line`, keyed by its column
    /// when the trace has a known column there.
    fn cell_error(&self, index: usize, line: usize, message: String) -> InputError {
        let error = InputError::file(&self.path, message).at_line(line);
        match self.fields.iter().position(|&field| field == Some(index)) {
            Some(column) => error.key(COLUMNS[column]),
            None => error,
        }
    }

    fn error(&self, line: usize, column: Column, message: impl Into<String>) -> InputError {
        InputError::file(&self.path, message).at_line(line).key(column.name())
    }

    /// Parses `row` into `out`. Only a row without errors changes the parser's state (time
    /// form, previous time, ids seen), so a caller may go on after an error.
    fn parse(
        &mut self,
        row: &ByteRecord,
        line: usize,
        out: &mut TraceRecord,
    ) -> Result<(), InputError> {
        out.line = line;
        let row = self.check_utf8(row, line)?;
        self.check_line_breaks(row.record, line)?;
        let required = |column: Column| {
            let text = self.cell(row, column);
            if text.is_empty() {
                Err(self.error(line, column, format!("`{}` is required but empty", column.name())))
            } else {
                Ok(text)
            }
        };
        let value = |column: Column, result: Result<u64, String>| {
            result.map_err(|message| self.error(line, column, message))
        };

        let job_id_text = required(Column::JobId)?;
        out.job_id = value(Column::JobId, parse_u64(job_id_text))?;
        let created_at_text = required(Column::CreatedAt)?;
        let (form, created_at_ms, instant) = self.parse_created_at(created_at_text, line)?;
        out.created_at_ms = created_at_ms;
        out.duration_ms = value(Column::Duration, parse_seconds_ms(required(Column::Duration)?))?;

        let text = self.cell(row, Column::PipelineId);
        out.pipeline_id =
            if text.is_empty() { None } else { Some(value(Column::PipelineId, parse_u64(text))?) };
        out.project_id = self.optional(row, line, Column::ProjectId, 0, parse_u64)?;
        copy_into(&mut out.name, self.cell(row, Column::Name));
        copy_into(&mut out.stage, self.cell(row, Column::Stage));
        out.needs.clear();
        let needs = self.cell(row, Column::Needs);
        out.needs_given = !needs.is_empty();
        let needs = if needs == "[]" { "" } else { needs };
        for item in list_items(needs) {
            let id = parse_u64(item).map_err(|message| {
                self.error(
                    line,
                    Column::Needs,
                    format!("{message} (needs lists job ids, `;`-separated)"),
                )
            })?;
            out.needs.push(id);
        }
        let tags = self.cell(row, Column::Tags);
        fill_list(&mut out.tags, tags, &mut self.spare_strings);
        copy_into(&mut out.cache_key, self.cell(row, Column::CacheKey));
        let fallback_keys = self.cell(row, Column::CacheFallbackKeys);
        fill_list(&mut out.cache_fallback_keys, fallback_keys, &mut self.spare_strings);
        out.cache_policy =
            self.optional(row, line, Column::CachePolicy, CachePolicy::PullPush, |text| {
                CachePolicy::parse(text)
                    .ok_or_else(|| format!("expected pull-push, pull or push, found `{text}`"))
            })?;
        out.cache_when =
            self.optional(row, line, Column::CacheWhen, CacheWhen::OnSuccess, |text| {
                CacheWhen::parse(text).ok_or_else(|| {
                    format!("expected on_success, on_failure or always, found `{text}`")
                })
            })?;
        out.protected = match self.cell(row, Column::Protected) {
            "" => None,
            text => Some(parse_bool(text).map_err(|m| self.error(line, Column::Protected, m))?),
        };
        out.cache_size_bytes = self.optional(row, line, Column::CacheSize, 0, parse_size_bytes)?;
        out.cache_changed = self.optional(row, line, Column::CacheChanged, true, parse_bool)?;
        out.cache_miss_penalty_ms =
            self.optional(row, line, Column::CacheMissPenalty, 0, parse_seconds_ms)?;
        copy_into(&mut out.image, self.cell(row, Column::Image));
        out.image_size_bytes = self.optional(row, line, Column::ImageSize, 0, parse_size_bytes)?;
        // GitLab refuses `retry: max` above 2 in .gitlab-ci.yml (lib/gitlab/ci/config/entry/
        // retry.rb, `max` in 0..2), so a trace with more is a mistake, not a job.
        out.retry = self.optional(row, line, Column::Retry, 0, |text| match text.parse() {
            Ok(n) if n <= 2 => Ok(n),
            _ => Err(format!(
                "expected 0, 1 or 2 (GitLab's `retry: max` is at most 2), found `{text}`"
            )),
        })?;
        out.script_fails = self.optional(row, line, Column::Status, false, |text| match text {
            "success" => Ok(false),
            "failed" => Ok(true),
            _ => Err(format!("expected success or failed, found `{text}`")),
        })?;

        if self.ids.contains(out.job_id) {
            return Err(self.error(
                line,
                Column::JobId,
                format!("duplicate job_id {}: an earlier row has the same id", out.job_id),
            ));
        }
        // The row is good: commit it.
        self.ids.insert(out.job_id);
        self.form = Some(form);
        if self.origin.is_none() {
            self.origin = instant;
        }
        self.previous_ms = created_at_ms;
        copy_into(&mut self.previous_raw, created_at_text);
        self.previous_line = line;
        Ok(())
    }

    /// An optional cell: `default` when the column is absent or the cell empty.
    fn optional<T>(
        &self,
        row: Row<'_>,
        line: usize,
        column: Column,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, InputError> {
        let text = self.cell(row, column);
        if text.is_empty() {
            Ok(default)
        } else {
            parse(text).map_err(|message| self.error(line, column, message))
        }
    }

    /// Parses a `created_at` cell and checks it against the trace's form and the previous row.
    /// Returns the form, the time in ms from the origin and, for RFC 3339, the instant (the
    /// origin if the trace has none yet).
    fn parse_created_at(
        &self,
        text: &str,
        line: usize,
    ) -> Result<(TimeForm, u64, Option<Timestamp>), InputError> {
        let (form, ms, instant) = match parse_seconds_ms(text) {
            Ok(ms) => (TimeForm::Seconds, ms, None),
            Err(_) if unix_time_hint(text).is_some() => {
                let hint = unix_time_hint(text).unwrap_or_default();
                return Err(self.error(line, Column::CreatedAt, hint));
            }
            Err(too_large) if too_large.contains("longest time") => {
                return Err(self.error(line, Column::CreatedAt, too_large));
            }
            Err(seconds_message) => match text.parse::<Timestamp>().map(check_instant) {
                Ok(Err(range)) => return Err(self.error(line, Column::CreatedAt, range)),
                Ok(Ok(instant)) => {
                    let origin = self.origin.unwrap_or(instant);
                    let nanos = instant.as_nanosecond() - origin.as_nanosecond();
                    let ms = u64::try_from((nanos + 500_000).div_euclid(1_000_000));
                    if let Ok(ms) = ms
                        && ms > MAX_TRACE_MS
                    {
                        return Err(self.error(
                            line,
                            Column::CreatedAt,
                            format!(
                                "created_at `{text}` is more than {MAX_TRACE_YEARS} years after \
                                 the trace's first time {origin}, the longest span fleetsim \
                                 simulates"
                            ),
                        ));
                    }
                    let Ok(ms) = ms else {
                        return Err(self.error(
                            line,
                            Column::CreatedAt,
                            format!(
                                "created_at `{text}` goes backwards: it is earlier than the \
                                 trace's first time {origin}; rows must be sorted by created_at"
                            ),
                        ));
                    };
                    (TimeForm::Rfc3339, ms, Some(instant))
                }
                Err(rfc_error) => {
                    let message = if seconds_message.starts_with("must not be negative") {
                        seconds_message
                    } else {
                        format!(
                            "expected seconds from the trace start (such as `12.5`) or an RFC \
                             3339 time (such as `2026-03-02T09:00:00+09:00`), found `{text}` \
                             (as RFC 3339: {rfc_error})"
                        )
                    };
                    return Err(self.error(line, Column::CreatedAt, message));
                }
            },
        };
        if let Some(trace_form) = self.form
            && trace_form != form
        {
            return Err(self.error(
                line,
                Column::CreatedAt,
                format!(
                    "created_at `{text}` is in {}, but earlier rows use {}; a trace must use \
                     one form throughout",
                    form.describe(),
                    trace_form.describe()
                ),
            ));
        }
        if self.form.is_some() && ms < self.previous_ms {
            return Err(self.error(
                line,
                Column::CreatedAt,
                format!(
                    "created_at goes backwards: `{text}` is earlier than `{}` on line {}; rows \
                     must be sorted by created_at",
                    self.previous_raw, self.previous_line
                ),
            ));
        }
        Ok((form, ms, instant))
    }
}

/// The non-empty, trimmed items of a `;`-separated list cell.
fn list_items(text: &str) -> impl Iterator<Item = &str> {
    text.split(';').map(str::trim).filter(|item| !item.is_empty())
}

fn copy_into(buffer: &mut String, text: &str) {
    buffer.clear();
    buffer.push_str(text);
}

/// Fills `list` with the items of `text`, reusing its strings; strings no longer needed go to
/// `spare` and come back when a later list is longer, so a steady state allocates nothing.
fn fill_list(list: &mut Vec<String>, text: &str, spare: &mut Vec<String>) {
    let mut count = 0;
    for item in list_items(text) {
        match list.get_mut(count) {
            Some(buffer) => copy_into(buffer, item),
            None => {
                let mut buffer = spare.pop().unwrap_or_default();
                copy_into(&mut buffer, item);
                list.push(buffer);
            }
        }
        count += 1;
    }
    spare.extend(list.drain(count..));
}

fn line_number(line: u64) -> usize {
    usize::try_from(line).unwrap_or(usize::MAX)
}

fn csv_error(path: &Path, error: &csv::Error, line: Option<usize>) -> InputError {
    let message = match error.kind() {
        csv::ErrorKind::Io(io) => format!("cannot read the trace: {io}"),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("this row has {len} fields but the header has {expected_len}")
        }
        _ => error.to_string(),
    };
    let error = InputError::file(path, message);
    match line {
        Some(line) => error.at_line(line),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &str) -> Result<TraceReader<&[u8]>, InputError> {
        TraceReader::from_reader(text.as_bytes(), "trace.csv")
    }

    fn read_all(text: &str) -> Result<Vec<TraceRecord>, InputError> {
        let mut reader = reader(text)?;
        let mut records = Vec::new();
        let mut record = TraceRecord::new();
        while reader.read_next(&mut record)? {
            records.push(record.clone());
        }
        Ok(records)
    }

    /// The error of reading `text`, which must fail.
    fn read_error(text: &str) -> InputError {
        match read_all(text) {
            Ok(records) => panic!("expected an error, read {records:?}"),
            Err(error) => error,
        }
    }

    fn assert_error(error: &InputError, line: usize, key: &str, fragments: &[&str]) {
        assert_eq!(error.file, Path::new("trace.csv"), "{error}");
        assert_eq!(error.line, Some(line), "{error}");
        assert_eq!(error.key.as_deref(), Some(key), "{error}");
        for fragment in fragments {
            assert!(error.message.contains(fragment), "`{fragment}` not in: {error}");
        }
    }

    #[test]
    fn minimal_three_column_trace() {
        let records =
            read_all("job_id,created_at,duration\n1,0,60\n2,12.5,90.0004\n3,12.5,0.0005\n")
                .unwrap();
        assert_eq!(records.len(), 3);
        let first = &records[0];
        assert_eq!(
            (first.job_id, first.created_at_ms, first.duration_ms, first.line),
            (1, 0, 60_000, 2)
        );
        assert_eq!(first.pipeline_id, None);
        assert_eq!(first.project_id, 0);
        assert!(first.name.is_empty() && first.tags.is_empty() && first.needs.is_empty());
        assert_eq!(first.cache_policy, CachePolicy::PullPush);
        assert!(first.cache_changed);
        assert_eq!((first.cache_size_bytes, first.cache_miss_penalty_ms, first.retry), (0, 0, 0));
        assert_eq!(
            (records[1].created_at_ms, records[1].duration_ms, records[1].line),
            (12_500, 90_000, 3)
        );
        assert_eq!((records[2].duration_ms, records[2].line), (1, 4));
        let reader = reader("job_id,created_at,duration\n1,0,60\n").unwrap();
        assert_eq!(reader.origin(), None);
        assert!(reader.warnings().is_empty());
        assert!(reader.has_column("duration") && !reader.has_column("tags"));
    }

    /// Cells are slices of the row's text, checked as UTF-8 once: multi-byte text (quoted,
    /// padded) comes out whole and trimmed, and a cell that is not UTF-8 is refused with its
    /// column, line and position.
    #[test]
    fn cells_are_utf8_text_and_bytes_that_are_not_are_refused_by_column() {
        let text = "job_id,created_at,duration,name,cache_key,image\n\
                    1,0,60, ビルド ,\"ключ, кэш\",  node:20 \n";
        let records = read_all(text).unwrap();
        assert_eq!(
            (records[0].name.as_str(), records[0].cache_key.as_str(), records[0].image.as_str()),
            ("ビルド", "ключ, кэш", "node:20")
        );
        let mut bytes = b"job_id,created_at,duration,image\n1,0,60,node\n2,1,60,no".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"de\n");
        let mut reader = TraceReader::from_reader(bytes.as_slice(), "trace.csv").unwrap();
        let mut record = TraceRecord::new();
        assert!(reader.read_next(&mut record).unwrap());
        let error = reader.read_next(&mut record).unwrap_err();
        assert_error(&error, 3, "image", &["column 4 is not valid UTF-8"]);
    }

    #[test]
    fn all_columns_in_any_order() {
        let text = "\
retry,image_size,image,cache_miss_penalty,cache_changed,cache_size,cache_policy,\
cache_fallback_keys,cache_key,tags,duration,created_at,needs,stage,name,project_id,pipeline_id,job_id
2,1.5GiB,node:20,30.5,false,512MB,pull,backend-main; backend-default,backend-feature,docker;linux,\
95.25,7.125,10;11,test,\"test 1/3, unit\",4,77,12
,,,,,,,,,,1,8,,,,,,13
";
        let records = read_all(text).unwrap();
        assert_eq!(records.len(), 2);
        let full = &records[0];
        assert_eq!(full.job_id, 12);
        assert_eq!(full.pipeline_id, Some(77));
        assert_eq!(full.project_id, 4);
        assert_eq!(full.name, "test 1/3, unit");
        assert_eq!(full.stage, "test");
        assert_eq!(full.needs, vec![10, 11]);
        assert_eq!(full.created_at_ms, 7_125);
        assert_eq!(full.duration_ms, 95_250);
        assert_eq!(full.tags, vec!["docker", "linux"]);
        assert_eq!(full.cache_key, "backend-feature");
        assert_eq!(full.cache_fallback_keys, vec!["backend-main", "backend-default"]);
        assert_eq!(full.cache_policy, CachePolicy::Pull);
        assert_eq!(full.cache_size_bytes, 512_000_000);
        assert!(!full.cache_changed);
        assert_eq!(full.cache_miss_penalty_ms, 30_500);
        assert_eq!(full.image, "node:20");
        assert_eq!(full.image_size_bytes, 1_610_612_736);
        assert_eq!(full.retry, 2);
        assert_eq!(full.line, 2);

        // Empty optional cells give the defaults.
        let mut expected = TraceRecord::new();
        expected.job_id = 13;
        expected.created_at_ms = 8_000;
        expected.duration_ms = 1_000;
        expected.line = 3;
        assert_eq!(records[1], expected);
    }

    #[test]
    fn rfc3339_times_count_from_the_first_row() {
        let text = "job_id,created_at,duration\n\
                    1,2026-03-02T09:00:00+09:00,10\n\
                    2,2026-03-02T00:00:01.5Z,10\n\
                    3,2026-03-02T09:00:01.5004+09:00,10\n\
                    4,2026-03-02T10:00:02+10:00,10\n\
                    5,2026-03-03T09:00:00+09:00,10\n";
        let mut reader = reader(text).unwrap();
        let origin: Timestamp = "2026-03-02T00:00:00Z".parse().unwrap();
        assert_eq!(reader.origin(), Some(origin), "known before the first read");
        let mut record = TraceRecord::new();
        let mut times = Vec::new();
        while reader.read_next(&mut record).unwrap() {
            times.push(record.created_at_ms);
        }
        assert_eq!(times, vec![0, 1_500, 1_500, 2_000, 86_400_000]);
        assert_eq!(reader.origin(), Some(origin));
    }

    #[test]
    fn missing_required_column() {
        for (header, missing) in [
            ("created_at,duration", "job_id"),
            ("job_id,duration,name", "created_at"),
            ("job_id,created_at", "duration"),
        ] {
            let error = reader(&format!("{header}\n")).unwrap_err();
            assert_error(&error, 1, missing, &["no `", missing]);
        }
        assert_error(
            &reader("job_id,created_at,duration,job_id\n").unwrap_err(),
            1,
            "job_id",
            &["twice", "columns 1 and 4"],
        );
        let empty = reader("").unwrap_err();
        assert_eq!(empty.line, Some(1));
        assert!(empty.message.contains("empty"), "{empty}");
    }

    #[test]
    fn non_numeric_duration() {
        let error = read_error("job_id,created_at,duration\n1,0,60\n2,1,abc\n");
        assert_error(&error, 3, "duration", &["`abc`", "non-negative seconds"]);
        assert_eq!(error.to_string().split(':').take(2).collect::<Vec<_>>(), ["trace.csv", "3"]);
        assert_error(&error_row("NaN"), 2, "duration", &["`NaN`"]);
        assert_error(&error_row("inf"), 2, "duration", &["`inf`"]);
        assert_error(&error_row(""), 2, "duration", &["required"]);
    }

    fn error_row(duration: &str) -> InputError {
        read_error(&format!("job_id,created_at,duration\n1,0,{duration}\n"))
    }

    #[test]
    fn negative_duration() {
        assert_error(&error_row("-5"), 2, "duration", &["negative", "`-5`"]);
        assert_error(&error_row("-0.5"), 2, "duration", &["negative", "`-0.5`"]);
    }

    #[test]
    fn time_going_backwards() {
        let error = read_error("job_id,created_at,duration\n1,5,1\n2,12.5,1\n3,12.25,1\n");
        assert_error(&error, 4, "created_at", &["backwards", "`12.25`", "`12.5`", "line 3"]);
        let rfc = read_error(
            "job_id,created_at,duration\n1,2026-03-02T09:00:00+09:00,1\n2,2026-03-02T08:59:59+09:00,1\n",
        );
        assert_error(&rfc, 3, "created_at", &["backwards", "08:59:59", "first time"]);
        let negative = read_error("job_id,created_at,duration\n1,-1,1\n");
        assert_error(&negative, 2, "created_at", &["negative", "`-1`"]);
        let garbage = read_error("job_id,created_at,duration\n1,2026-03-02T09:00:00,1\n");
        assert_error(&garbage, 2, "created_at", &["RFC 3339", "`2026-03-02T09:00:00`"]);
    }

    #[test]
    fn mixed_time_forms() {
        let error =
            read_error("job_id,created_at,duration\n1,0,1\n2,2026-03-02T09:00:00+09:00,1\n");
        assert_error(&error, 3, "created_at", &["RFC 3339", "seconds", "one form"]);
        let error =
            read_error("job_id,created_at,duration\n1,2026-03-02T09:00:00+09:00,1\n2,5,1\n");
        assert_error(&error, 3, "created_at", &["one form"]);
    }

    #[test]
    fn duplicate_job_id() {
        let error = read_error("job_id,created_at,duration\n7,0,1\n8,0,1\n9,1,1\n8,2,1\n");
        assert_error(&error, 5, "job_id", &["duplicate job_id 8"]);
        assert_error(&error_id("x1"), 2, "job_id", &["unsigned integer", "`x1`"]);
        assert_error(&error_id("-3"), 2, "job_id", &["`-3`"]);
        assert_error(&error_id(""), 2, "job_id", &["required"]);
    }

    fn error_id(id: &str) -> InputError {
        read_error(&format!("job_id,created_at,duration\n{id},0,1\n"))
    }

    #[test]
    fn bad_size_suffix() {
        let error = read_error("job_id,created_at,duration,cache_size\n1,0,1,1GB\n2,0,1,200k\n");
        assert_error(&error, 3, "cache_size", &["`200k`", "suffix", "MiB"]);
        let error = read_error("job_id,created_at,duration,image_size\n1,0,1,-1MB\n");
        assert_error(&error, 2, "image_size", &["negative"]);
    }

    #[test]
    fn other_bad_cells_name_their_column() {
        let header = "job_id,created_at,duration,pipeline_id,project_id,needs,cache_policy,\
                      cache_changed,cache_miss_penalty,retry";
        let cases = [
            ("p1,,,,,,", "pipeline_id"),
            (",x,,,,,", "project_id"),
            (",,3;x,,,,", "needs"),
            (",,,Pull,,,", "cache_policy"),
            (",,,,yes,,", "cache_changed"),
            (",,,,,-2,", "cache_miss_penalty"),
            (",,,,,,-1", "retry"),
        ];
        for (cells, column) in cases {
            let error = read_error(&format!("{header}\n1,0,1,{cells}\n"));
            assert_error(&error, 2, column, &[]);
        }
        let ragged = read_error("job_id,created_at,duration\n1,0,1\n2,0\n");
        assert_eq!(ragged.line, Some(3));
        assert!(ragged.message.contains("2 fields but the header has 3"), "{ragged}");
    }

    #[test]
    fn unknown_columns_are_warnings() {
        let mut reader = reader("job_id,colour,created_at,duration\n1,red,0,1\n").unwrap();
        assert_eq!(reader.warnings().len(), 1);
        let warning = &reader.warnings()[0];
        assert!(
            warning.starts_with("trace.csv:1: unknown column `colour` (column 2)"),
            "{warning}"
        );
        let mut record = TraceRecord::new();
        assert!(reader.read_next(&mut record).unwrap());
        assert_eq!((record.job_id, record.duration_ms), (1, 1_000));
    }

    #[test]
    fn lines_count_blank_lines_crlf_quoted_newlines_and_a_bom() {
        for newline in ["\n", "\r\n"] {
            let text = "\u{feff}job_id,name,created_at,duration\n1,a,0,1\n\n2,\"two\nlines\",1,1\n\n\n3,c,2,1\n4,d,3,1"
                .replace('\n', newline);
            let records = read_all(&text).unwrap();
            let lines: Vec<_> = records.iter().map(|r| r.line).collect();
            assert_eq!(lines, vec![2, 4, 8, 9], "newline {newline:?}");
            assert_eq!(records[1].name, format!("two{newline}lines"));
            let bad = read_error(&text.replace("3,c,2,1", "3,c,2,x"));
            assert_eq!(bad.line, Some(8), "newline {newline:?}");
            let ragged = read_error(&text.replace("3,c,2,1", "3,\"c\nc\",2"));
            assert_eq!(ragged.line, Some(8), "newline {newline:?}");
        }
        // Blank lines before the header.
        let records = read_all("\n\njob_id,created_at,duration\n1,0,1\n").unwrap();
        assert_eq!(records[0].line, 4);
        assert_eq!(reader("\n\njob_id,duration\n").unwrap_err().line, Some(3));
    }

    #[test]
    fn invalid_utf8_names_the_line_and_column() {
        let text: &[u8] = b"job_id,name,created_at,duration\n1,a,0,1\n2,\xff,1,1\n";
        let mut reader = TraceReader::from_reader(text, "trace.csv").unwrap();
        let mut record = TraceRecord::new();
        assert!(reader.read_next(&mut record).unwrap());
        assert_error(&reader.read_next(&mut record).unwrap_err(), 3, "name", &["UTF-8"]);
    }

    #[test]
    fn reading_goes_on_after_a_bad_row() {
        let mut reader =
            reader("job_id,created_at,duration\n1,0,1\n2,1,bad\n2,2,1\n3,1.5,1\n").unwrap();
        let mut record = TraceRecord::new();
        assert!(reader.read_next(&mut record).unwrap());
        assert_eq!(reader.read_next(&mut record).unwrap_err().line, Some(3));
        // The bad row's id and time were not recorded.
        assert!(reader.read_next(&mut record).unwrap());
        assert_eq!((record.job_id, record.line), (2, 4));
        assert_eq!(reader.read_next(&mut record).unwrap_err().line, Some(5));
        assert!(!reader.read_next(&mut record).unwrap());
        assert!(!reader.read_next(&mut record).unwrap());
    }

    #[test]
    fn buffers_are_reused() {
        let text = "\
job_id,name,stage,created_at,duration,tags,cache_key,cache_fallback_keys,image,needs
1,build-backend-jar,build,0,1,docker;linux;amd64,backend-main,a;b,maven:3-eclipse-temurin-17,5;6;7
2,test,test,1,1,docker,key,,node:20,8
3,deploy,deploy,2,1,a;b;c,k,x;y,alpine:3.20,1;2;3
4,lint,test,3,1,,k,,alpine:3.20,
";
        let mut reader = reader(text).unwrap();
        let mut record = TraceRecord::new();
        assert!(reader.read_next(&mut record).unwrap());
        let name = (record.name.as_ptr(), record.name.capacity());
        let stage = record.stage.as_ptr();
        let cache_key = record.cache_key.as_ptr();
        let image = record.image.as_ptr();
        let tags = record.tags.as_ptr();
        let list_buffers: Vec<*const u8> =
            record.tags.iter().chain(&record.cache_fallback_keys).map(|s| s.as_ptr()).collect();
        let needs = record.needs.as_ptr();
        let fallback = record.cache_fallback_keys.as_ptr();
        while reader.read_next(&mut record).unwrap() {
            assert_eq!((record.name.as_ptr(), record.name.capacity()), name);
            assert_eq!(record.stage.as_ptr(), stage);
            assert_eq!(record.cache_key.as_ptr(), cache_key);
            assert_eq!(record.image.as_ptr(), image);
            if !record.tags.is_empty() {
                assert_eq!(record.tags.as_ptr(), tags);
            }
            // List strings are reused, including those parked while a list was shorter.
            for item in record.tags.iter().chain(&record.cache_fallback_keys) {
                assert!(list_buffers.contains(&item.as_ptr()), "`{item}` got a new buffer");
            }
            if !record.needs.is_empty() {
                assert_eq!(record.needs.as_ptr(), needs);
            }
            if !record.cache_fallback_keys.is_empty() {
                assert_eq!(record.cache_fallback_keys.as_ptr(), fallback);
            }
        }
        assert_eq!(record.job_id, 4);
        assert!(record.tags.is_empty() && record.needs.is_empty());
    }

    #[test]
    fn consecutive_ids_keep_the_id_set_small() {
        let mut text = String::from("job_id,created_at,duration\n");
        for id in 1..=5_000 {
            text.push_str(&format!("{id},{id},1\n"));
        }
        let mut reader = reader(&text).unwrap();
        let mut record = TraceRecord::new();
        while reader.read_next(&mut record).unwrap() {}
        assert_eq!(reader.parser.ids.interval_count(), 1);
    }
}
