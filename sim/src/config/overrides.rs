//! `--set KEY=VALUE`: change one key of a TOML document before it is read.
//!
//! `KEY` is a dotted path with optional `[N]` indexes into arrays and arrays of tables:
//! `concurrent`, `runners[0].limit`, `runners[1].machine.IdleCount`, `gitlab.pickup`. A key
//! that is not a bare TOML key can be quoted: `runners[0].labels."team.name"`. `VALUE` is read
//! as a TOML value (`8`, `true`, `1.5`, `"x"`, `["a","b"]`, `{a = 1}`), and as a plain string
//! when it is not valid TOML (`immediate` → `"immediate"`).
//!
//! [`apply_override`] edits a [`toml_edit::DocumentMut`], which keeps every untouched line as
//! written. Missing tables on the way are created; an index must name an existing element.

use std::fmt;

use toml_edit::{DocumentMut, InlineTable, Item, Table, TableLike, Value};

use crate::input_error::InputError;

/// The pseudo-file named in errors about a `--set` argument.
pub const SET_PSEUDO_FILE: &str = "--set";

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A table key.
    Key(String),
    /// An index into an array or an array of tables (0-based).
    Index(usize),
}

/// One parsed `--set KEY=VALUE`.
#[derive(Debug, Clone)]
pub struct Override {
    /// The key path; never empty, and it starts with a [`PathSegment::Key`].
    pub path: Vec<PathSegment>,
    /// The new value.
    pub value: Value,
    /// The argument as it may be printed in messages: the value of a secret key is
    /// redacted ([`crate::redact::assignment`]).
    pub text: String,
}

impl Override {
    /// The key path written back as text, such as `runners[0].limit`.
    pub fn key(&self) -> String {
        format_path(&self.path)
    }

    /// An error about this override, or about a value it set: its file is the pseudo-file
    /// `--set KEY=VALUE` (the value redacted where it is a credential), so that it prints as
    /// ``--set runners[0].limit=abc: expected …``; `key` is kept for callers.
    pub fn error(&self, key: impl Into<String>, message: impl Into<String>) -> InputError {
        InputError::file(format!("{SET_PSEUDO_FILE} {}", self.text), message).key(key)
    }

    /// True when `key` (a dotted path) is this override's key or lies inside it: the
    /// override set its value (`runners[0].docker` covers `runners[0].docker.image`).
    pub fn covers(&self, key: &str) -> bool {
        key.strip_prefix(&self.key())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Writes a key path as text: `runners[0].docker.volumes[1]`. Keys that are not bare TOML
/// keys are quoted.
pub fn format_path(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            PathSegment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                if is_bare_key(key) {
                    out.push_str(key);
                } else {
                    out.push('"');
                    for c in key.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                }
            }
            PathSegment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Parses a key path such as `runners[0].machine.IdleCount` (the inverse of [`format_path`]).
///
/// # Errors
/// A message saying what is wrong with the path.
pub fn parse_key_path(text: &str) -> Result<Vec<PathSegment>, String> {
    let mut path = Vec::new();
    let mut chars = text.trim().chars().peekable();
    let mut expect_key = true;
    while let Some(&c) = chars.peek() {
        if expect_key {
            let key = if c == '"' {
                chars.next();
                let mut key = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated quoted key in `{text}`")),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped) => key.push(escaped),
                            None => return Err(format!("unterminated quoted key in `{text}`")),
                        },
                        Some(other) => key.push(other),
                    }
                }
                key
            } else {
                let mut key = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        key.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if key.is_empty() {
                    return Err(format!(
                        "expected a key name at `{}` in `{text}` (letters, digits, `_`, `-`, or a \
                         quoted key)",
                        chars.collect::<String>()
                    ));
                }
                key
            };
            path.push(PathSegment::Key(key));
            expect_key = false;
        } else if c == '.' {
            chars.next();
            expect_key = true;
        } else if c == '[' {
            chars.next();
            let mut digits = String::new();
            loop {
                match chars.next() {
                    Some(']') => break,
                    Some(d) if d.is_ascii_digit() => digits.push(d),
                    _ => {
                        return Err(format!(
                            "expected `[N]` with N a non-negative integer in `{text}`"
                        ));
                    }
                }
            }
            let index = digits
                .parse::<usize>()
                .map_err(|_| format!("expected `[N]` with N a non-negative integer in `{text}`"))?;
            path.push(PathSegment::Index(index));
        } else {
            return Err(format!("unexpected `{c}` in key `{text}`; expected `.`, `[N]` or `=`"));
        }
    }
    if path.is_empty() {
        return Err("the key is empty".to_owned());
    }
    if expect_key {
        return Err(format!("`{text}` ends with `.`; expected a key name after it"));
    }
    Ok(path)
}

/// Parses one `--set KEY=VALUE` argument.
///
/// # Errors
/// An [`InputError`] with file [`SET_PSEUDO_FILE`] when there is no `=` or the key is not a
/// valid path.
pub fn parse_override(arg: &str) -> Result<Override, InputError> {
    let Some((key, value)) = arg.split_once('=') else {
        return Err(InputError::file(
            SET_PSEUDO_FILE,
            "an argument is not KEY=VALUE (for example `runners[0].limit=4`); it is not \
             repeated here in case it is a credential",
        ));
    };
    let path = parse_key_path(key).map_err(|message| {
        InputError::file(SET_PSEUDO_FILE, format!("bad key: {message}")).key(key.trim())
    })?;
    let value_text = value.trim();
    let mut value =
        value_text.parse::<Value>().unwrap_or_else(|_| Value::from(value_text.to_owned()));
    value.decor_mut().clear();
    Ok(Override { path, value, text: crate::redact::assignment(arg) })
}

/// Sets the value of `o` in `doc`, creating missing tables on the way. The new value keeps the
/// comments of the value it replaces.
///
/// Errors name the override (`--set KEY=VALUE`, [`Override::error`]) and the key.
///
/// # Errors
/// When an index is out of range (or its array is missing), when the path goes through a
/// value that is not a table or array, or when it would replace a whole `[[table]]` entry.
pub fn apply_override(doc: &mut DocumentMut, o: &Override) -> Result<(), InputError> {
    let fail = |depth: usize, why: String| {
        o.error(format_path(&o.path[..=depth.min(o.path.len().saturating_sub(1))]), why)
    };
    let Some((last, parents)) = o.path.split_last() else {
        return Err(o.error("", "empty key in override"));
    };
    let mut cursor = Cursor::Table { table: doc.as_table_mut(), inline: false };
    for (depth, segment) in parents.iter().enumerate() {
        let next_is_index = matches!(o.path[depth + 1], PathSegment::Index(_));
        let here = format_path(&o.path[..=depth]);
        cursor = match (cursor, segment) {
            (Cursor::Table { table, inline }, PathSegment::Key(key)) => {
                if table.get(key).is_none_or(Item::is_none) {
                    if next_is_index {
                        return Err(fail(
                            depth + 1,
                            format!("`{here}` does not exist, so it has no element to index"),
                        ));
                    }
                    let new_table = if inline {
                        Item::Value(Value::InlineTable(InlineTable::new()))
                    } else {
                        let mut t = Table::new();
                        t.set_implicit(true);
                        Item::Table(t)
                    };
                    table.insert(key, new_table);
                }
                match table.get_mut(key) {
                    Some(item) => Cursor::from_item(item)
                        .ok_or_else(|| fail(depth, format!("`{here}` is a value, not a table")))?,
                    None => return Err(fail(depth, format!("`{here}` could not be created"))),
                }
            }
            (Cursor::Array(array), PathSegment::Index(i)) => {
                let len = array.len();
                match array.get_mut(*i) {
                    Some(value) => Cursor::from_value(value).ok_or_else(|| {
                        fail(depth, format!("`{here}` is a value, not a table or array"))
                    })?,
                    None => return Err(fail(depth, out_of_range(*i, len, &o.path[..depth]))),
                }
            }
            (Cursor::Tables(tables), PathSegment::Index(i)) => {
                let len = tables.len();
                match tables.get_mut(*i) {
                    Some(table) => Cursor::Table { table, inline: false },
                    None => return Err(fail(depth, out_of_range(*i, len, &o.path[..depth]))),
                }
            }
            (Cursor::Table { .. }, PathSegment::Index(_)) => {
                return Err(fail(depth, "a table cannot be indexed with [N]".to_owned()));
            }
            (Cursor::Array(_) | Cursor::Tables(_), PathSegment::Key(_)) => {
                let parent = format_path(&o.path[..depth]);
                return Err(fail(
                    depth,
                    format!("`{parent}` is an array: pick an element with `{parent}[N]` first"),
                ));
            }
        };
    }
    let depth = o.path.len() - 1;
    let mut value = o.value.clone();
    match (cursor, last) {
        (Cursor::Table { table, .. }, PathSegment::Key(key)) => {
            match table.get_mut(key) {
                Some(Item::Value(old)) => {
                    *value.decor_mut() = old.decor().clone();
                    *old = value;
                }
                Some(Item::ArrayOfTables(_)) => {
                    return Err(fail(
                        depth,
                        format!("`{}` is an array of [[tables]]; set its keys one by one", o.key()),
                    ));
                }
                _ => {
                    table.insert(key, Item::Value(value));
                }
            }
            Ok(())
        }
        (Cursor::Array(array), PathSegment::Index(i)) => {
            let len = array.len();
            match array.get_mut(*i) {
                Some(old) => {
                    *value.decor_mut() = old.decor().clone();
                    *old = value;
                    Ok(())
                }
                None => Err(fail(depth, out_of_range(*i, len, &o.path[..depth]))),
            }
        }
        (Cursor::Tables(_), PathSegment::Index(_)) => Err(fail(
            depth,
            format!("`{}` is a whole [[table]] entry; set its keys one by one", o.key()),
        )),
        (Cursor::Table { .. }, PathSegment::Index(_)) => {
            Err(fail(depth, "a table cannot be indexed with [N]".to_owned()))
        }
        (Cursor::Array(_) | Cursor::Tables(_), PathSegment::Key(_)) => {
            let parent = format_path(&o.path[..depth]);
            Err(fail(
                depth,
                format!("`{parent}` is an array: pick an element with `{parent}[N]` first"),
            ))
        }
    }
}

fn out_of_range(index: usize, len: usize, array_path: &[PathSegment]) -> String {
    let entries = if len == 1 { "entry" } else { "entries" };
    format!("index {index} is out of range: `{}` has {len} {entries}", format_path(array_path))
}

/// Where the walk down a key path is.
enum Cursor<'a> {
    /// A standard or (when `inline`) inline table.
    Table {
        table: &'a mut dyn TableLike,
        inline: bool,
    },
    Array(&'a mut toml_edit::Array),
    Tables(&'a mut toml_edit::ArrayOfTables),
}

impl<'a> Cursor<'a> {
    fn from_item(item: &'a mut Item) -> Option<Self> {
        match item {
            Item::Table(table) => Some(Cursor::Table { table, inline: false }),
            Item::ArrayOfTables(a) => Some(Cursor::Tables(a)),
            Item::Value(v) => Cursor::from_value(v),
            Item::None => None,
        }
    }

    fn from_value(value: &'a mut Value) -> Option<Self> {
        match value {
            Value::InlineTable(table) => Some(Cursor::Table { table, inline: true }),
            Value::Array(a) => Some(Cursor::Array(a)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn path(text: &str) -> Vec<PathSegment> {
        parse_key_path(text).unwrap()
    }

    #[test]
    fn key_paths_parse_and_print() {
        use PathSegment::{Index, Key};
        assert_eq!(path("concurrent"), vec![Key("concurrent".into())]);
        assert_eq!(
            path("runners[1].machine.IdleCount"),
            vec![Key("runners".into()), Index(1), Key("machine".into()), Key("IdleCount".into())]
        );
        assert_eq!(
            path("a.\"b.c\"[2][3]"),
            vec![Key("a".into()), Key("b.c".into()), Index(2), Index(3)]
        );
        for text in ["runners[0].docker.volumes[1]", "gitlab.pickup", "a.\"b.c\"[2]"] {
            assert_eq!(format_path(&path(text)), text);
        }
        for bad in ["", ".a", "a.", "a..b", "a[x]", "a[-1]", "a[1", "a b", "[0]", "a.\"b"] {
            assert!(parse_key_path(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn values_are_toml_or_plain_strings() {
        let v = |arg: &str| parse_override(arg).unwrap().value;
        assert_eq!(v("concurrent=8").as_integer(), Some(8));
        assert_eq!(v("a=true").as_bool(), Some(true));
        assert_eq!(v("a=1.5").as_float(), Some(1.5));
        assert_eq!(v("a=\"x\"").as_str(), Some("x"));
        assert_eq!(v("gitlab.pickup=immediate").as_str(), Some("immediate"));
        assert_eq!(v("a=x=y").as_str(), Some("x=y"));
        let list = v("a=[\"a\",\"b\"]");
        let items: Vec<_> = list.as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(items, ["a", "b"]);
        let o = parse_override(" runners[0].limit = 4 ").unwrap();
        assert_eq!(o.key(), "runners[0].limit");
        assert_eq!(o.value.as_integer(), Some(4));
    }

    #[test]
    fn bad_arguments_name_the_set_pseudo_file() {
        for bad in ["concurrent", "=3", "runners[x].limit=3", "a..b=1"] {
            let err = parse_override(bad).unwrap_err();
            assert_eq!(err.file, Path::new("--set"), "{bad}");
        }
    }

    const DOC: &str = "concurrent = 5 # jobs\n[[runners]]\n  name = \"a\"\n  [runners.docker]\n    volumes = [\"/cache\"]\n";

    fn apply(doc: &str, arg: &str) -> Result<String, InputError> {
        let mut doc: DocumentMut = doc.parse().unwrap();
        apply_override(&mut doc, &parse_override(arg).unwrap())?;
        Ok(doc.to_string())
    }

    #[test]
    fn overrides_replace_values_in_place() {
        let out = apply(DOC, "concurrent=8").unwrap();
        assert_eq!(out, DOC.replace("5 # jobs", "8 # jobs"));
        let out = apply(DOC, "runners[0].docker.volumes[0]=\"/other\"").unwrap();
        assert_eq!(out, DOC.replace("[\"/cache\"]", "[\"/other\"]"));
    }

    #[test]
    fn overrides_create_missing_tables() {
        let out = apply(DOC, "runners[0].machine.IdleCount=2").unwrap();
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(parsed["runners"][0]["machine"]["IdleCount"].as_integer(), Some(2));
        assert_eq!(parsed["runners"][0]["name"].as_str(), Some("a"));
        let out = apply(DOC, "gitlab.pickup=immediate").unwrap();
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(parsed["gitlab"]["pickup"].as_str(), Some("immediate"));
        assert!(out.starts_with("concurrent = 5 # jobs\n[[runners]]\n  name = \"a\"\n"));
    }

    #[test]
    fn overrides_refuse_bad_paths() {
        let err = apply(DOC, "runners[3].limit=4").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("runners[3]"));
        assert!(err.message.contains("index 3 is out of range: `runners` has 1 entry"), "{err}");
        let err = apply(DOC, "runners[0].docker.volumes[5]=\"x\"").unwrap_err();
        assert!(err.message.contains("out of range"), "{err}");
        let err = apply(DOC, "concurrent.x=1").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("concurrent"));
        assert!(err.message.contains("is a value, not a table"), "{err}");
        let err = apply(DOC, "nothing[0].x=1").unwrap_err();
        assert!(err.message.contains("does not exist"), "{err}");
        let err = apply(DOC, "runners.limit=1").unwrap_err();
        assert!(err.message.contains("is an array"), "{err}");
        let err = apply(DOC, "runners[0]=1").unwrap_err();
        assert!(err.message.contains("whole [[table]] entry"), "{err}");
        let err = apply(DOC, "runners=1").unwrap_err();
        assert!(err.message.contains("array of [[tables]]"), "{err}");
    }
}
