//! Opening input files: the one gate every command's inputs pass through.
//!
//! An input must be a regular file (after symlinks): a FIFO would block forever, and
//! `/dev/zero` or `/dev/urandom` would be read without end. Files read whole (scenarios,
//! `config.toml`, generator models, GitLab jobs JSON pages, `summary.json`, shard files)
//! must also be at most [`MAX_TEXT_BYTES`]; traces are streamed row by row and have no size
//! limit.

use std::fs::File;
use std::path::Path;

use crate::input_error::InputError;

/// The largest input read whole into memory: 64 MiB. The biggest real inputs are GitLab
/// jobs API pages (100 jobs each, well under 1 MiB) and `config.toml` files of a few KiB.
pub const MAX_TEXT_BYTES: u64 = 64 << 20;

/// Opens `path` for reading after checking it is a regular file. `what` names the input in
/// messages ("the trace", "the scenario").
///
/// # Errors
/// When the file does not exist, cannot be opened, or is not a regular file.
pub fn open_regular(path: &Path, what: &str) -> Result<File, InputError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| InputError::file(path, format!("cannot read {what}: {e}")))?;
    if !meta.is_file() {
        let kind = file_kind(&meta);
        return Err(InputError::file(
            path,
            format!("cannot read {what}: it is {kind}, not a regular file"),
        ));
    }
    File::open(path).map_err(|e| InputError::file(path, format!("cannot read {what}: {e}")))
}

/// Reads a whole text input after checking it is a regular file of at most
/// [`MAX_TEXT_BYTES`] and valid UTF-8.
///
/// # Errors
/// As [`open_regular`], and when the file is too big or not UTF-8.
pub fn read_text(path: &Path, what: &str) -> Result<String, InputError> {
    use std::io::Read;
    let file = open_regular(path, what)?;
    let mut bytes = Vec::new();
    // Read one byte more than the limit: the size in the metadata may change under us.
    file.take(MAX_TEXT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| InputError::file(path, format!("cannot read {what}: {e}")))?;
    if bytes.len() as u64 > MAX_TEXT_BYTES {
        return Err(InputError::file(
            path,
            format!(
                "{what} is larger than {} MiB, the limit for files read whole",
                MAX_TEXT_BYTES >> 20
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.into_bytes()[..offset]).into_owned();
        InputError::file(path, format!("{what} is not valid UTF-8")).at_offset(&text, offset)
    })
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_directories_are_refused() {
        let e = read_text(Path::new("/dev/zero"), "the scenario").unwrap_err();
        assert!(e.to_string().contains("a character device, not a regular file"), "{e}");
        let e = open_regular(Path::new("/"), "the trace").unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f");
        let ok =
            std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
        if ok {
            let e = read_text(&fifo, "config.toml").unwrap_err();
            assert!(e.to_string().contains("FIFO"), "{e}");
        }
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.toml");
        std::fs::write(&p, b"a = 1\nb = \"\xff\"\n").unwrap();
        let e = read_text(&p, "config.toml").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }
}
