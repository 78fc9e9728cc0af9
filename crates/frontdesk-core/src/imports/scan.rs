//! The quick scan that refuses a bad file before any work: size, rows,
//! encoding, binary content, delimiter.

use std::io::Read;

use crate::authz::Actor;

use super::*;

pub(super) fn reader<R: Read>(source: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(256 * 1024)
        .from_reader(source)
}

pub(super) fn csv_error(row: u64, e: csv::Error) -> ImportError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => ImportError::Io(io),
        other => ImportError::Malformed {
            row,
            message: format!("{other:?}"),
        },
    }
}

/// Refuses a file that is not a CSV of users, before any work: checks the
/// header, every record's encoding, binary content and the row limit.
pub(super) fn scan<R: Read>(
    source: &mut R,
    config: &ImportConfig,
    actor: &Actor,
    ignore_unknown_columns: bool,
) -> Result<(Header, u64), ImportError> {
    // A first look at the raw bytes catches binary files (images, workbooks)
    // before the CSV parser splits them into odd records.
    let mut head = vec![0u8; 8192];
    let n = read_prefix(source, &mut head)?;
    if n == 0 {
        return Err(ImportError::Empty);
    }
    if head[..n].starts_with(b"PK\x03\x04") {
        return Err(ImportError::Binary {
            row: 1,
            what: "a ZIP archive, e.g. an Excel workbook: save it as CSV",
        });
    }
    if let Some(at) = head[..n].iter().position(|b| is_binary_byte(*b)) {
        let row = 1 + head[..at].iter().filter(|b| **b == b'\n').count() as u64;
        let what = if head[at] == 0 {
            "a NUL byte"
        } else {
            "a control byte"
        };
        return Err(ImportError::Binary { row, what });
    }
    let chained = std::io::Read::chain(&head[..n], source);
    let mut rdr = reader(chained);
    let mut rec = csv::ByteRecord::new();
    let mut row = 1u64;
    if !rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(row, e))?
    {
        return Err(ImportError::Empty);
    }
    check_bytes(row, &rec)?;
    let header = Header::parse(&rec, config, actor, ignore_unknown_columns)?;
    let mut rows = 0u64;
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(row + 1, e)),
        }
        row += 1;
        rows += 1;
        if rows > config.max_rows {
            return Err(ImportError::TooManyRows {
                max: config.max_rows,
            });
        }
        check_bytes(row, &rec)?;
    }
    Ok((header, rows))
}

pub(super) fn read_prefix<R: Read>(source: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match source.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub(super) fn is_binary_byte(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f
}

/// Binary content (NUL and other control bytes) and invalid UTF-8 refuse the file.
pub(super) fn check_bytes(row: u64, rec: &csv::ByteRecord) -> Result<(), ImportError> {
    let bytes = rec.as_slice();
    if let Some(b) = bytes.iter().find(|b| is_binary_byte(**b)) {
        let what = if *b == 0 {
            "a NUL byte"
        } else {
            "a control byte"
        };
        return Err(ImportError::Binary { row, what });
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
        return Err(ImportError::NotUtf8 { row, byte });
    }
    Ok(())
}
