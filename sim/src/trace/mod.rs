//! Job traces: the CSV format the simulator replays, read as a stream.
//!
//! # The format
//!
//! A trace is a CSV file with a header row. Columns may come in any order; only `job_id`,
//! `created_at` and `duration` are required. An unknown column is not an error: it is ignored
//! and reported in [`TraceReader::warnings`]. Cells are trimmed; an empty cell in an optional
//! column means its default. Lists are `;`-separated (`docker;linux`), an empty cell is an
//! empty list, and empty items are dropped.
//!
//! | column | value | default |
//! |---|---|---|
//! | `job_id` | unsigned integer, unique in the trace | required |
//! | `pipeline_id` | unsigned integer | none |
//! | `project_id` | unsigned integer | 0 |
//! | `name`, `stage` | text | empty |
//! | `needs` | list of job ids, or `[]` | empty (wait for the earlier stages) |
//! | `created_at` | seconds from the trace start, or an RFC 3339 time | required |
//! | `duration` | script time with warm caches, seconds | required |
//! | `tags` | list of runner tags the job requires | empty (untagged) |
//! | `cache_key` | text; sanitised as GitLab Runner does (`fleetsim_core::cache::key`) unless every runner sets `FF_HASH_CACHE_KEYS` | empty (no cache) |
//! | `cache_fallback_keys` | list of keys tried after `cache_key` | empty |
//! | `cache_policy` | `pull-push`, `pull` or `push` | `pull-push` |
//! | `cache_when` | `on_success`, `on_failure` or `always` (when the cache is saved) | `on_success` |
//! | `protected` | `true`/`false`: the pipeline ran for a protected ref; when given, the cache keys get GitLab's `-protected` / `-non_protected` suffix (before sanitising) | no suffix |
//! | `cache_size` | size (below) | 0 |
//! | `cache_changed` | `true`/`false` (any case) or `1`/`0` | `true` |
//! | `cache_miss_penalty` | seconds added to the script on a cache miss | 0 |
//! | `image` | text | empty (the runner's default) |
//! | `image_size` | size (below) | 0 |
//! | `retry` | integer ≥ 0 | 0 |
//! | `status` | `success` or `failed`: whether the script fails (the job then ends failed after its script and save, is retried up to `retry`, and skips its dependants) | `success` |
//!
//! - **Seconds** are non-negative decimals (`90`, `12.5`, `1e3`), parsed exactly and rounded to
//!   the nearest millisecond (halves up). Negative values, `NaN`, `inf` and units are refused.
//! - **`created_at`** is either seconds from the trace start or an RFC 3339 instant with an
//!   offset (`2026-03-02T09:00:00+09:00`, `…Z`), and every row must use the same form. For an
//!   RFC 3339 trace the first row's instant is the origin ([`TraceReader::origin`]) and
//!   `created_at_ms` counts from it. Rows must be sorted by `created_at` (equal times are
//!   fine); times finer than a millisecond are rounded before that check.
//! - **Sizes** are bytes: a non-negative decimal with an optional, case-sensitive suffix —
//!   `B`; `kB` (or `KB`), `MB`, `GB`, `TB` (powers of 1000); `KiB`, `MiB`, `GiB`, `TiB` (powers
//!   of 1024) — e.g. `4096`, `512MB`, `1.5GiB`, `300 kB`. `200k` is refused: say `200kB`.
//!
//! ```text
//! job_id,pipeline_id,project_id,name,created_at,duration,tags,cache_key,cache_size,image
//! 1,1,2,build,1608.552,195.554,,frontend-main,414MB,node:20
//! 2,1,2,lint,1608.552,64.900,,frontend-main,414MB,node:20
//! 3,1,2,test,1804.106,514.988,,frontend-main,414MB,node:20
//! 4,1,2,deploy-preview,2319.094,76.681,,,,node:20
//! ```
//!
//! # Pipelines
//!
//! A trace with a `stage` or a `needs` column is a *DAG trace*: the jobs of a pipeline are
//! created at its `created_at` and become pending only when their predecessors have finished
//! (the previous stages, or the jobs listed in `needs`; `[]` is GitLab's `needs: []`). The
//! rows of a pipeline must then be consecutive, grouped stage by stage, and share one
//! `created_at`. The rules are in [`pipelines`]. A trace with neither column is replayed as
//! before: every job is pending at its `created_at`.
//!
//! # Errors
//!
//! Every problem is an [`InputError`](crate::input_error::InputError) naming the file, the
//! 1-based line (the header is line 1; a quoted cell spanning lines counts them all) and the
//! column as its key, and quoting the bad value: a missing or repeated column (line 1), a cell
//! that does not parse, a negative duration, a time going backwards (naming both times and
//! the earlier line), a second form of time, a duplicate `job_id`, a row with the wrong number
//! of fields. The column is named in the error's `key`; its `column` (a character position)
//! is left unset, since a cell's position in the raw line is lost once CSV quoting is undone.
//!
//! # Streaming design
//!
//! Traces can be long (months of a large instance), so [`TraceReader`] never holds the rows:
//!
//! - the header is read once and each known column's field index resolved then;
//! - one [`csv::ByteRecord`] is reused for every row; the row is checked to be UTF-8 once and
//!   its cells are borrowed from it as trimmed `&str`s;
//! - line numbers are exact (CRLF, blank lines and quoted newlines included): a thin wrapper
//!   around the input remembers where the newlines in the parser's read-ahead buffer are;
//! - [`TraceReader::read_next`] fills a caller-owned [`TraceRecord`] and reuses its `String`
//!   and `Vec` buffers (strings dropped from a shorter list are kept for the next longer one),
//!   so a steady state allocates nothing per row;
//! - the state carried between rows is the previous `created_at` and the set of job ids seen,
//!   an [`IdSet`] of disjoint intervals: consecutive ids cost one interval in total, and
//!   memory grows only with the gaps between ids;
//! - the constructor reads one row ahead, so an RFC 3339 trace's origin is known before the
//!   first record is consumed.
//!
//! A row with an error changes no state, so a caller may report it and keep reading.

mod id_set;
mod reader;
pub mod record;

pub mod import;
pub mod import_csv;
pub mod pipelines;
pub mod source;
pub mod stats;

pub use id_set::IdSet;
pub use reader::{COLUMNS, REQUIRED_COLUMNS, TraceReader};
pub use record::{
    CachePolicy, CacheWhen, SIZE_UNITS, TraceRecord, parse_bool, parse_seconds_ms,
    parse_size_bytes, parse_u64,
};
