//! The one error type for bad input files: it names the file, the line (and column where
//! known), the key or column, and says what was expected. Every reader in this crate returns
//! it, so the binary can print one consistent message and exit with code 2.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with an input file (scenario, `config.toml`, trace) or a command-line override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file the problem is in, or a pseudo-path naming a flag: `--window`, `--set`, or
    /// `--set KEY=VALUE` for a value an override set, `--vary KEY=VALUE` for a value of a
    /// grid (the key is then not printed again).
    pub file: PathBuf,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// 1-based column, where known.
    pub column: Option<usize>,
    /// The key (TOML dotted path such as `runners[0].limit`) or CSV column, where known.
    pub key: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl InputError {
    /// An error about a whole file (it cannot be read, it is empty, …).
    pub fn file(file: impl AsRef<Path>, message: impl Into<String>) -> Self {
        InputError {
            file: file.as_ref().to_path_buf(),
            line: None,
            column: None,
            key: None,
            message: message.into(),
        }
    }

    /// Sets the line (1-based).
    #[must_use]
    pub fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// Sets the line and column (1-based).
    #[must_use]
    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    /// Sets the key or column name.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Computes the 1-based line and column of byte `offset` in `text` and sets them.
    #[must_use]
    pub fn at_offset(self, text: &str, offset: usize) -> Self {
        let (line, column) = line_column(text, offset);
        self.at(line, column)
    }
}

impl InputError {
    /// A TOML syntax error at byte `offset` of `text`. When a string before it is never closed
    /// (an unbalanced quote), the parser may only notice a line or more later (or at the end
    /// of a CRLF line): the error then points at the opening quote and says where the parser
    /// stopped.
    pub fn toml_syntax(file: impl AsRef<Path>, text: &str, message: &str, offset: usize) -> Self {
        let error = InputError::file(file, message.trim());
        let (line, _) = line_column(text, offset);
        match unclosed_string(text, offset) {
            Some(open) => {
                let message = if line_column(text, open).0 < line {
                    format!(
                        "{}: a string opens here and is not closed (the parser stopped at \
                         line {line})",
                        error.message
                    )
                } else {
                    format!("{}: a string opens here and is not closed on its line", error.message)
                };
                InputError { message, ..error }.at_offset(text, open)
            }
            None => error.at_offset(text, offset),
        }
    }
}

/// The offset of the first quote in `text[..end]` that opens a TOML string which is not
/// closed where it must be: a basic or literal string by the end of its line, a multi-line
/// one by `end`. Comments are skipped.
fn unclosed_string(text: &str, end: usize) -> Option<usize> {
    let bytes = &text.as_bytes()[..end.min(text.len())];
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let open = i;
                let delim: &[u8] = if q == b'"' { b"\"\"\"" } else { b"'''" };
                let triple = bytes[i..].starts_with(delim);
                i += if triple { 3 } else { 1 };
                loop {
                    if i >= bytes.len() {
                        return Some(open);
                    }
                    match bytes[i] {
                        b'\\' if q == b'"' => i += 2,
                        b'\n' if !triple => return Some(open),
                        c if c == q && !triple => {
                            i += 1;
                            break;
                        }
                        c if c == q && bytes[i..].starts_with(delim) => {
                            i += 3;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(key) = &self.key {
            // `--set runners[0].limit=abc` (or `--vary …`) already names the key.
            let file = self.file.to_string_lossy();
            if !file.starts_with("--set ") && !file.starts_with("--vary ") {
                write!(f, ": `{key}`")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InputError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 9), (2, 4));
    }

    #[test]
    fn an_unbalanced_quote_is_reported_where_it_opens() {
        // The parser notices the missing quote on line 3; the quote opens on line 2.
        let text = "a = 1\nb = [\"x\", \"y]\nc = 2\n";
        let e = InputError::toml_syntax("x.toml", text, "missing comma", text.find("c =").unwrap());
        assert_eq!((e.line, e.column), (Some(2), Some(11)), "{e}");
        assert!(e.message.contains("stopped at line 3"), "{e}");
        let text = "a = 1\r\nb = '''abc\r\n\r\n";
        let e = InputError::toml_syntax("x.toml", text, "invalid", text.len());
        assert_eq!(e.line, Some(2), "{e}");
        // A closed string, a comment with a quote, an error on a later line.
        let text = "a = \"x\" # it's\nb = \"y\\\"\" = 3\n";
        let e = InputError::toml_syntax("x.toml", text, "bad", text.find("= 3").unwrap());
        assert_eq!(e.line, Some(2), "{e}");
        assert!(!e.message.contains("opens here"), "{e}");
    }

    #[test]
    fn crlf_lines_count_once() {
        let text = "a = 1\r\nbb = 2\r\n";
        assert_eq!(line_column(text, text.find("bb").unwrap()), (2, 1));
    }

    #[test]
    fn display_names_file_line_and_key() {
        let e = InputError::file("x.toml", "expected an integer ≥ 1").at(3, 5).key("concurrent");
        assert_eq!(e.to_string(), "x.toml:3:5: `concurrent`: expected an integer ≥ 1");
    }
}
