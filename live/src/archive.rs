//! Cache archives: zip, as GitLab Runner's `cache-archiver` writes them (reference §4.6), and
//! the tar streams Docker's archive API speaks.
//!
//! ```text
//!   save:    container dir ──docker GET archive (tar)──► tar_to_zip ──► cache.zip ──► S3 / volume
//!   restore: S3 / volume ──► cache.zip ──► zip_to_tar (every entry checked) ──docker PUT archive──► container dir
//! ```
//!
//! Entry names are relative to the job's build directory, as in GitLab's archives
//! (`node_modules/...`). An entry that would land outside the target directory — an absolute
//! path, a `..` component, a symbolic link — is refused before anything is written
//! ("zip slip"): the whole archive is rejected and the restore counts as a miss.

use std::io::{Cursor, Read, Write};

use zip::write::SimpleFileOptions;

/// Why an archive could not be converted.
#[derive(Debug)]
pub enum ArchiveError {
    /// An entry would land outside the target directory (or is a link): refused.
    Unsafe {
        /// The entry's name as stored in the archive.
        entry: String,
    },
    /// The bytes are not a readable archive.
    Corrupt(String),
}

impl std::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveError::Unsafe { entry } => {
                write!(f, "archive entry {entry:?} would land outside the target directory")
            }
            ArchiveError::Corrupt(e) => write!(f, "unreadable archive: {e}"),
        }
    }
}

impl std::error::Error for ArchiveError {}

/// Whether `name` is a plain relative path that stays inside its directory.
pub fn is_safe_entry(name: &str) -> bool {
    if name.is_empty() || name.starts_with('/') || name.starts_with('\\') || name.contains('\0') {
        return false;
    }
    // Windows drive letters and backslash separators are refused too: GitLab's extractor
    // runs on Windows helpers as well, where `a\..\..\x` escapes.
    if name.as_bytes().get(1) == Some(&b':') {
        return false;
    }
    name.split(['/', '\\']).all(|part| part != "..")
}

/// Converts a tar stream (from Docker's archive API) into a zip archive; returns the zip and
/// the bytes of file content it holds.
pub fn tar_to_zip(tar_bytes: &[u8]) -> Result<(Vec<u8>, u64), ArchiveError> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    // Deflate at the fastest level: GitLab's default format is zip with fastzip's default
    // (deflate); the level matters little next to the transfer.
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    let mut content = 0u64;
    let mut archive = tar::Archive::new(tar_bytes);
    let entries = archive.entries().map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
    let mut buf = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| ArchiveError::Corrupt(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        if !is_safe_entry(&name) {
            return Err(ArchiveError::Unsafe { entry: name });
        }
        let corrupt = |e: zip::result::ZipError| ArchiveError::Corrupt(e.to_string());
        match entry.header().entry_type() {
            tar::EntryType::Directory => zip.add_directory(name, opts).map_err(corrupt)?,
            tar::EntryType::Regular => {
                buf.clear();
                entry.read_to_end(&mut buf).map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
                content += buf.len() as u64;
                zip.start_file(name, opts).map_err(corrupt)?;
                zip.write_all(&buf).map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
            }
            // Links and devices are not cache content the jobs here write.
            _ => return Err(ArchiveError::Unsafe { entry: name }),
        }
    }
    let out = zip.finish().map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
    Ok((out.into_inner(), content))
}

/// Appends directory entries for every ancestor of `path` not yet written: Docker's archive
/// upload needs the directories to exist.
fn append_parents(
    tar: &mut tar::Builder<Vec<u8>>,
    written: &mut std::collections::BTreeSet<String>,
    path: &str,
) -> std::io::Result<()> {
    let mut end = 0;
    while let Some(i) = path[end..].find('/') {
        end += i + 1;
        let dir = &path[..end];
        if written.insert(dir.to_owned()) {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            header.set_cksum();
            tar.append_data(&mut header, dir, std::io::empty())?;
        }
    }
    Ok(())
}

/// Converts a zip archive into a tar stream for Docker's archive API, each entry under
/// `prefix` (e.g. `builds/j12/`), refusing the whole archive if any entry is unsafe; returns
/// the tar and the bytes of file content.
pub fn zip_to_tar(zip_bytes: &[u8], prefix: &str) -> Result<(Vec<u8>, u64), ArchiveError> {
    let corrupt = |e: zip::result::ZipError| ArchiveError::Corrupt(e.to_string());
    let mut zip = zip::ZipArchive::new(Cursor::new(zip_bytes)).map_err(corrupt)?;
    // Check every name before converting anything, so a refused archive writes nothing.
    for i in 0..zip.len() {
        let f = zip.by_index_raw(i).map_err(corrupt)?;
        if !is_safe_entry(f.name()) || f.is_symlink() {
            return Err(ArchiveError::Unsafe { entry: f.name().to_owned() });
        }
    }
    let mut tar = tar::Builder::new(Vec::new());
    let mut written = std::collections::BTreeSet::new();
    let io = |e: std::io::Error| ArchiveError::Corrupt(e.to_string());
    let mut content = 0u64;
    let mut buf = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(corrupt)?;
        let name = format!("{prefix}{}", f.name());
        append_parents(&mut tar, &mut written, &name).map_err(io)?;
        if f.is_dir() && !written.insert(name.clone()) {
            continue;
        }
        let mut header = tar::Header::new_gnu();
        if f.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            header.set_cksum();
            tar.append_data(&mut header, &name, std::io::empty())
                .map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
        } else {
            buf.clear();
            f.read_to_end(&mut buf).map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
            content += buf.len() as u64;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(buf.len() as u64);
            header.set_cksum();
            tar.append_data(&mut header, &name, buf.as_slice())
                .map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
        }
    }
    let out = tar.into_inner().map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
    Ok((out, content))
}

/// A tar holding one regular file `name` with `data`, and its parent directories (to place
/// `cache.zip` in a volume).
pub fn single_file_tar(name: &str, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    append_parents(&mut tar, &mut std::collections::BTreeSet::new(), name)?;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    header.set_cksum();
    tar.append_data(&mut header, name, data)?;
    tar.into_inner()
}

/// The content of the one regular file in a tar stream (Docker's archive API wraps a single
/// file in a tar).
pub fn tar_single_file(tar_bytes: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type() == tar::EntryType::Regular {
            let mut out = Vec::new();
            entry.read_to_end(&mut out)?;
            return Ok(Some(out));
        }
    }
    Ok(None)
}

/// A zip whose one entry has an arbitrary (possibly unsafe) name: for tests of the refusal.
pub fn zip_with_entry(name: &str, data: &[u8]) -> Result<Vec<u8>, ArchiveError> {
    let corrupt = |e: zip::result::ZipError| ArchiveError::Corrupt(e.to_string());
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file(name, SimpleFileOptions::default()).map_err(corrupt)?;
    zip.write_all(data).map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
    Ok(zip.finish().map_err(corrupt)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        assert!(is_safe_entry("cache/cache.bin"));
        assert!(is_safe_entry("node_modules/a..b/x"));
        for bad in ["../x", "a/../../x", "/etc/passwd", "a\\..\\..\\x", "C:/x", "", "a/.."] {
            assert!(!is_safe_entry(bad), "{bad}");
        }
    }

    #[test]
    fn round_trip_keeps_content() {
        let data = vec![7u8; 10_000];
        let tar = single_file_tar("cache/cache.bin", &data).unwrap();
        let (zip, n) = tar_to_zip(&tar).unwrap();
        assert_eq!(n, 10_000);
        assert!(zip.len() < 1_000, "deflate compresses a run of sevens");
        let (tar2, n2) = zip_to_tar(&zip, "builds/j1/").unwrap();
        assert_eq!(n2, 10_000);
        assert_eq!(tar_single_file(&tar2).unwrap().unwrap(), data);
    }

    #[test]
    fn zip_slip_is_refused() {
        for bad in ["../../etc/cron.d/x", "/abs/path", "cache/../../../x"] {
            let zip = zip_with_entry(bad, b"owned").unwrap();
            match zip_to_tar(&zip, "") {
                Err(ArchiveError::Unsafe { entry }) => assert_eq!(entry, bad),
                other => panic!("{bad}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(matches!(zip_to_tar(b"not a zip", ""), Err(ArchiveError::Corrupt(_))));
    }
}
