//! `sim trace import --csv FILE --map TRACE=INPUT,…`: a CSV with other column names to a trace.
//!
//! The map says which input column feeds each trace column (`job_id=id,created_at=queued`);
//! input columns named like trace columns are used as they are, and other input columns are
//! ignored with a warning. The input's header is renamed and the file is then read by the
//! ordinary [`TraceReader`] — streamed, with every check of the trace format — so an error
//! names the input file, its line and the *input* column (with the trace column it feeds).
//! Rows are written back in the canonical form: every trace column, `created_at` in the
//! input's form (seconds with three decimals, or RFC 3339 with milliseconds), durations in
//! seconds with three decimals, sizes in bytes, `needs: []` as `[]`.

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::path::Path;

use super::{COLUMNS, TraceReader, TraceRecord};
use crate::input_error::InputError;

/// Parses `--map`: comma-separated `TRACE_COLUMN=INPUT_COLUMN` pairs.
pub fn parse_map(text: &str) -> Result<Vec<(String, String)>, InputError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((trace, input)) = item.split_once('=') else {
            return Err(InputError::file(
                "--map",
                format!("`{item}`: expected TRACE_COLUMN=INPUT_COLUMN, e.g. job_id=id"),
            ));
        };
        let (trace, input) = (trace.trim(), input.trim());
        if !COLUMNS.contains(&trace) {
            return Err(InputError::file(
                "--map",
                format!("`{trace}` is not a trace column; they are {}", COLUMNS.join(", ")),
            )
            .key(trace));
        }
        if pairs.iter().any(|(t, _)| t == trace) {
            return Err(InputError::file("--map", format!("`{trace}` is mapped twice")).key(trace));
        }
        pairs.push((trace.to_owned(), input.to_owned()));
    }
    Ok(pairs)
}

/// Converts `input` with `map` and writes the trace to `out`; returns the rows written and
/// the warnings (ignored columns).
pub fn import_csv(
    input: &Path,
    map: &[(String, String)],
    out: &mut impl Write,
) -> Result<(u64, Vec<String>), InputError> {
    let file = crate::input_file::open_regular(input, "the CSV")?;
    let mut lines = BufReader::new(file);
    let mut header = String::new();
    lines
        .read_line(&mut header)
        .map_err(|e| InputError::file(input, format!("cannot read the CSV: {e}")))?;
    let names: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(header.as_bytes())
        .records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default();
    for (trace, from) in map {
        if !names.iter().any(|n| n == from) {
            return Err(InputError::file(
                input,
                format!("--map {trace}={from}: the header has no column `{from}`"),
            )
            .at_line(1)
            .key(from.as_str()));
        }
    }
    // Rename: a mapped input column takes its trace name; an input column that has a trace
    // name but is replaced by a mapped one is renamed away so it does not clash.
    let renamed: Vec<String> = names
        .iter()
        .map(|n| match map.iter().find(|(_, from)| from == n) {
            Some((trace, _)) => trace.clone(),
            None if map.iter().any(|(trace, _)| trace == n) => format!("{n} (replaced by --map)"),
            None => n.clone(),
        })
        .collect();
    let mut new_header = csv::Writer::from_writer(Vec::new());
    new_header
        .write_record(&renamed)
        .map_err(|e| InputError::file(input, format!("cannot rewrite the header: {e}")))?;
    let new_header = new_header.into_inner().map_err(|e| InputError::file(input, e.to_string()))?;
    let stream = Cursor::new(new_header).chain(lines);
    let mut reader = TraceReader::from_reader(stream, input).map_err(|e| back(e, map))?;
    let origin = reader.origin();
    let mut w = csv::Writer::from_writer(out);
    let io = |e: csv::Error| InputError::file("--out", format!("cannot write the trace: {e}"));
    w.write_record(COLUMNS).map_err(io)?;
    let mut r = TraceRecord::new();
    let mut rows = 0u64;
    let mut cells: Vec<String> = vec![String::new(); COLUMNS.len()];
    while reader.read_next(&mut r).map_err(|e| back(e, map))? {
        fill(&r, origin, &mut cells);
        w.write_record(&cells).map_err(io)?;
        rows += 1;
    }
    w.flush().map_err(|e| InputError::file("--out", format!("cannot write the trace: {e}")))?;
    Ok((rows, reader.warnings().to_vec()))
}

/// Names the input column in an error about a mapped trace column.
fn back(mut e: InputError, map: &[(String, String)]) -> InputError {
    if let Some(key) = &e.key
        && let Some((trace, from)) = map.iter().find(|(t, _)| t == key)
    {
        e.message = format!("{} (input column `{from}`, mapped to `{trace}`)", e.message);
        e.key = Some(from.clone());
    }
    e
}

fn ms_text(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The canonical cells of a record, in [`COLUMNS`] order.
fn fill(r: &TraceRecord, origin: Option<jiff::Timestamp>, cells: &mut [String]) {
    let list = |items: &[String]| items.join(";");
    let created = match origin {
        Some(o) => format!("{:.3}", o + jiff::SignedDuration::from_millis(r.created_at_ms as i64)),
        None => ms_text(r.created_at_ms),
    };
    let needs = if r.needs_given && r.needs.is_empty() {
        "[]".to_owned()
    } else {
        r.needs.iter().map(u64::to_string).collect::<Vec<_>>().join(";")
    };
    let values = [
        r.job_id.to_string(),
        r.pipeline_id.map(|p| p.to_string()).unwrap_or_default(),
        r.project_id.to_string(),
        r.name.clone(),
        r.stage.clone(),
        needs,
        created,
        ms_text(r.duration_ms),
        list(&r.tags),
        r.cache_key.clone(),
        list(&r.cache_fallback_keys),
        r.cache_policy.as_str().to_owned(),
        r.cache_when.as_str().to_owned(),
        r.protected.map(|p| p.to_string()).unwrap_or_default(),
        r.cache_size_bytes.to_string(),
        r.cache_changed.to_string(),
        ms_text(r.cache_miss_penalty_ms),
        r.image.clone(),
        r.image_size_bytes.to_string(),
        r.retry.to_string(),
        if r.script_fails { "failed" } else { "success" }.to_owned(),
    ];
    for (cell, value) in cells.iter_mut().zip(values) {
        *cell = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(text: &str, map: &str) -> Result<String, InputError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(&path, text).unwrap();
        let mut out = Vec::new();
        import_csv(&path, &parse_map(map)?, &mut out).map(|_| String::from_utf8(out).unwrap())
    }

    #[test]
    fn renamed_columns_are_mapped_and_written_canonically() {
        let text = "id,queued,secs,team,colour\n7,2026-03-02T09:00:00+09:00,90.5,3,red\n8,2026-03-02T09:00:01.25+09:00,1e1,3,blue\n";
        let out =
            import(text, "job_id=id, created_at=queued,duration=secs,project_id=team").unwrap();
        let mut lines = out.lines();
        assert_eq!(lines.next().unwrap(), COLUMNS.join(","));
        assert_eq!(
            lines.next().unwrap(),
            "7,,3,,,,2026-03-02T00:00:00.000Z,90.500,,,,pull-push,on_success,,0,true,0.000,,0,0,success"
        );
        assert_eq!(
            lines.next().unwrap(),
            "8,,3,,,,2026-03-02T00:00:01.250Z,10.000,,,,pull-push,on_success,,0,true,0.000,,0,0,success"
        );
        // Importing the output again (no map) gives it back byte for byte.
        assert_eq!(import(&out, "").unwrap(), out);
    }

    #[test]
    fn errors_name_the_input_line_and_column() {
        let e = import(
            "id,queued,secs\n1,0,5\n2,1,five\n",
            "job_id=id,created_at=queued,duration=secs",
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("secs")), "{e}");
        assert!(e.message.contains("input column `secs`, mapped to `duration`"), "{e}");
        assert!(e.file.ends_with("in.csv"));
        let e = import("id,queued,secs\n1,0,5\n", "job_id=ident,created_at=queued,duration=secs")
            .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(1), Some("ident")), "{e}");
        let e = parse_map("jobid=id").unwrap_err();
        assert!(e.message.contains("not a trace column"), "{e}");
        let e = parse_map("job_id").unwrap_err();
        assert!(e.message.contains("TRACE_COLUMN=INPUT_COLUMN"), "{e}");
        // A required column neither present nor mapped.
        let e = import("id,queued\n1,0\n", "job_id=id,created_at=queued").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("duration"), "{e}");
    }
}
