//! The CSV record parser shared by votes and gold files: one record at a time, the header, and
//! the helpers that turn a byte offset into a line number for messages.

use crate::error::{Error, Result};
use std::borrow::Cow;
use std::path::Path;

/// One CSV record parser for votes and gold files. Returns the position after the record
/// (past its line end) and fills `fields`. Unquoted fields are trimmed of spaces and tabs.
pub(super) fn next_record<'a>(
    buf: &'a [u8],
    mut pos: usize,
    end: usize,
    fields: &mut Vec<Cow<'a, [u8]>>,
) -> std::result::Result<usize, &'static str> {
    fields.clear();
    loop {
        // One field.
        let mut p = pos;
        while p < end && (buf[p] == b' ' || buf[p] == b'\t') {
            p += 1;
        }
        if p < end && buf[p] == b'"' {
            p += 1;
            let s = p;
            let mut owned: Option<Vec<u8>> = None;
            loop {
                if p >= end {
                    return Err("unterminated quoted field");
                }
                if buf[p] == b'"' {
                    if p + 1 < end && buf[p + 1] == b'"' {
                        let o = owned.get_or_insert_with(|| buf[s..p].to_vec());
                        o.push(b'"');
                        p += 2;
                        continue;
                    }
                    break;
                }
                if let Some(o) = owned.as_mut() {
                    o.push(buf[p]);
                }
                p += 1;
            }
            let field = match owned {
                Some(o) => Cow::Owned(o),
                None => Cow::Borrowed(&buf[s..p]),
            };
            p += 1; // closing quote
            while p < end && (buf[p] == b' ' || buf[p] == b'\t' || buf[p] == b'\r') {
                p += 1;
            }
            fields.push(field);
            if p >= end {
                return Ok(end);
            }
            match buf[p] {
                b',' => pos = p + 1,
                b'\n' => return Ok(p + 1),
                _ => return Err("unexpected character after a closing quote"),
            }
        } else {
            let s = p;
            while p < end && buf[p] != b',' && buf[p] != b'\n' {
                p += 1;
            }
            let mut e = p;
            while e > s && matches!(buf[e - 1], b' ' | b'\t' | b'\r') {
                e -= 1;
            }
            fields.push(Cow::Borrowed(&buf[s..e]));
            if p >= end {
                return Ok(end);
            }
            if buf[p] == b'\n' {
                return Ok(p + 1);
            }
            pos = p + 1;
        }
    }
}

pub(super) fn is_blank(fields: &[Cow<[u8]>]) -> bool {
    fields.len() == 1 && fields[0].is_empty()
}

pub(super) fn line_of(buf: &[u8], offset: usize) -> u64 {
    buf[..offset.min(buf.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
        + 1
}

pub(super) fn show(field: &[u8]) -> String {
    let s = String::from_utf8_lossy(field);
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.into_owned()
    }
}

/// Reads the header: returns the column layout and the offset where the data starts.
pub(super) fn read_header(
    path: &Path,
    buf: &[u8],
    start: usize,
    required: &[&str],
    optional: &[&str],
) -> Result<(Vec<Option<usize>>, usize, usize)> {
    let mut fields = Vec::new();
    let mut pos = start;
    let wanted: Vec<&str> = required.iter().chain(optional).copied().collect();
    let usage = format!(
        "expected a header line naming the columns {}{}",
        required.join(","),
        if optional.is_empty() {
            String::new()
        } else {
            format!("[,{}]", optional.join(","))
        }
    );
    while pos < buf.len() {
        let line_start = pos;
        pos = next_record(buf, pos, buf.len(), &mut fields).map_err(|p| Error::Row {
            path: path.to_path_buf(),
            line: line_of(buf, line_start),
            problem: format!("header: {p}"),
        })?;
        if is_blank(&fields) {
            continue;
        }
        let names: Vec<String> = fields
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_ascii_lowercase())
            .collect();
        let mut cols = vec![None; wanted.len()];
        for (i, name) in names.iter().enumerate() {
            if let Some(k) = wanted.iter().position(|w| w == name) {
                if cols[k].is_some() {
                    return Err(Error::Row {
                        path: path.to_path_buf(),
                        line: line_of(buf, line_start),
                        problem: format!("header names the column `{name}` twice"),
                    });
                }
                cols[k] = Some(i);
            }
        }
        if cols[..required.len()].iter().any(Option::is_none) {
            return Err(Error::Row {
                path: path.to_path_buf(),
                line: line_of(buf, line_start),
                problem: format!("{usage}; found `{}`", show(&buf[line_start..pos]).trim()),
            });
        }
        return Ok((cols, names.len(), pos));
    }
    Err(Error::format(path, format!("empty file: {usage}")))
}

pub(super) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

pub(super) fn skip_bom(buf: &[u8]) -> usize {
    if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    }
}
