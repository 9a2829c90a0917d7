//! Streaming reader of upload files: a single JSON object, a JSON array of objects, or NDJSON.
//!
//! The reader never holds more than one record (plus a read buffer) in memory, whatever the
//! file size. Problems with one record are handed to the caller with the record's position and
//! reading goes on; only a file that cannot be read as a whole stops with a [`FileError`] that
//! names the byte offset.

use serde::de::{Deserializer as _, Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::Cell;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

/// Where a record sits in its upload: the line of an NDJSON file (1-based) or the index of an
/// array element (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    Line(u64),
    Index(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Index(n) => write!(f, "index {n}"),
        }
    }
}

/// The shape of an upload, detected from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadFormat {
    Object,
    Array,
    Ndjson,
}

/// Bounds on what one upload may make the reader do.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// Bytes of JSON (after decompression) in one file.
    pub max_bytes: u64,
    /// Bytes of one NDJSON line.
    pub max_record_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024 * 1024,
            max_record_bytes: 1024 * 1024,
        }
    }
}

/// A file that could not be read as a whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset}: {reason}")]
pub struct FileError {
    pub offset: u64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    File(#[from] FileError),
    /// The record sink asked to stop (its consumer went away).
    #[error("reading the upload was stopped")]
    Stopped,
}

/// Returned by a record sink that wants the reader to stop.
#[derive(Debug)]
pub struct Stop;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadSummary {
    pub format: UploadFormat,
    /// Records handed to the sink, good or bad.
    pub records: u64,
}

/// What the sink receives for each record: the parsed JSON value, or why it is not JSON.
pub type RecordSink<'s> = dyn FnMut(Position, Result<Value, String>) -> Result<(), Stop> + 's;

/// Reads `reader` as an upload and hands every record to `sink` in file order.
pub fn read_upload<R: Read>(
    reader: R,
    limits: ParseLimits,
    sink: &mut RecordSink<'_>,
) -> Result<UploadSummary, UploadError> {
    let mut input = BufReader::with_capacity(256 * 1024, Metered::new(reader, limits.max_bytes));
    let mut offset = 0u64;
    let mut line = 1u64;
    // Skips a UTF-8 byte order mark and leading white space, keeping line numbers right.
    let first = loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) => return Err(io_error(&input, offset, &e)),
        };
        if buf.is_empty() {
            break None;
        }
        let skip = if offset == 0 && buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            3
        } else {
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(at) => {
                    line += count_newlines(&buf[..at]);
                    offset += at as u64;
                    let first = buf[at];
                    input.consume(at);
                    break Some(first);
                }
                None => {
                    line += count_newlines(buf);
                    buf.len()
                }
            }
        };
        offset += skip as u64;
        input.consume(skip);
    };
    match first {
        None => Err(FileError {
            offset,
            reason: "the file is empty; expected a JSON object, a JSON array or NDJSON".into(),
        }
        .into()),
        Some(b'[') => read_array(input, offset, sink),
        Some(b'{') => read_lines(input, offset, line, limits.max_record_bytes, sink),
        Some(other) => Err(FileError {
            offset,
            reason: format!(
                "expected '{{' or '[' at the start of the upload, found {}",
                describe_byte(other)
            ),
        }
        .into()),
    }
}

fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("the byte 0x{b:02X} (is it compressed or binary?)")
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// The reason of a serde_json error without its " at line L column C" suffix.
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

fn io_error<R: Read>(input: &BufReader<Metered<R>>, offset: u64, e: &io::Error) -> UploadError {
    let meter = input.get_ref();
    let reason = if meter.exceeded {
        format!(
            "the upload is larger than the configured limit of {} bytes",
            meter.limit
        )
    } else {
        format!("the upload could not be read: {e}")
    };
    let offset = if meter.exceeded { meter.limit } else { offset };
    FileError { offset, reason }.into()
}

/// NDJSON, or a single (possibly pretty-printed) object.
fn read_lines<R: Read>(
    mut input: BufReader<Metered<R>>,
    mut offset: u64,
    mut line_no: u64,
    max_record: usize,
    sink: &mut RecordSink<'_>,
) -> Result<UploadSummary, UploadError> {
    let mut line = Vec::with_capacity(4096);
    let mut records = 0u64;
    let mut first = true;
    loop {
        let start = offset;
        let Some((consumed, overflow)) = read_line_bounded(&mut input, &mut line, max_record)
            .map_err(|e| io_error(&input, offset, &e))?
        else {
            break;
        };
        offset += consumed;
        let this_line = line_no;
        line_no += 1;
        if overflow {
            records += 1;
            sink(
                Position::Line(this_line),
                Err(format!(
                    "the record is longer than the limit of {max_record} bytes"
                )),
            )
            .map_err(|Stop| UploadError::Stopped)?;
            first = false;
            continue;
        }
        let text = line.strip_suffix(b"\r").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = serde_json::from_slice::<Value>(text);
        if first
            && let Err(e) = &parsed
            && e.is_eof()
        {
            // The first record does not end on its line: a single pretty-printed object.
            let head = std::mem::take(&mut line);
            return read_single_object(head, input, start, this_line, sink);
        }
        first = false;
        records += 1;
        let record = parsed.map_err(|e| {
            format!(
                "malformed JSON at column {}: {}",
                e.column(),
                json_reason(&e)
            )
        });
        sink(Position::Line(this_line), record).map_err(|Stop| UploadError::Stopped)?;
    }
    Ok(UploadSummary {
        format: UploadFormat::Ndjson,
        records,
    })
}

/// Reads one line into `line` (without its newline). Returns the bytes consumed and whether
/// the line was longer than `max` (then `line` is left empty and the rest of it skipped).
fn read_line_bounded(
    input: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<(u64, bool)>> {
    line.clear();
    let mut consumed = 0u64;
    let mut overflow = false;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok((consumed > 0).then_some((consumed, overflow)));
        }
        let newline = memchr::memchr(b'\n', available);
        let chunk = &available[..newline.unwrap_or(available.len())];
        if !overflow {
            if line.len() + chunk.len() > max {
                overflow = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = newline.map_or(available.len(), |at| at + 1);
        input.consume(used);
        consumed += used as u64;
        if newline.is_some() {
            return Ok(Some((consumed, overflow)));
        }
    }
}

fn read_single_object<R: Read>(
    head: Vec<u8>,
    mut input: BufReader<Metered<R>>,
    start: u64,
    line: u64,
    sink: &mut RecordSink<'_>,
) -> Result<UploadSummary, UploadError> {
    let count = Rc::new(Cell::new(0));
    let mut counted = Counted {
        inner: io::Cursor::new(head).chain(&mut input),
        count: Rc::clone(&count),
    };
    let mut de = serde_json::Deserializer::from_reader(&mut counted);
    let value = Value::deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    drop(de);
    let at = start + count.get();
    let value = value.map_err(|e| json_file_error(&e, at, &input))?;
    sink(Position::Line(line), Ok(value)).map_err(|Stop| UploadError::Stopped)?;
    Ok(UploadSummary {
        format: UploadFormat::Object,
        records: 1,
    })
}

fn json_file_error<R: Read>(
    e: &serde_json::Error,
    offset: u64,
    input: &BufReader<Metered<R>>,
) -> UploadError {
    if input.get_ref().exceeded {
        let io = io::Error::other("limit");
        return io_error(input, offset, &io);
    }
    let hint = if e.is_eof() {
        " (the file looks truncated)"
    } else {
        ""
    };
    FileError {
        offset,
        reason: format!(
            "invalid JSON at line {}, column {}: {}{hint}",
            e.line(),
            e.column(),
            json_reason(e)
        ),
    }
    .into()
}

fn read_array<R: Read>(
    mut input: BufReader<Metered<R>>,
    start: u64,
    sink: &mut RecordSink<'_>,
) -> Result<UploadSummary, UploadError> {
    let count = Rc::new(Cell::new(0));
    let mut counted = Counted {
        inner: &mut input,
        count: Rc::clone(&count),
    };
    let mut stopped = false;
    // serde_json reads on to the end of the array after an element fails, so the offset of a
    // broken element is taken when the visitor sees the error.
    let mut error_at = None;
    let mut de = serde_json::Deserializer::from_reader(&mut counted);
    let visitor = ArrayVisitor {
        sink,
        stopped: &mut stopped,
        count: &count,
        error_at: &mut error_at,
    };
    let result = de
        .deserialize_seq(visitor)
        .and_then(|n| de.end().map(|()| n));
    drop(de);
    let at = start + error_at.unwrap_or(count.get());
    match result {
        Ok(records) => Ok(UploadSummary {
            format: UploadFormat::Array,
            records,
        }),
        Err(_) if stopped => Err(UploadError::Stopped),
        Err(e) => Err(json_file_error(&e, at, &input)),
    }
}

struct ArrayVisitor<'a, 's> {
    sink: &'a mut RecordSink<'s>,
    stopped: &'a mut bool,
    count: &'a Cell<u64>,
    error_at: &'a mut Option<u64>,
}

impl<'de> Visitor<'de> for ArrayVisitor<'_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of game objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut index = 0u64;
        loop {
            match seq.next_element::<Value>() {
                Ok(Some(value)) => {
                    if (self.sink)(Position::Index(index), Ok(value)).is_err() {
                        *self.stopped = true;
                        return Err(A::Error::custom("stopped"));
                    }
                    index += 1;
                }
                Ok(None) => return Ok(index),
                Err(e) => {
                    *self.error_at = Some(self.count.get());
                    return Err(e);
                }
            }
        }
    }
}

/// Counts the bytes the JSON parser has consumed, for error offsets.
struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Enforces the size limit on the raw stream.
struct Metered<R> {
    inner: R,
    read: u64,
    limit: u64,
    exceeded: bool,
}

impl<R> Metered<R> {
    fn new(inner: R, limit: u64) -> Self {
        Self {
            inner,
            read: 0,
            limit,
            exceeded: false,
        }
    }
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("upload over the size limit"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Seen = Vec<(Position, Result<Value, String>)>;

    fn read(input: &[u8]) -> (Result<UploadSummary, UploadError>, Seen) {
        read_limited(input, ParseLimits::default())
    }

    fn read_limited(
        input: &[u8],
        limits: ParseLimits,
    ) -> (Result<UploadSummary, UploadError>, Seen) {
        let mut seen = Vec::new();
        let result = read_upload(input, limits, &mut |pos, rec| {
            seen.push((pos, rec));
            Ok(())
        });
        (result, seen)
    }

    fn file_error(result: Result<UploadSummary, UploadError>) -> FileError {
        match result {
            Err(UploadError::File(e)) => e,
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    #[test]
    fn ndjson_lines_are_numbered_and_bad_lines_do_not_stop_the_file() {
        let (result, seen) =
            read(b"\n{\"title\":\"A\"}\r\n{\"title\": oops}\n\n[1]\n{\"title\":\"B\"");
        let summary = result.unwrap();
        assert_eq!(summary.format, UploadFormat::Ndjson);
        assert_eq!(summary.records, 4);
        assert_eq!(seen[0].0, Position::Line(2));
        assert_eq!(seen[1].0, Position::Line(3));
        assert_eq!(
            seen[1].1.as_ref().unwrap_err(),
            "malformed JSON at column 11: expected value"
        );
        assert_eq!(seen[2], (Position::Line(5), Ok(serde_json::json!([1]))));
        assert_eq!(seen[3].0, Position::Line(6));
        assert!(
            seen[3]
                .1
                .as_ref()
                .unwrap_err()
                .contains("EOF while parsing")
        );
    }

    #[test]
    fn arrays_give_indexes_and_a_byte_order_mark_is_skipped() {
        let (result, seen) = read(b"\xEF\xBB\xBF [ {\"title\":\"A\"}, 3, {\"title\":\"B\"} ]\n");
        assert_eq!(result.unwrap().format, UploadFormat::Array);
        let positions: Vec<_> = seen.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            positions,
            [Position::Index(0), Position::Index(1), Position::Index(2)]
        );
    }

    #[test]
    fn a_pretty_printed_object_is_one_record() {
        let (result, seen) = read(b"{\n  \"title\": \"A\",\n  \"rating\": 5\n}\n");
        assert_eq!(result.unwrap().format, UploadFormat::Object);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1.as_ref().unwrap()["rating"], 5);
    }

    #[test]
    fn a_truncated_array_fails_as_a_whole_naming_the_byte_offset() {
        let input = b"[{\"title\":\"A\"},{\"title\":\"B\"";
        let (result, seen) = read(input);
        let error = file_error(result);
        assert_eq!(error.offset, input.len() as u64);
        assert!(error.reason.contains("truncated"), "{error}");
        assert_eq!(
            seen.len(),
            1,
            "records before the damage are still handed over"
        );
    }

    #[test]
    fn garbage_and_empty_files_fail_as_a_whole() {
        let error = file_error(read(b"  \n  ").0);
        assert_eq!(error.offset, 5);
        assert!(error.reason.contains("empty"));
        let error = file_error(read(b"\x1f\x8b\x08").0);
        assert_eq!(error.offset, 0);
        assert!(error.reason.contains("0x1F"), "{error}");
        let error = file_error(read(b"[1, 2,, 3]").0);
        assert_eq!(error.offset, 7);
    }

    #[test]
    fn the_size_limit_fails_the_file() {
        let limits = ParseLimits {
            max_bytes: 10,
            max_record_bytes: 100,
        };
        let error = file_error(read_limited(b"{\"title\":\"A long title\"}\n", limits).0);
        assert_eq!(error.offset, 10);
        assert!(error.reason.contains("limit of 10 bytes"));
    }

    #[test]
    fn an_overlong_line_is_rejected_and_reading_goes_on() {
        let limits = ParseLimits {
            max_bytes: 1 << 20,
            max_record_bytes: 16,
        };
        let input = b"{\"title\":\"A\"}\n{\"title\":\"a very long title\"}\n{\"title\":\"C\"}\n";
        let (result, seen) = read_limited(input, limits);
        assert_eq!(result.unwrap().records, 3);
        assert_eq!(seen[1].0, Position::Line(2));
        assert!(
            seen[1]
                .1
                .as_ref()
                .unwrap_err()
                .contains("limit of 16 bytes")
        );
        assert!(seen[2].1.is_ok());
    }

    #[test]
    fn the_sink_can_stop_the_reader() {
        let result = read_upload(
            &b"{\"a\":1}\n{\"a\":2}\n"[..],
            ParseLimits::default(),
            &mut |_, _| Err(Stop),
        );
        assert!(matches!(result, Err(UploadError::Stopped)));
        let result = read_upload(&b"[{\"a\":1}]"[..], ParseLimits::default(), &mut |_, _| {
            Err(Stop)
        });
        assert!(matches!(result, Err(UploadError::Stopped)));
    }
}
