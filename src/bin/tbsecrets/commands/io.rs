//! Bounded reading of the CLI's inputs: documents, policies and values from files or stdin,
//! never more than the store's limits allow.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use tbsecrets::placeholder::MAX_DOCUMENT_BYTES;
use tbsecrets::{Error, Limits, Result, SecretType};
use zeroize::Zeroizing;

/// Reads a UTF-8 text file (a document or a policy) of at most
/// [`MAX_DOCUMENT_BYTES`](tbsecrets::placeholder::MAX_DOCUMENT_BYTES).
pub(super) fn read_text(path: &Path) -> Result<String> {
    let what = path.display().to_string();
    let file = open_file(path, &what)?;
    let bytes = read_bounded(file, MAX_DOCUMENT_BYTES, &what, "")?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::invalid(format!("{what} is not UTF-8 text")))
}

/// Opens a file to read; a directory or an unreadable file is `INVALID_ARGUMENT`.
pub(super) fn open_file(path: &Path, what: &str) -> Result<std::fs::File> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::invalid(format!("cannot read {what}: {e}")))?;
    let is_dir = file.metadata().is_ok_and(|m| m.is_dir());
    if is_dir {
        return Err(Error::invalid(format!(
            "cannot read {what}: it is a directory, not a file"
        )));
    }
    Ok(file)
}

/// Reads all of `reader` if it holds at most `limit` bytes; otherwise `INVALID_ARGUMENT`
/// (its message ends with `rule`) after reading `limit + 1` bytes, never more (stdin or
/// `/dev/zero` cannot exhaust memory). The buffer is zeroized when dropped, and so is every
/// smaller buffer it outgrew.
pub(super) fn read_bounded(
    reader: impl Read,
    limit: usize,
    what: &str,
    rule: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let cap = limit.saturating_add(1);
    let mut reader = reader.take(u64::try_from(cap).unwrap_or(u64::MAX));
    let mut buf = Zeroizing::new(Vec::with_capacity(cap.min(64 * 1024)));
    while buf.len() < cap {
        if buf.len() == buf.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                buf.capacity().saturating_mul(2).clamp(buf.len() + 1, cap),
            ));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        let len = buf.len();
        // Read into the spare capacity (no reallocation: the length stays within it).
        let capacity = buf.capacity();
        buf.resize(capacity, 0);
        let read = reader.read(&mut buf[len..]);
        buf.truncate(len + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::invalid(format!("cannot read {what}: {e}"))),
        }
    }
    if buf.len() > limit {
        return Err(Error::invalid(format!(
            "{what} is larger than the limit of {limit} bytes{rule}"
        )));
    }
    Ok(buf)
}

/// Reads a value of `secret_type` from a file or stdin into a zeroizing buffer, reading at
/// most one byte more than the store's limit allows: a TEXT_FILE value has at most
/// `max_file_bytes` bytes; a TEXT value of `max_text_chars` characters at most 4 bytes per
/// character, plus the line break that ends typed input. The exact check is the store's.
pub(super) fn read_value(
    file: Option<&Path>,
    secret_type: SecretType,
    limits: &Limits,
) -> Result<Zeroizing<Vec<u8>>> {
    let (limit, rule) = match secret_type {
        SecretType::Text => (
            limits.max_text_chars.saturating_mul(4).saturating_add(2),
            format!(
                " (a TEXT value has at most {} characters)",
                limits.max_text_chars
            ),
        ),
        SecretType::TextFile => (
            limits.max_file_bytes,
            format!(
                " (a TEXT_FILE value has at most {} bytes)",
                limits.max_file_bytes
            ),
        ),
    };
    match file {
        Some(path) => {
            let what = format!("value file {}", path.display());
            read_bounded(open_file(path, &what)?, limit, &what, &rule)
        }
        None => {
            // Unbuffered (a duplicate of fd 0): the lock's buffer would read ahead of the limit.
            let stdin = std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Error::invalid(format!("cannot read the value on stdin: {e}")))?;
            read_bounded(
                std::fs::File::from(stdin),
                limit,
                "the value on stdin",
                &rule,
            )
        }
    }
}
