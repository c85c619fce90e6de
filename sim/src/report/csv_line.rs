//! A CSV row builder for the hot output paths (`jobs.csv`, `timeline.csv`): numbers are
//! formatted with `itoa` into one reused buffer, text fields are escaped once up front, and
//! the finished line goes to a buffered writer. No allocation per row.

use std::io::{self, Write};

/// Builds one CSV line at a time.
#[derive(Default)]
pub struct CsvLine {
    buf: Vec<u8>,
    ints: itoa::Buffer,
}

impl std::fmt::Debug for CsvLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvLine").field("buf", &String::from_utf8_lossy(&self.buf)).finish()
    }
}

impl CsvLine {
    /// Starts a new line.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    fn sep(&mut self) {
        if !self.buf.is_empty() {
            self.buf.push(b',');
        }
    }

    /// Appends an unsigned integer field.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(self.ints.format(v).as_bytes());
        self
    }

    /// Appends a fixed-point field: `thousandths / 1000` with exactly three decimals
    /// (milliseconds as seconds, averages in thousandths).
    pub fn milli(&mut self, thousandths: u64) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(self.ints.format(thousandths / 1000).as_bytes());
        let frac = thousandths % 1000;
        self.buf.extend_from_slice(&[
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ]);
        self
    }

    /// Appends a field already escaped with [`escape`].
    pub fn escaped(&mut self, field: &[u8]) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(field);
        self
    }

    /// Writes the line and a newline.
    pub fn write_to(&mut self, out: &mut impl Write) -> io::Result<()> {
        self.buf.push(b'\n');
        out.write_all(&self.buf)
    }
}

/// Escapes a text field as CSV does: quoted when it holds a comma, quote or line break.
pub fn escape(field: &str) -> Vec<u8> {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\"")).into_bytes()
    } else {
        field.as_bytes().to_vec()
    }
}

/// Writes a header line of plain names.
pub fn write_header(out: &mut impl Write, names: &[&str]) -> io::Result<()> {
    let mut line = CsvLine::default();
    for n in names {
        line.escaped(&escape(n));
    }
    line.write_to(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_escaped_text() {
        let mut line = CsvLine::default();
        let mut out = Vec::new();
        line.u64(42).milli(1234).milli(7).escaped(&escape("a,\"b\"")).write_to(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "42,1.234,0.007,\"a,\"\"b\"\"\"\n");
        let mut rdr = csv::Reader::from_reader("h1,h2\n\"a,\"\"b\"\"\",x\n".as_bytes());
        let rec = rdr.records().next().unwrap().unwrap();
        assert_eq!(&rec[0], "a,\"b\"", "our escaping is what csv readers expect");
    }
}
