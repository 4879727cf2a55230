//! The `.npy` header: its fixed part, the Python dict literal that describes the array, and
//! the header NumPy would write for an array.

use crate::error::{Error, Result};
use std::path::Path;

pub(super) const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// A shape as Python prints it: `(3, 4)`, `(7,)`.
pub(super) fn shape_text<T: std::fmt::Display>(shape: &[T]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    }
}

/// A parsed header: the element type string, the order and the shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) descr: String,
    pub(super) fortran_order: bool,
    pub(super) shape: Vec<u64>,
    /// Bytes before the data (magic, version, length, dict and padding).
    pub(super) data_offset: usize,
}

/// An element type code split into byte order, kind and size: `<f4` -> ('<', 'f', 4).
pub(super) fn split_descr(descr: &str) -> Option<(char, char, usize)> {
    let mut chars = descr.chars();
    let first = chars.next()?;
    let (order, rest) = if "<>|=".contains(first) {
        (first, chars.as_str())
    } else {
        ('=', descr)
    };
    let mut rest_chars = rest.chars();
    let kind = rest_chars.next()?;
    // `|O` (objects) has no size.
    let size: usize = match rest_chars.as_str() {
        "" => 0,
        digits => digits.parse().ok()?,
    };
    Some((order, kind, size))
}

/// Whether `order` means little-endian data of `size` bytes (order is moot for one byte).
pub(super) fn little_endian(order: char, size: usize) -> bool {
    size == 1 || order == '<' || (order == '=' && cfg!(target_endian = "little"))
}

/// Reads and checks the fixed part and the dict of a header from the first bytes of a file.
pub(super) fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header> {
    let bad = |problem: String| Error::format(path, format!("not a valid .npy file: {problem}"));
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("it does not start with NumPy's magic string".into()));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(Error::format(
                    path,
                    "truncated: the file ends inside its header",
                ));
            }
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (len as usize, 12)
        }
        _ => {
            return Err(bad(format!(
                "format version {major}.{minor} is not 1.0, 2.0 or 3.0"
            )))
        }
    };
    let end = start
        .checked_add(len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| Error::format(path, "truncated: the file ends inside its header"))?;
    // Versions 1 and 2 are latin-1, 3 is UTF-8; a valid header is ASCII in either.
    let text = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| bad("the header is not text".into()))?;
    let mut dict = DictParser::new(text);
    let fields = dict.dict().map_err(|e| bad(format!("header {e}")))?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in fields {
        let slot_taken = match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr.replace(s).is_some(),
            ("descr", Value::List) => {
                return Err(Error::format(
                    path,
                    "structured dtypes (records) are not supported: save a plain 2-D matrix",
                ))
            }
            ("fortran_order", Value::Bool(b)) => fortran.replace(b).is_some(),
            ("shape", Value::Tuple(t)) => shape.replace(t).is_some(),
            (k, _) => return Err(bad(format!("unexpected key or value for '{k}'"))),
        };
        if slot_taken {
            return Err(bad(format!("key '{key}' appears twice")));
        }
    }
    match (descr, fortran, shape) {
        (Some(descr), Some(fortran_order), Some(shape)) => Ok(Header {
            descr,
            fortran_order,
            shape,
            data_offset: end,
        }),
        _ => Err(bad(
            "the header must hold 'descr', 'fortran_order' and 'shape'".into(),
        )),
    }
}

/// A header dict value: only the forms NumPy writes.
#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
    /// A list: the descr of a structured dtype (not parsed further).
    List,
}

/// A parser for the Python literal of a header: `{'descr': '<f4', 'fortran_order': False,
/// 'shape': (3, 4), }` followed by spaces and a newline.
struct DictParser<'a> {
    rest: &'a str,
}

impl<'a> DictParser<'a> {
    fn new(text: &'a str) -> Self {
        DictParser { rest: text }
    }

    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, token: &str) -> std::result::Result<(), String> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(format!("expected '{token}' at '{}'", self.snippet()))
        }
    }

    fn snippet(&self) -> String {
        self.rest.chars().take(20).collect()
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        self.skip_space();
        let quote = match self.rest.chars().next() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(format!("expected a string at '{}'", self.snippet())),
        };
        let body = &self.rest[1..];
        let close = body
            .find(quote)
            .ok_or_else(|| "has an unterminated string".to_string())?;
        let s = body[..close].to_string();
        if s.contains('\\') {
            return Err("has an escaped string".into());
        }
        self.rest = &body[close + 1..];
        Ok(s)
    }

    fn int(&mut self) -> std::result::Result<u64, String> {
        self.skip_space();
        let digits = self.rest.len()
            - self
                .rest
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        // NumPy may write Python 2 longs as `3L`.
        let n = self.rest[..digits]
            .parse()
            .map_err(|_| format!("expected a non-negative integer at '{}'", self.snippet()))?;
        self.rest = &self.rest[digits..];
        self.eat("L");
        Ok(n)
    }

    fn value(&mut self) -> std::result::Result<Value, String> {
        self.skip_space();
        if self.eat("True") {
            return Ok(Value::Bool(true));
        }
        if self.eat("False") {
            return Ok(Value::Bool(false));
        }
        if self.eat("(") {
            let mut dims = Vec::new();
            while !self.eat(")") {
                dims.push(self.int()?);
                if !self.eat(",") {
                    self.expect(")")?;
                    break;
                }
            }
            return Ok(Value::Tuple(dims));
        }
        if self.rest.starts_with('[') {
            return Ok(Value::List);
        }
        self.string().map(Value::Str)
    }

    fn dict(&mut self) -> std::result::Result<Vec<(String, Value)>, String> {
        self.expect("{")?;
        let mut fields = Vec::new();
        while !self.eat("}") {
            let key = self.string()?;
            self.expect(":")?;
            let value = self.value()?;
            if matches!(value, Value::List) {
                // Nothing after a structured descr is needed: it is refused.
                fields.push((key, value));
                return Ok(fields);
            }
            fields.push((key, value));
            if !self.eat(",") {
                self.expect("}")?;
                break;
            }
        }
        self.skip_space();
        if !self.rest.is_empty() {
            return Err(format!("has text after the dict: '{}'", self.snippet()));
        }
        Ok(fields)
    }
}

/// The header of a version 1.0 (or 2.0 when long) file, padded so that the data starts on a
/// 64-byte boundary, as NumPy does.
pub fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape = shape_text(shape);
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let (version, prefix) = if dict.len() + 1 + 10 <= u16::MAX as usize {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let len = (prefix + dict.len() + 1).div_ceil(64) * 64 - prefix;
    let mut out = Vec::with_capacity(prefix + len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(prefix + len - 1, b' ');
    out.push(b'\n');
    out
}
