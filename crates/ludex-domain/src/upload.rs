//! Streaming reader of upload files: a single JSON object, a JSON array of objects, NDJSON, or
//! CSV with a header row.
//!
//! The format is detected from the first byte after a UTF-8 byte order mark and white space:
//! `{` is NDJSON or a single object, `[` an array, anything else CSV (see [`csv`]: each row is
//! turned into the fields of one record, its columns mapped to fields by their headers or a
//! [`ColumnMapping`]).
//!
//! The reader never holds more than one record (plus a read buffer) in memory, whatever the
//! file size. Problems with one record are handed to the caller with the record's position and
//! reading goes on; only a file that cannot be read as a whole stops with a [`FileError`] that
//! names the byte offset.

use crate::record::{RecordError, RecordFields};
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

pub mod csv;

pub use csv::{
    ColumnMapping, ColumnTarget, CsvColumn, CsvColumns, MappingError, guess_mapping, known_field,
};

/// Where a record sits in its upload: the line of an NDJSON file or the line a CSV row starts
/// on (1-based, counting every physical line), or the index of an array element (0-based).
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
    Csv,
}

/// Bounds on what one upload may make the reader do.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// Bytes of one file (after decompression), in every format.
    pub max_bytes: u64,
    /// Bytes of one record, in every format: an NDJSON line, an array element, a single
    /// object, a CSV row (as written in the file, without its line end; the header line too).
    /// A longer record is skipped to its end in constant memory and rejected.
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

/// One record as the reader hands it over.
#[derive(Debug)]
pub enum Record<'a> {
    /// The JSON text of an element, a line or the single object, not yet parsed.
    Json(&'a [u8]),
    /// A CSV row, its cells already made fields: no JSON text to write and parse again.
    Fields(RecordFields),
}

impl Record<'_> {
    /// The record's fields, parsing JSON text.
    pub fn into_fields(self) -> Result<RecordFields, RecordError> {
        match self {
            Self::Json(text) => RecordFields::parse(text),
            Self::Fields(fields) => Ok(fields),
        }
    }
}

/// What the sink receives for each record: the record, or why it could not be taken (over the
/// record limit, a CSV row whose cells do not fit its header).
pub type RecordSink<'s> = dyn FnMut(Position, Result<Record<'_>, String>) -> Result<(), Stop> + 's;

/// The upload's JSON bytes: a gzip stream (recognised by its magic bytes, members read one
/// after another) is decompressed as it is read, anything else is passed through.
pub fn decompressed<'r, R: Read + Send + 'r>(reader: R) -> io::Result<Box<dyn Read + Send + 'r>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let gz = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    })
}

/// How to read an upload beyond its [`ParseLimits`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadOptions {
    /// CSV only: how columns map to fields, over the guess from their headers.
    pub mapping: Option<ColumnMapping>,
    /// What an existing game keeps when a record of its id comes: with `false` the record
    /// replaces it whole; with `true` the record's fields are merged into it (RFC 7396), so
    /// fields the record does not have (columns a CSV does not map) keep their values. The
    /// reader itself does not look at it: the ingest does.
    pub merge: bool,
}

impl UploadOptions {
    /// How the upload is read and applied, as its ledger entry keeps it and as the entry's id
    /// tells two readings of one file apart: `None` for the plain reading.
    pub fn reading(&self) -> Option<String> {
        let mapping = self.mapping.as_ref().map(ToString::to_string);
        crate::report::reading_of(mapping.as_deref(), self.merge)
    }
}

/// Reads `reader` as an upload and hands every record to `sink` in file order.
pub fn read_upload<R: Read>(
    reader: R,
    limits: ParseLimits,
    sink: &mut RecordSink<'_>,
) -> Result<UploadSummary, UploadError> {
    read_upload_with(reader, limits, &UploadOptions::default(), sink)
}

/// [`read_upload`] with options (a CSV column mapping).
pub fn read_upload_with<R: Read>(
    reader: R,
    limits: ParseLimits,
    options: &UploadOptions,
    sink: &mut RecordSink<'_>,
) -> Result<UploadSummary, UploadError> {
    UploadReader::open(reader, limits, options)?.read(sink)
}

/// An upload whose format has been detected (and, for CSV, whose header has been read and its
/// columns mapped), ready to hand its records over. [`UploadReader::csv_columns`] lets the
/// caller name the CSV column behind a field before the first record arrives.
pub struct UploadReader<R> {
    input: Input<R>,
    limits: ParseLimits,
    start: Start,
}

enum Start {
    Array,
    /// NDJSON or a single object, starting on this line.
    Lines(u64),
    Csv(Box<csv::CsvReader>),
}

impl<R: Read> UploadReader<R> {
    /// Detects the format; for CSV also reads the header and maps the columns, failing with a
    /// [`FileError`] when they cannot be mapped (no title or id column, two columns for one
    /// field, a mapping that names a missing column).
    pub fn open(
        reader: R,
        limits: ParseLimits,
        options: &UploadOptions,
    ) -> Result<Self, UploadError> {
        let mut input = Input {
            inner: BufReader::with_capacity(256 * 1024, Metered::new(reader, limits.max_bytes)),
            offset: 0,
        };
        // Skips a UTF-8 byte order mark and leading white space, keeping line numbers right.
        let bom = input.fill()?.starts_with(&[0xEF, 0xBB, 0xBF]);
        if bom {
            input.consume(3);
        }
        let line = 1 + input.skip_white_space()?;
        let start = match input.fill()?.first().copied() {
            None => {
                return Err(FileError {
                    offset: input.offset,
                    reason: "the file is empty; expected a JSON object, a JSON array, NDJSON or \
                             CSV with a header row"
                        .into(),
                }
                .into());
            }
            Some(b'[') => Start::Array,
            Some(b'{') => Start::Lines(line),
            // No CSV header starts with a control character: a compressed or binary file.
            Some(other) if other.is_ascii_control() => {
                return Err(FileError {
                    offset: input.offset,
                    reason: format!(
                        "expected '{{', '[' or a CSV header at the start of the upload, found {}",
                        describe_byte(other)
                    ),
                }
                .into());
            }
            Some(_) => Start::Csv(Box::new(csv::CsvReader::open(
                &mut input,
                line,
                limits.max_record_bytes,
                options.mapping.as_ref(),
            )?)),
        };
        Ok(Self {
            input,
            limits,
            start,
        })
    }

    /// The upload's CSV columns and the fields they map to; `None` for JSON uploads.
    pub fn csv_columns(&self) -> Option<&CsvColumns> {
        match &self.start {
            Start::Csv(csv) => Some(csv.columns()),
            _ => None,
        }
    }

    /// Hands every record to `sink` in file order.
    pub fn read(mut self, sink: &mut RecordSink<'_>) -> Result<UploadSummary, UploadError> {
        self.run(sink)
    }

    fn run(&mut self, sink: &mut RecordSink<'_>) -> Result<UploadSummary, UploadError> {
        let max_record = self.limits.max_record_bytes;
        match &mut self.start {
            Start::Array => read_array(&mut self.input, max_record, sink),
            Start::Lines(line) => read_lines(&mut self.input, *line, max_record, sink),
            Start::Csv(csv) => csv.read(&mut self.input, max_record, sink),
        }
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

fn over_limit(max: usize) -> String {
    format!("the record is longer than the limit of {max} bytes")
}

/// The buffered upload and the byte offset of what has been consumed.
struct Input<R> {
    inner: BufReader<Metered<R>>,
    offset: u64,
}

impl<R: Read> Input<R> {
    fn fill(&mut self) -> Result<&[u8], UploadError> {
        let offset = self.offset;
        match self.inner.fill_buf() {
            Ok(_) => Ok(self.inner.buffer()),
            Err(e) => Err(self.read_error(offset, &e)),
        }
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.offset += n as u64;
    }

    fn read_error(&self, offset: u64, e: &io::Error) -> UploadError {
        let meter = self.inner.get_ref();
        if meter.exceeded {
            FileError {
                offset: meter.limit,
                reason: format!(
                    "the upload is larger than the configured limit of {} bytes",
                    meter.limit
                ),
            }
        } else {
            FileError {
                offset,
                reason: format!("the upload could not be read: {e}"),
            }
        }
        .into()
    }

    /// Skips white space; returns the newlines skipped.
    fn skip_white_space(&mut self) -> Result<u64, UploadError> {
        let mut newlines = 0;
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Ok(newlines);
            }
            let at = buf.iter().position(|b| !b.is_ascii_whitespace());
            let skipped = at.unwrap_or(buf.len());
            newlines += count_newlines(&buf[..skipped]);
            self.consume(skipped);
            if at.is_some() {
                return Ok(newlines);
            }
        }
    }

    /// Reads one JSON value's bytes with `scanner` into `record` (up to `max` bytes; past
    /// that the rest is skipped and `Ok(false)` returned). `None` at the end of the input.
    fn read_value(
        &mut self,
        scanner: &mut Scanner,
        record: &mut Vec<u8>,
        max: usize,
    ) -> Result<Option<bool>, UploadError> {
        let mut fits = record.len() <= max;
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let end = scanner.feed(buf);
            let taken = &buf[..end.unwrap_or(buf.len())];
            keep(record, taken, &mut fits, max);
            let n = taken.len();
            self.consume(n);
            if end.is_some() {
                return Ok(Some(fits));
            }
        }
    }
}

/// Appends `chunk` to `record` while the record fits in `max` bytes. Past that the record is
/// dropped and stays dropped (`fits` turns false), so a huge record never grows the buffer
/// beyond `max`.
fn keep(record: &mut Vec<u8>, chunk: &[u8], fits: &mut bool, max: usize) {
    if !*fits {
        return;
    }
    if record.len() + chunk.len() <= max {
        record.extend_from_slice(chunk);
    } else {
        *fits = false;
        record.clear();
    }
}

/// Finds where one JSON value ends without parsing it: strings (with their escapes) are
/// skipped whole, brackets counted. Constant memory, whatever the nesting or length.
#[derive(Default)]
struct Scanner {
    depth: u64,
    started: bool,
    scalar: bool,
    in_string: bool,
    escaped: bool,
}

fn ends_scalar(b: u8) -> bool {
    matches!(b, b',' | b']' | b'}') || b.is_ascii_whitespace()
}

impl Scanner {
    /// Feeds the next bytes of the value; returns how many of them belong to it once it ends.
    /// A value that ends before it starts (a `,` or `]` in its place) ends at 0.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                let at = i + memchr::memchr2(b'"', b'\\', &bytes[i..])?;
                i = at + 1;
                if bytes[at] == b'\\' {
                    self.escaped = true;
                } else {
                    self.in_string = false;
                    if self.depth == 0 {
                        return Some(i);
                    }
                }
                continue;
            }
            let b = bytes[i];
            if self.scalar {
                if ends_scalar(b) {
                    return Some(i);
                }
            } else {
                match b {
                    b'"' => {
                        self.in_string = true;
                        self.started = true;
                    }
                    b'{' | b'[' => {
                        self.depth += 1;
                        self.started = true;
                    }
                    b'}' | b']' if self.depth == 0 => return Some(i),
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ if self.started => {}
                    _ if ends_scalar(b) => return Some(i),
                    _ => {
                        self.scalar = true;
                        self.started = true;
                    }
                }
            }
            i += 1;
        }
        None
    }
}

/// NDJSON, or a single (possibly pretty-printed) object.
fn read_lines<R: Read>(
    input: &mut Input<R>,
    mut line_no: u64,
    max_record: usize,
    sink: &mut RecordSink<'_>,
) -> Result<UploadSummary, UploadError> {
    let mut line = Vec::with_capacity(4096);
    let mut records = 0u64;
    let mut first = true;
    loop {
        let start = input.offset;
        let Some(fits) = read_line_bounded(input, &mut line, max_record)? else {
            break;
        };
        let this_line = line_no;
        line_no += 1;
        let text = line.strip_suffix(b"\r").unwrap_or(&line);
        if fits && text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if first && fits {
            let mut scanner = Scanner::default();
            if scanner.feed(text).is_none() {
                // The first record does not end on its line: a single pretty-printed object.
                line.push(b'\n');
                return read_single_object(
                    input, scanner, line, start, this_line, max_record, sink,
                );
            }
        }
        first = false;
        records += 1;
        let record = if fits {
            Ok(Record::Json(text))
        } else {
            Err(over_limit(max_record))
        };
        sink(Position::Line(this_line), record).map_err(|Stop| UploadError::Stopped)?;
    }
    Ok(UploadSummary {
        format: UploadFormat::Ndjson,
        records,
    })
}

/// Reads one line into `line` (without its newline). Returns whether it fit in `max` bytes
/// (when not, `line` is left empty and the rest of it skipped), or `None` at the end.
fn read_line_bounded<R: Read>(
    input: &mut Input<R>,
    line: &mut Vec<u8>,
    max: usize,
) -> Result<Option<bool>, UploadError> {
    line.clear();
    let mut consumed = false;
    let mut fits = true;
    loop {
        let available = input.fill()?;
        if available.is_empty() {
            return Ok(consumed.then_some(fits));
        }
        consumed = true;
        let newline = memchr::memchr(b'\n', available);
        let chunk = &available[..newline.unwrap_or(available.len())];
        keep(line, chunk, &mut fits, max);
        let used = newline.map_or(available.len(), |at| at + 1);
        input.consume(used);
        if newline.is_some() {
            return Ok(Some(fits));
        }
    }
}

fn truncated(offset: u64, what: &str) -> UploadError {
    FileError {
        offset,
        reason: format!("invalid JSON: the file ends inside {what} (the file looks truncated)"),
    }
    .into()
}

/// Fails unless only white space is left.
fn expect_end<R: Read>(input: &mut Input<R>, after: &str) -> Result<(), UploadError> {
    input.skip_white_space()?;
    match input.fill()?.first() {
        None => Ok(()),
        Some(&b) => Err(FileError {
            offset: input.offset,
            reason: format!(
                "invalid JSON: trailing characters after {after}, found {}",
                describe_byte(b)
            ),
        }
        .into()),
    }
}

fn read_single_object<R: Read>(
    input: &mut Input<R>,
    mut scanner: Scanner,
    mut record: Vec<u8>,
    start: u64,
    line: u64,
    max_record: usize,
    sink: &mut RecordSink<'_>,
) -> Result<UploadSummary, UploadError> {
    let Some(fits) = input.read_value(&mut scanner, &mut record, max_record)? else {
        return Err(truncated(
            input.offset,
            &format!("the object that starts at byte {start}"),
        ));
    };
    let value = if fits {
        Ok(Record::Json(&record[..]))
    } else {
        Err(over_limit(max_record))
    };
    sink(Position::Line(line), value).map_err(|Stop| UploadError::Stopped)?;
    expect_end(input, "the object")?;
    Ok(UploadSummary {
        format: UploadFormat::Object,
        records: 1,
    })
}

fn read_array<R: Read>(
    input: &mut Input<R>,
    max_record: usize,
    sink: &mut RecordSink<'_>,
) -> Result<UploadSummary, UploadError> {
    input.consume(1); // '['
    let mut record = Vec::with_capacity(4096);
    let mut index = 0u64;
    loop {
        input.skip_white_space()?;
        let next = input.fill()?.first().copied();
        match next {
            None => return Err(truncated(input.offset, "the array")),
            Some(b']') if index == 0 => {
                input.consume(1);
                break;
            }
            Some(_) => {}
        }
        let start = input.offset;
        record.clear();
        let Some(fits) = input.read_value(&mut Scanner::default(), &mut record, max_record)? else {
            return Err(truncated(
                input.offset,
                &format!("element {index} of the array"),
            ));
        };
        if input.offset == start {
            return Err(FileError {
                offset: start,
                reason: format!(
                    "invalid JSON: expected a value for element {index}, found {}",
                    describe_byte(next.unwrap_or(b' '))
                ),
            }
            .into());
        }
        let value = if fits {
            Ok(Record::Json(&record[..]))
        } else {
            Err(over_limit(max_record))
        };
        sink(Position::Index(index), value).map_err(|Stop| UploadError::Stopped)?;
        index += 1;
        input.skip_white_space()?;
        match input.fill()?.first().copied() {
            Some(b',') => input.consume(1),
            Some(b']') => {
                input.consume(1);
                break;
            }
            None => return Err(truncated(input.offset, "the array")),
            Some(other) => {
                return Err(FileError {
                    offset: input.offset,
                    reason: format!(
                        "invalid JSON: expected ',' or ']' after element {}, found {}",
                        index - 1,
                        describe_byte(other)
                    ),
                }
                .into());
            }
        }
    }
    expect_end(input, "the array")?;
    Ok(UploadSummary {
        format: UploadFormat::Array,
        records: index,
    })
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

    /// A record as a JSON value, whichever way the reader handed it over.
    pub(super) fn json_of(record: Record<'_>) -> serde_json::Value {
        match record.into_fields() {
            Ok(RecordFields { mut known, extra }) => {
                for (key, value) in extra {
                    known.insert(key, serde_json::from_str(value.get()).unwrap());
                }
                serde_json::Value::Object(known)
            }
            Err(e) => panic!("not a record: {e}"),
        }
    }

    /// Each record as its text, or the reader's reason for not taking it.
    type Seen = Vec<(Position, Result<String, String>)>;

    fn read(input: &[u8]) -> (Result<UploadSummary, UploadError>, Seen) {
        read_limited(input, ParseLimits::default())
    }

    fn read_limited(
        input: &[u8],
        limits: ParseLimits,
    ) -> (Result<UploadSummary, UploadError>, Seen) {
        let mut seen = Vec::new();
        let result = read_upload(input, limits, &mut |pos, rec| {
            seen.push((pos, rec.map(text_of)));
            Ok(())
        });
        (result, seen)
    }

    /// The text of a record of a JSON upload.
    fn text_of(record: Record<'_>) -> String {
        match record {
            Record::Json(text) => String::from_utf8_lossy(text).into_owned(),
            Record::Fields(fields) => panic!("JSON read as CSV: {fields:?}"),
        }
    }

    fn small_records(max_record_bytes: usize) -> ParseLimits {
        ParseLimits {
            max_bytes: 1 << 30,
            max_record_bytes,
        }
    }

    fn file_error(result: Result<UploadSummary, UploadError>) -> FileError {
        match result {
            Err(UploadError::File(e)) => e,
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    fn text(seen: &Seen, i: usize) -> &str {
        seen[i].1.as_deref().unwrap()
    }

    #[test]
    fn ndjson_lines_are_numbered_and_bad_lines_do_not_stop_the_file() {
        let (result, seen) =
            read(b"\n{\"title\":\"A\"}\r\n{\"title\": oops}\n\n[1]\n{\"title\":\"B\"");
        let summary = result.unwrap();
        assert_eq!(summary.format, UploadFormat::Ndjson);
        assert_eq!(summary.records, 4);
        let positions: Vec<_> = seen.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            positions,
            [
                Position::Line(2),
                Position::Line(3),
                Position::Line(5),
                Position::Line(6)
            ]
        );
        assert_eq!(text(&seen, 0), "{\"title\":\"A\"}", "no carriage return");
        assert_eq!(text(&seen, 1), "{\"title\": oops}");
        assert_eq!(text(&seen, 3), "{\"title\":\"B\"");
    }

    #[test]
    fn arrays_give_indexes_and_a_byte_order_mark_is_skipped() {
        let (result, seen) =
            read(b"\xEF\xBB\xBF [ {\"title\":\"A\"}, 3, \"s]\\\"\" ,{\"t\":[\"]\"]} ]\n");
        assert_eq!(result.unwrap().format, UploadFormat::Array);
        let positions: Vec<_> = seen.iter().map(|(p, _)| *p).collect();
        assert_eq!(positions, (0..4).map(Position::Index).collect::<Vec<_>>());
        assert_eq!(text(&seen, 1), "3");
        assert_eq!(
            text(&seen, 2),
            "\"s]\\\"\"",
            "brackets inside strings do not count"
        );
        assert_eq!(text(&seen, 3), "{\"t\":[\"]\"]}");
        assert_eq!(read(b"[ ]").0.unwrap().records, 0);
    }

    #[test]
    fn a_pretty_printed_object_is_one_record() {
        let (result, seen) = read(b"{\n  \"title\": \"A\",\n  \"rating\": 5\n}\n");
        assert_eq!(result.unwrap().format, UploadFormat::Object);
        assert_eq!(seen.len(), 1);
        let value: serde_json::Value = serde_json::from_str(text(&seen, 0)).unwrap();
        assert_eq!(value["rating"], 5);
        let error = file_error(read(b"{\n\"a\": 1\n} x").0);
        assert!(error.reason.contains("trailing characters"), "{error}");
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
        let error = file_error(read(b"{\n\"title\": \"A\"").0);
        assert!(error.reason.contains("truncated"), "{error}");
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
        assert_eq!(error.offset, 6, "the offset of the second comma");
        let error = file_error(read(b"[1, 2 3]").0);
        assert_eq!(error.offset, 6);
        assert!(error.reason.contains("expected ',' or ']'"), "{error}");
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
    fn an_overlong_record_is_rejected_in_every_format_and_reading_goes_on() {
        let limits = small_records(16);
        let long = "a very long title";
        let ndjson =
            format!("{{\"title\":\"A\"}}\n{{\"title\":\"{long}\"}}\n{{\"title\":\"C\"}}\n");
        let array = format!("[{{\"title\":\"A\"}}, {{\"title\":\"{long}\"}}, {{\"title\":\"C\"}}]");
        for input in [ndjson, array] {
            let (result, seen) = read_limited(input.as_bytes(), limits);
            assert_eq!(result.unwrap().records, 3, "{input}");
            assert_eq!(
                seen[1].1.as_ref().unwrap_err(),
                "the record is longer than the limit of 16 bytes"
            );
            assert_eq!(text(&seen, 2), "{\"title\":\"C\"}");
        }
        let object = format!("{{\n\"title\": \"{long}\"\n}}\n");
        let (result, seen) = read_limited(object.as_bytes(), limits);
        assert_eq!(result.unwrap().format, UploadFormat::Object);
        assert!(
            seen[0]
                .1
                .as_ref()
                .unwrap_err()
                .contains("limit of 16 bytes")
        );
    }

    /// `[` + one element of `size` bytes + `, {"title":"after"}]`, produced as it is read.
    struct HugeElement {
        sent: u64,
        size: u64,
    }

    impl Read for HugeElement {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let (head, tail): (&[u8], &[u8]) = (b"[{\"title\":\"", b"\"}, {\"title\":\"after\"}]");
            let body_end = head.len() as u64 + self.size;
            let n = if self.sent < head.len() as u64 {
                let rest = &head[self.sent as usize..];
                buf[..rest.len()].copy_from_slice(rest);
                rest.len()
            } else if self.sent < body_end {
                let n = buf.len().min((body_end - self.sent) as usize);
                // Escapes and brackets inside the string must not confuse the scanner.
                for (i, b) in buf[..n].iter_mut().enumerate() {
                    *b = if (self.sent + i as u64).is_multiple_of(64) {
                        b'['
                    } else {
                        b'a'
                    };
                }
                n
            } else {
                let at = (self.sent - body_end) as usize;
                let rest = &tail[at.min(tail.len())..];
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                n
            };
            self.sent += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_huge_element_is_skipped_without_being_held() {
        let mut seen = Vec::new();
        let mut longest = 0;
        let summary = read_upload(
            HugeElement {
                sent: 0,
                size: 64 << 20,
            },
            small_records(1 << 20),
            &mut |pos, rec| {
                let text = rec.map(text_of);
                longest = longest.max(text.as_ref().map_or(0, String::len));
                seen.push((pos, text));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(summary.records, 2);
        assert!(
            seen[0]
                .1
                .as_ref()
                .unwrap_err()
                .contains("longer than the limit")
        );
        assert_eq!(text(&seen, 1), "{\"title\":\"after\"}");
        assert!(longest < 1 << 20);
    }

    #[test]
    fn the_sink_can_stop_the_reader() {
        for input in [
            &b"{\"a\":1}\n{\"a\":2}\n"[..],
            b"[{\"a\":1}]",
            b"{\n\"a\":1\n}",
        ] {
            let result = read_upload(input, ParseLimits::default(), &mut |_, _| Err(Stop));
            assert!(matches!(result, Err(UploadError::Stopped)));
        }
    }
}
