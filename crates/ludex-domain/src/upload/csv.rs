//! CSV uploads: a header row, then one game per row.
//!
//! - **Dialect.** RFC 4180: cells in double quotes may hold the delimiter, line ends and `""`
//!   for a quote; lines end in LF or CRLF; UTF-8 (a byte order mark is skipped before the
//!   format is detected). The delimiter is `,` or `;`, whichever appears more often outside
//!   quotes in the header line (`,` on a tie).
//! - **Columns.** A column named in the [`ColumnMapping`] goes where the mapping says (a field,
//!   an extra field, or nowhere). Any other column whose header is a known field, compared
//!   case-insensitively with spaces, `-` and `_` alike (`Release Date` is `release_date`), fills
//!   that field; a header naming a field the server keeps (`created_at`, `updated_at`,
//!   `version`, as in an export) or an empty header drops its column; every other column becomes
//!   an extra field named by its trimmed header. [`guess_mapping`] applies the same rule for a
//!   user interface. Some column must fill `title` or `id`, and no two columns may fill the same
//!   field.
//! - **Rows.** Each row becomes the fields of one record, as the JSON object of the same
//!   values would: empty cells (or only white space) are left out; `platforms`, `genres` and `tags` are split into lists of trimmed, non-empty
//!   strings on `;` when the cell holds one, else on `|` (so `PC; Xbox Series X|S` keeps its
//!   `|`); `rating` and `price` are JSON numbers when the trimmed cell is a finite number (else
//!   strings, which validation rejects with its usual reason); every other cell is a JSON
//!   string as written. Blank lines and rows of empty cells are skipped. A row is rejected (and
//!   reading goes on) when its cell count differs from the header's, when a cell it keeps is
//!   not UTF-8, or when it is longer than [`ParseLimits::max_record_bytes`](super::ParseLimits)
//!   as written in the file; a long row is skipped to its end without being held.
//! - **Positions.** A row's [`Position::Line`] is the physical line it starts on, counting the
//!   lines inside quoted cells and blank lines.
//! - **Reading.** csv-core reads the rows, into buffers reused from row to row. A row with no
//!   quote that ends inside the read buffer is split at its delimiters in place instead, which
//!   is how csv-core splits it too, without copying its cells.

use super::{
    FileError, Input, Position, Record, RecordSink, Stop, UploadError, UploadFormat, UploadSummary,
    count_newlines,
};
use crate::record::{ExtraValue, KNOWN_FIELDS, RecordFields, SERVER_FIELDS};
use csv_core::{ReadRecordResult, Reader, ReaderBuilder};
use serde_json::{Number, Value};
use std::fmt;
use std::io::Read;
use std::str::FromStr;

/// How a [`ColumnMapping`] target names an extra field: `Notes=extra.notes`. A bare target
/// must be a known field, so a misspelt one (`Systems=platform`) is an error, not an extra.
pub const EXTRA_PREFIX: &str = "extra.";

/// Where a CSV column's cells go.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ColumnTarget {
    /// A field ludex knows (one of [`KNOWN_FIELDS`]).
    Field(&'static str),
    /// An extra field of this name (kept as a string).
    Extra(String),
    /// Nowhere: the column is ignored.
    Drop,
}

impl ColumnTarget {
    /// The record field the column fills, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Field(name) => Some(name),
            Self::Extra(name) => Some(name.as_str()),
            Self::Drop => None,
        }
    }
}

/// As written in a mapping: `title`, `extra.notes`, or nothing for a dropped column.
impl fmt::Display for ColumnTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(name) => f.write_str(name),
            Self::Extra(name) => write!(f, "{EXTRA_PREFIX}{name}"),
            Self::Drop => Ok(()),
        }
    }
}

impl FromStr for ColumnTarget {
    type Err = MappingError;

    /// `title` (any case, spaces or `-` for `_`), `extra.NAME`, or empty for "drop".
    fn from_str(text: &str) -> Result<Self, MappingError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::Drop);
        }
        if let Some(name) = text.strip_prefix(EXTRA_PREFIX) {
            let name = name.trim();
            if name.is_empty() {
                return Err(MappingError(format!(
                    "{text:?} names no extra field; write {EXTRA_PREFIX}NAME"
                )));
            }
            if let Some(field) = known_field(name) {
                return Err(MappingError(format!(
                    "{text:?}: {field} is a known field, not an extra one; map the column to \
                     {field}"
                )));
            }
            if let Some(field) = server_field(name) {
                return Err(MappingError(format!(
                    "{text:?}: {field} is kept by the server and cannot be uploaded"
                )));
            }
            return Ok(Self::Extra(name.to_owned()));
        }
        if let Some(field) = known_field(text) {
            return Ok(Self::Field(field));
        }
        if let Some(field) = server_field(text) {
            return Err(MappingError(format!(
                "{field} is kept by the server and cannot be uploaded; leave the target empty \
                 to drop the column"
            )));
        }
        Err(MappingError(format!(
            "unknown field {text:?}; the fields are {}; write {EXTRA_PREFIX}{text} to keep the \
             column as an extra field, or leave the target empty to drop it",
            KNOWN_FIELDS.join(", ")
        )))
    }
}

/// Why a column mapping or a CSV header could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MappingError(String);

/// Which CSV column goes to which field, for the columns whose header alone does not say:
/// parsed from `Name=title,Systems=platforms,Studio notes=extra.notes,Internal id=`.
///
/// Column names are compared with the headers after trimming, ignoring case. A column name
/// cannot hold `,`; it may hold `=` (the last one separates the target).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColumnMapping {
    entries: Vec<(String, ColumnTarget)>,
}

impl ColumnMapping {
    /// Maps `column` to `target`; fails on an empty column name or one already mapped.
    pub fn insert(&mut self, column: &str, target: ColumnTarget) -> Result<(), MappingError> {
        let column = column.trim();
        if column.is_empty() {
            return Err(MappingError(format!(
                "a mapping to {:?} has no column name; write COLUMN=FIELD",
                target.to_string()
            )));
        }
        if self.target_of(column).is_some() {
            return Err(MappingError(format!(
                "the column {column:?} is mapped twice"
            )));
        }
        self.entries.push((column.to_owned(), target));
        Ok(())
    }

    /// The entries in the order given.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &ColumnTarget)> {
        self.entries.iter().map(|(c, t)| (c.as_str(), t))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where the column with this header goes, if the mapping says.
    fn target_of(&self, header: &str) -> Option<&ColumnTarget> {
        self.entries
            .iter()
            .find(|(column, _)| same_name(column, header))
            .map(|(_, target)| target)
    }
}

impl FromStr for ColumnMapping {
    type Err = MappingError;

    fn from_str(text: &str) -> Result<Self, MappingError> {
        let mut mapping = Self::default();
        for entry in text.split(',') {
            if entry.trim().is_empty() {
                continue;
            }
            let Some((column, target)) = entry.rsplit_once('=') else {
                return Err(MappingError(format!(
                    "{:?} has no '='; write COLUMN=FIELD, or COLUMN= to drop the column",
                    entry.trim()
                )));
            };
            let target = target.parse().map_err(|MappingError(reason)| {
                MappingError(format!("column {:?}: {reason}", column.trim()))
            })?;
            mapping.insert(column, target)?;
        }
        Ok(mapping)
    }
}

impl fmt::Display for ColumnMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (column, target)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{column}={target}")?;
        }
        Ok(())
    }
}

fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    a.eq_ignore_ascii_case(b) || (!a.is_ascii() && a.to_lowercase() == b.to_lowercase())
}

/// Words of a name, lower case, joined by `_`: `Release Date`, `release-date` → `release_date`.
fn normalised(name: &str) -> String {
    name.split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
        .to_lowercase()
}

/// The known field a header or mapping target names, compared case-insensitively with spaces,
/// `-` and `_` alike: `Release Date` → `release_date`.
pub fn known_field(name: &str) -> Option<&'static str> {
    let name = normalised(name);
    KNOWN_FIELDS.iter().copied().find(|field| *field == name)
}

fn server_field(name: &str) -> Option<&'static str> {
    let name = normalised(name);
    SERVER_FIELDS.iter().copied().find(|field| *field == name)
}

/// Where a column goes when no mapping names it (see the module documentation).
fn guess_target(header: &str) -> ColumnTarget {
    let header = header.trim();
    if header.is_empty() || server_field(header).is_some() {
        ColumnTarget::Drop
    } else if let Some(field) = known_field(header) {
        ColumnTarget::Field(field)
    } else {
        ColumnTarget::Extra(header.to_owned())
    }
}

/// The columns of a CSV header line (its first line, without the line end) with where each
/// goes when no mapping is given: the rule an upload without a mapping follows. For a form that
/// lets a user check the guess and write a [`ColumnMapping`].
pub fn guess_mapping(header_line: &str) -> Vec<(String, ColumnTarget)> {
    let delimiter = delimiter_of(header_line.as_bytes());
    split_line(header_line.as_bytes(), delimiter)
        .into_iter()
        .map(|cell| {
            let header = String::from_utf8_lossy(&cell).trim().to_owned();
            let target = guess_target(&header);
            (header, target)
        })
        .collect()
}

/// Counts `,` and `;` outside quotes; the more frequent one wins, `,` on a tie. Quotes are
/// followed as csv-core follows them: one opens a quoted cell only at the start of a cell
/// (after either delimiter), `""` inside is a quote, and a quote elsewhere is text.
#[derive(Default)]
struct DelimiterCount {
    commas: usize,
    semicolons: usize,
    state: QuoteState,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum QuoteState {
    #[default]
    CellStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted cell: its end, or the first of `""`.
    QuoteInQuoted,
}

impl DelimiterCount {
    /// Counts `bytes` up to the end of the line (a line end outside quotes), returning where the
    /// line ends, if it does in `bytes`.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        use QuoteState::{CellStart, QuoteInQuoted, Quoted, Unquoted};
        for (i, &b) in bytes.iter().enumerate() {
            self.state = match (self.state, b) {
                (Quoted, b'"') => QuoteInQuoted,
                (Quoted, _) => Quoted,
                (CellStart, b'"') | (QuoteInQuoted, b'"') => Quoted,
                (_, b',') => {
                    self.commas += 1;
                    CellStart
                }
                (_, b';') => {
                    self.semicolons += 1;
                    CellStart
                }
                (_, b'\n' | b'\r') => return Some(i),
                _ => Unquoted,
            };
        }
        None
    }

    fn delimiter(&self) -> u8 {
        if self.semicolons > self.commas {
            b';'
        } else {
            b','
        }
    }
}

fn delimiter_of(line: &[u8]) -> u8 {
    let mut count = DelimiterCount::default();
    count.feed(line);
    count.delimiter()
}

fn csv_reader(delimiter: u8) -> Reader {
    ReaderBuilder::new().delimiter(delimiter).build()
}

/// The cells of one line (or the first record of it), unquoted.
fn split_line(line: &[u8], delimiter: u8) -> Vec<Vec<u8>> {
    let mut reader = csv_reader(delimiter);
    // Unquoted cells are never longer than the line, and there is at most one per byte, + 1.
    let mut out = vec![0; line.len() + 1];
    let mut ends = vec![0; line.len() + 2];
    let (_, _, nout, nend) = reader.read_record(line, &mut out, &mut ends);
    let (_, _, _, last) = reader.read_record(&[], &mut out[nout..], &mut ends[nend..]);
    let mut start = 0;
    ends[..nend + last]
        .iter()
        .map(|&end| {
            let cell = out[start..end].to_vec();
            start = end;
            cell
        })
        .collect()
}

/// One column of a CSV upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvColumn {
    /// The header, trimmed.
    pub header: String,
    pub target: ColumnTarget,
}

/// The columns of a CSV upload and where each goes: names the column behind a field in a
/// reject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvColumns {
    delimiter: u8,
    columns: Vec<CsvColumn>,
}

impl CsvColumns {
    /// Maps the headers of a CSV file: `mapping` first, then the guess from each header (see
    /// [`guess_mapping`]). Fails when the mapping names a column the headers lack, when two
    /// columns go to the same field, or when no column goes to `title` or `id`.
    pub fn resolve<S: AsRef<str>>(
        headers: &[S],
        mapping: Option<&ColumnMapping>,
    ) -> Result<Self, MappingError> {
        let headers: Vec<&str> = headers.iter().map(|h| h.as_ref().trim()).collect();
        let listed = || {
            headers
                .iter()
                .map(|h| format!("{h:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(mapping) = mapping {
            for (column, _) in mapping.entries() {
                if !headers.iter().any(|h| same_name(h, column)) {
                    return Err(MappingError(format!(
                        "the mapping names the column {column:?}, which the header does not \
                         have; the columns are {}",
                        listed()
                    )));
                }
            }
        }
        let columns: Vec<CsvColumn> = headers
            .iter()
            .map(|&header| CsvColumn {
                header: header.to_owned(),
                target: mapping
                    .and_then(|m| m.target_of(header))
                    .cloned()
                    .unwrap_or_else(|| guess_target(header)),
            })
            .collect();
        for (i, column) in columns.iter().enumerate() {
            let Some(field) = column.target.field() else {
                continue;
            };
            if let Some(j) = columns[i + 1..]
                .iter()
                .position(|other| other.target.field() == Some(field))
            {
                let other = &columns[i + 1 + j];
                return Err(MappingError(format!(
                    "columns {} ({:?}) and {} ({:?}) both go to {field}; drop one with a \
                     column mapping such as \"{}=\", or map it elsewhere",
                    i + 1,
                    column.header,
                    i + 2 + j,
                    other.header,
                    other.header
                )));
            }
        }
        let named = |field| {
            columns
                .iter()
                .any(|c| c.target == ColumnTarget::Field(field))
        };
        if !named("title") && !named("id") {
            let example = headers.iter().find(|h| !h.is_empty()).unwrap_or(&"Name");
            return Err(MappingError(format!(
                "no column holds the title or the id of a game; the columns are {}; map one with \
                 a column mapping such as \"{example}=title\"",
                listed()
            )));
        }
        Ok(Self {
            delimiter: b',',
            columns,
        })
    }

    /// The delimiter the file uses: `,` or `;` (`,` for columns resolved from a list of headers).
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    pub fn columns(&self) -> &[CsvColumn] {
        &self.columns
    }

    /// The column (1-based number and header) that fills `field`, as a reject names it:
    /// `title`, an extra field's name, or a list item such as `platforms[2]`.
    pub fn column_of(&self, field: &str) -> Option<(usize, &str)> {
        let find = |field: &str| {
            self.columns
                .iter()
                .position(|c| c.target.field() == Some(field))
                .map(|i| (i + 1, self.columns[i].header.as_str()))
        };
        find(field).or_else(|| {
            let (base, _) = field.split_once('[')?;
            find(base)
        })
    }
}

/// What one column's cells become.
#[derive(Clone, Copy)]
enum Kind {
    /// A known field's string.
    Text,
    /// A known field's list of strings.
    List,
    /// A known field's number.
    Number,
    /// An extra field's string.
    Extra,
}

/// A column that is kept: the field it fills and what its cells become.
struct Slot {
    name: String,
    kind: Kind,
}

/// Reads the rows of a CSV upload after its header, reusing its buffers from row to row.
pub(super) struct CsvReader {
    layout: Layout,
    reader: Reader,
    /// The unquoted cells of the current row, back to back; never longer than the record limit
    /// + 2 bytes.
    cells: Vec<u8>,
    /// Where each cell of the current row ends in `cells`; one more than the header's count.
    ends: Vec<usize>,
}

/// How a row's cells become a record's fields.
struct Layout {
    columns: CsvColumns,
    slots: Vec<Option<Slot>>,
}

/// What reading one row found.
struct Row {
    /// Bytes of the row in the file, without its line end.
    bytes: usize,
    cells: usize,
    /// Bytes of unquoted cell text in `CsvReader::cells` (0 when the row is too long).
    text: usize,
}

impl CsvReader {
    /// Reads the header line (starting on `line`) and maps its columns.
    pub(super) fn open<R: Read>(
        input: &mut Input<R>,
        line: u64,
        max_record: usize,
        mapping: Option<&ColumnMapping>,
    ) -> Result<Self, UploadError> {
        let start = input.offset;
        let file_error = |reason: String| {
            UploadError::from(FileError {
                offset: start,
                reason,
            })
        };
        let mut header = Vec::new();
        let mut count = DelimiterCount::default();
        loop {
            let buf = input.fill()?;
            if buf.is_empty() {
                break;
            }
            let end = count.feed(buf);
            let n = end.unwrap_or(buf.len());
            if header.len() + n > max_record {
                return Err(file_error(format!(
                    "the CSV header line is longer than the limit of {max_record} bytes"
                )));
            }
            header.extend_from_slice(&buf[..n]);
            input.consume(n);
            if end.is_some() {
                break;
            }
        }
        let delimiter = count.delimiter();
        let mut headers = Vec::new();
        for (i, cell) in split_line(&header, delimiter).into_iter().enumerate() {
            match String::from_utf8(cell) {
                Ok(text) => headers.push(text),
                Err(_) => {
                    return Err(file_error(format!(
                        "the header of CSV column {} is not valid UTF-8 (is the file compressed, \
                         binary, or saved in another encoding?)",
                        i + 1
                    )));
                }
            }
        }
        let mut columns =
            CsvColumns::resolve(&headers, mapping).map_err(|MappingError(e)| file_error(e))?;
        columns.delimiter = delimiter;
        let slots: Vec<Option<Slot>> = columns
            .columns
            .iter()
            .map(|column| {
                let (name, kind) = match &column.target {
                    ColumnTarget::Drop => return None,
                    ColumnTarget::Field(field @ ("platforms" | "genres" | "tags")) => {
                        (*field, Kind::List)
                    }
                    ColumnTarget::Field(field @ ("rating" | "price")) => (*field, Kind::Number),
                    ColumnTarget::Field(field) => (*field, Kind::Text),
                    ColumnTarget::Extra(name) => (name.as_str(), Kind::Extra),
                };
                Some(Slot {
                    name: name.to_owned(),
                    kind,
                })
            })
            .collect();
        let mut reader = csv_reader(delimiter);
        reader.set_line(line + count_newlines(&header));
        let ends = vec![0; columns.columns.len() + 1];
        Ok(Self {
            layout: Layout { columns, slots },
            reader,
            cells: vec![0; 4096.min(max_record + 2)],
            ends,
        })
    }

    pub(super) fn columns(&self) -> &CsvColumns {
        &self.layout.columns
    }

    pub(super) fn read<R: Read>(
        &mut self,
        input: &mut Input<R>,
        max_record: usize,
        sink: &mut RecordSink<'_>,
    ) -> Result<UploadSummary, UploadError> {
        let delimiter = self.layout.columns.delimiter;
        let mut records = 0u64;
        while self.skip_line_ends(input)? {
            let line = self.reader.line();
            let mut send = |record| {
                records += 1;
                sink(Position::Line(line), record).map_err(|Stop| UploadError::Stopped)
            };
            // A row with no quote that ends in the read buffer is split where its delimiters
            // are, as csv-core would split it, without copying its cells.
            let buf = input.fill()?;
            if let Some((len, cells)) = self.simple_row(buf, max_record) {
                let row = &buf[..len];
                if !row
                    .iter()
                    .all(|&b| b.is_ascii_whitespace() || b == delimiter)
                {
                    send(self.layout.record(row, &self.ends, 1, cells))?;
                }
                input.consume(len);
                continue;
            }
            let row = self.read_row(input, max_record)?;
            let text = &self.cells[..row.text];
            if row.bytes > max_record {
                send(Err(format!(
                    "the row is longer than the limit of {max_record} bytes"
                )))?;
            } else if !text.iter().all(u8::is_ascii_whitespace) {
                send(self.layout.record(text, &self.ends, 0, row.cells))?;
            }
        }
        Ok(UploadSummary {
            format: UploadFormat::Csv,
            records,
        })
    }

    /// The length and cell count of the row at the start of `buf` when it holds no quote, ends
    /// in `buf` and fits in `max` bytes; the cells' ends go to `ends`, each followed by one
    /// delimiter byte.
    fn simple_row(&mut self, buf: &[u8], max: usize) -> Option<(usize, usize)> {
        let len = memchr::memchr2(b'\n', b'\r', buf)?;
        let row = &buf[..len];
        if len > max || memchr::memchr(b'"', row).is_some() {
            return None;
        }
        let mut cells = 0;
        for at in memchr::memchr_iter(self.layout.columns.delimiter, row) {
            // A row with more cells than the header has only their count kept.
            if let Some(end) = self.ends.get_mut(cells) {
                *end = at;
            }
            cells += 1;
        }
        if let Some(end) = self.ends.get_mut(cells) {
            *end = len;
        }
        Some((len, cells + 1))
    }

    /// Skips the line ends before a row (blank lines, the `\n` of a CRLF), counting the lines;
    /// false at the end of the file.
    fn skip_line_ends<R: Read>(&mut self, input: &mut Input<R>) -> Result<bool, UploadError> {
        // A line ends with `\n`, `\r\n` or a lone `\r` (old Mac files): each is one line.
        let mut after_cr = false;
        loop {
            let buf = input.fill()?;
            if buf.is_empty() {
                self.reader
                    .set_line(self.reader.line() + u64::from(after_cr));
                return Ok(false);
            }
            let at = buf.iter().position(|&b| b != b'\n' && b != b'\r');
            let skipped = at.unwrap_or(buf.len());
            let mut lines = 0;
            for &b in &buf[..skipped] {
                match b {
                    b'\n' => {
                        lines += 1;
                        after_cr = false;
                    }
                    _ => {
                        lines += u64::from(after_cr);
                        after_cr = true;
                    }
                }
            }
            input.consume(skipped);
            if at.is_some() {
                lines += u64::from(after_cr);
                self.reader.set_line(self.reader.line() + lines);
                return Ok(true);
            }
            self.reader.set_line(self.reader.line() + lines);
        }
    }

    /// Reads one row into `cells` and `ends`. A row over `max` bytes is read to its end with
    /// its text dropped as it goes; a row with more cells than the header keeps its text but
    /// not where its cells end.
    fn read_row<R: Read>(&mut self, input: &mut Input<R>, max: usize) -> Result<Row, UploadError> {
        let (mut bytes, mut cells, mut text, mut ended) = (0usize, 0usize, 0usize, 0usize);
        let mut too_long = false;
        loop {
            let buf = input.fill()?;
            let at_end = buf.is_empty();
            let (result, nin, nout, nend) =
                self.reader
                    .read_record(buf, &mut self.cells[text..], &mut self.ends[ended..]);
            let ended_by_cr = nin > 0 && buf[nin - 1] == b'\r';
            input.consume(nin);
            bytes += nin;
            cells += nend;
            text += nout;
            ended += nend;
            // Unquoted text is never longer than the row: `cells` grows to `max + 2` at most.
            too_long |= bytes > max + 1;
            if too_long {
                text = 0;
            }
            match result {
                ReadRecordResult::Record | ReadRecordResult::End => {
                    if !at_end {
                        bytes -= 1; // the line end
                    }
                    // csv-core counts `\n` only: a row ended by a lone `\r` ends a line too.
                    if ended_by_cr && input.fill()?.first() != Some(&b'\n') {
                        self.reader.set_line(self.reader.line() + 1);
                    }
                    return Ok(Row { bytes, cells, text });
                }
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    if !too_long {
                        let grown = (self.cells.len() * 2).min(max + 2);
                        self.cells.resize(grown.max(self.cells.len() + 1), 0);
                    }
                }
                // More cells than the header: their ends are not needed, only their count.
                ReadRecordResult::OutputEndsFull => ended = 0,
            }
            if too_long {
                ended = 0;
            }
        }
    }
}

impl Layout {
    /// A row's record, or why it is rejected. `cells` holds the row's cells, each ending where
    /// `ends` says and followed by `gap` bytes.
    fn record(
        &self,
        cells: &[u8],
        ends: &[usize],
        gap: usize,
        count: usize,
    ) -> Result<Record<'static>, String> {
        let header = self.columns.columns.len();
        if count != header {
            return Err(format!(
                "the row has {count} cells; the header has {header}"
            ));
        }
        let mut fields = RecordFields::default();
        let mut start = 0;
        // One check for the whole row; a cell is checked alone only when the row fails or the
        // cell's ends split a character.
        let row = std::str::from_utf8(cells).ok();
        for (i, (&end, slot)) in ends.iter().zip(&self.slots).enumerate() {
            let range = start..end;
            start = end + gap;
            let Some(slot) = slot else {
                continue;
            };
            let bytes = &cells[range.clone()];
            if bytes.trim_ascii().is_empty() {
                continue;
            }
            let checked = row.and_then(|row| row.get(range));
            let Some(cell) = checked.or_else(|| std::str::from_utf8(bytes).ok()) else {
                return Err(format!(
                    "the cell in column {} ({:?}) is not valid UTF-8 (is the file saved in \
                     another encoding?)",
                    i + 1,
                    self.columns.columns[i].header
                ));
            };
            let value = match slot.kind {
                Kind::Text => Value::String(cell.to_owned()),
                Kind::Number => number(cell),
                Kind::List => {
                    let separator = if cell.contains(';') { ';' } else { '|' };
                    let items: Vec<Value> = cell
                        .split(separator)
                        .map(str::trim_ascii)
                        .filter(|item| !item.is_empty())
                        .map(|item| Value::String(item.to_owned()))
                        .collect();
                    if items.is_empty() {
                        continue;
                    }
                    Value::Array(items)
                }
                Kind::Extra => {
                    let value = ExtraValue::from_value(cell);
                    fields.extra.insert(slot.name.clone(), value);
                    continue;
                }
            };
            fields.known.insert(slot.name.clone(), value);
        }
        Ok(Record::Fields(fields))
    }
}

/// A number when the trimmed cell is a finite number (as JSON reads it when it is JSON
/// already), else the cell as a string.
fn number(cell: &str) -> Value {
    let trimmed = cell.trim_ascii();
    let number = if is_json_number(trimmed.as_bytes()) {
        // Out of range (`1e400`) is not a number.
        trimmed.parse::<Number>().ok()
    } else {
        trimmed.parse::<f64>().ok().and_then(Number::from_f64)
    };
    number.map_or_else(|| Value::String(cell.to_owned()), Value::Number)
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn is_json_number(text: &[u8]) -> bool {
    let digits = |i: &mut usize| {
        let from = *i;
        while text.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > from
    };
    let mut i = usize::from(text.first() == Some(&b'-'));
    match text.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if text.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(text.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(text.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == text.len()
}

#[cfg(test)]
mod tests {
    use super::super::tests::json_of;
    use super::super::{ParseLimits, UploadOptions, UploadReader, read_upload_with};
    use super::*;
    use serde_json::{Value, json};
    use std::io;

    /// Each record as parsed JSON, or the reader's reason for not taking it.
    type Seen = Vec<(Position, Result<Value, String>)>;

    fn read_csv(
        input: &[u8],
        mapping: &str,
        limits: ParseLimits,
    ) -> (Result<UploadSummary, UploadError>, Seen) {
        let options = UploadOptions {
            mapping: Some(mapping.parse().unwrap()),
            ..UploadOptions::default()
        };
        let mut seen = Vec::new();
        let result = read_upload_with(input, limits, &options, &mut |pos, rec| {
            seen.push((pos, rec.map(json_of)));
            Ok(())
        });
        (result, seen)
    }

    fn read(input: &[u8]) -> Seen {
        let (result, seen) = read_csv(input, "", ParseLimits::default());
        assert_eq!(result.unwrap().format, UploadFormat::Csv);
        seen
    }

    fn file_error(input: &[u8], mapping: &str) -> FileError {
        match read_csv(input, mapping, ParseLimits::default()).0 {
            Err(UploadError::File(e)) => e,
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    fn record(seen: &Seen, i: usize) -> &Value {
        seen[i].1.as_ref().unwrap()
    }

    fn reason(seen: &Seen, i: usize) -> &str {
        seen[i].1.as_ref().unwrap_err()
    }

    fn lines(seen: &Seen) -> Vec<u64> {
        seen.iter()
            .map(|(p, _)| match p {
                Position::Line(n) => *n,
                Position::Index(_) => panic!("{p:?}"),
            })
            .collect()
    }

    #[test]
    fn anything_but_a_brace_or_a_bracket_is_csv() {
        assert_eq!(
            read(b"title,rating\nA,5\n"),
            vec![(Position::Line(2), Ok(json!({"title": "A", "rating": 5})))]
        );
        // A header that is a known field alone, no delimiter at all.
        assert_eq!(
            record(&read(b"\n\n  Title\r\nB"), 0),
            &json!({"title": "B"})
        );
        let json = read_csv(b"{\"title\":\"A\"}\n", "", ParseLimits::default());
        assert_eq!(json.0.unwrap().format, UploadFormat::Ndjson);
        let error = file_error(b"\n\n", "");
        assert!(error.reason.contains("NDJSON or CSV"), "{error}");
        assert_eq!(
            serde_json::to_value(UploadFormat::Csv).unwrap(),
            json!("csv")
        );
    }

    #[test]
    fn the_delimiter_is_the_more_frequent_of_comma_and_semicolon_outside_quotes() {
        let seen = read(b"title;genres;\"a,b,c\"\nA;RPG|Action;x\n");
        assert_eq!(
            record(&seen, 0),
            &json!({"title": "A", "genres": ["RPG", "Action"], "a,b,c": "x"})
        );
        let seen = read(b"title,\"x;y;z\"\n\"A;B\",1\n");
        assert_eq!(record(&seen, 0), &json!({"title": "A;B", "x;y;z": "1"}));
        // A tie is a comma.
        let seen = read(b"title,a;b\nA,1;2\n");
        assert_eq!(record(&seen, 0), &json!({"title": "A", "a;b": "1;2"}));
        assert_eq!(guess_mapping("title;a,b;c")[1].0, "a,b");
        // A quote inside a cell is text: the header ends at its line end.
        let seen = read(b"title,ti\"tle;x\nA,B\n");
        assert_eq!(record(&seen, 0), &json!({"title": "A", "ti\"tle;x": "B"}));
        assert_eq!(lines(&seen), [2]);
        assert_eq!(
            guess_mapping("a;\"b,\"\"c\"\",d\";e,f\n"),
            [
                ("a".to_owned(), ColumnTarget::Extra("a".into())),
                (
                    "b,\"c\",d".to_owned(),
                    ColumnTarget::Extra("b,\"c\",d".into())
                ),
                ("e,f".to_owned(), ColumnTarget::Extra("e,f".into())),
            ],
            "a quoted cell with doubled quotes"
        );
    }

    #[test]
    fn quoted_cells_hold_delimiters_quotes_and_line_ends_and_lines_stay_right() {
        let input = b"title,description\n\
            \"A, the game\",\"He said \"\"hi\"\"\"\n\
            B,\"two\nlines\r\nand three\"\n\
            \n\
            C,plain\n";
        let seen = read(input);
        assert_eq!(
            record(&seen, 0),
            &json!({"title": "A, the game", "description": "He said \"hi\""})
        );
        assert_eq!(record(&seen, 1)["description"], "two\nlines\r\nand three");
        assert_eq!(
            record(&seen, 2),
            &json!({"title": "C", "description": "plain"})
        );
        assert_eq!(
            lines(&seen),
            [2, 3, 7],
            "row C starts after a 3-line cell and a blank line"
        );
        // A header cell over two lines moves the first row down too.
        assert_eq!(lines(&read(b"\"ti\ntle\",title\n,A\n")), [3]);
    }

    #[test]
    fn a_byte_order_mark_and_crlf_line_ends_are_taken() {
        let seen = read(b"\xEF\xBB\xBFtitle,developer\r\nA,Studio\r\n\r\nB,Other\r\n");
        assert_eq!(
            record(&seen, 0),
            &json!({"title": "A", "developer": "Studio"})
        );
        assert_eq!(
            record(&seen, 1),
            &json!({"title": "B", "developer": "Other"})
        );
        assert_eq!(lines(&seen), [2, 4]);
        // Without the last line end, and with a lone CR ending the header.
        let seen = read(b"title\rA\r\nB");
        assert_eq!(seen.len(), 2);
        assert_eq!(record(&seen, 1), &json!({"title": "B"}));
    }

    #[test]
    fn list_fields_split_on_semicolons_or_bars_and_drop_empty_parts() {
        let seen = read(
            b"title,platforms,genres,tags,notes\n\
              A,PC; Mac ;,Action|RPG| ,x;y,a;b\n\
              B,; ;,Puzzle,PC;Xbox Series X|S,\n",
        );
        assert_eq!(
            record(&seen, 0),
            &json!({
                "title": "A",
                "platforms": ["PC", "Mac"],
                "genres": ["Action", "RPG"],
                "tags": ["x", "y"],
                "notes": "a;b",
            }),
            "only list fields are split"
        );
        assert_eq!(
            record(&seen, 1),
            &json!({"title": "B", "genres": ["Puzzle"], "tags": ["PC", "Xbox Series X|S"]}),
            "a list cell of separators alone is left out; with a ';' a '|' is text"
        );
    }

    #[test]
    fn rating_and_price_are_numbers_when_they_read_as_one() {
        let seen = read(
            b"title,rating,price,developer\n\
              A, 7.5 ,19.99,42\n\
              B,.5,+3,\n\
              C,high,1e999,\n\
              D,8,\"19,99\",\n",
        );
        assert_eq!(
            record(&seen, 0),
            &json!({"title": "A", "rating": 7.5, "price": 19.99, "developer": "42"})
        );
        assert_eq!(
            record(&seen, 1),
            &json!({"title": "B", "rating": 0.5, "price": 3.0})
        );
        assert_eq!(
            record(&seen, 2),
            &json!({"title": "C", "rating": "high", "price": "1e999"}),
            "not a finite number: a string, for validation to reject"
        );
        assert_eq!(record(&seen, 3)["price"], "19,99");
        let game = crate::record::RecordFields::parse(
            serde_json::to_string(record(&seen, 2)).unwrap().as_bytes(),
        )
        .unwrap();
        let errors = crate::Game::from_record(game).unwrap_err();
        assert!(
            errors.iter().any(|e| e.field.as_deref() == Some("rating")),
            "{errors:?}"
        );
    }

    #[test]
    fn empty_cells_are_left_out_and_blank_rows_skipped() {
        let seen = read(b"title,developer,publisher,extra\nA,,  ,\"\"\n,,,\n   \n\"\"\nB,x,y,z\n");
        assert_eq!(record(&seen, 0), &json!({"title": "A"}));
        assert_eq!(
            record(&seen, 1),
            &json!({"title": "B", "developer": "x", "publisher": "y", "extra": "z"})
        );
        assert_eq!(lines(&seen), [2, 6]);
    }

    #[test]
    fn mappings_parse_with_clear_errors() {
        let mapping: ColumnMapping =
            " Name = title , Systems=platforms,Notes=,Studio notes=extra.notes,"
                .parse()
                .unwrap();
        assert_eq!(
            mapping.entries().collect::<Vec<_>>(),
            [
                ("Name", &ColumnTarget::Field("title")),
                ("Systems", &ColumnTarget::Field("platforms")),
                ("Notes", &ColumnTarget::Drop),
                ("Studio notes", &ColumnTarget::Extra("notes".into())),
            ]
        );
        assert_eq!(
            mapping.to_string(),
            "Name=title,Systems=platforms,Notes=,Studio notes=extra.notes"
        );
        assert_eq!(
            "When=Release Date"
                .parse::<ColumnMapping>()
                .unwrap()
                .entries()
                .next(),
            Some(("When", &ColumnTarget::Field("release_date")))
        );
        let error = |text: &str| text.parse::<ColumnMapping>().unwrap_err().to_string();
        let unknown = error("Systems=platform");
        assert!(unknown.contains("unknown field \"platform\""), "{unknown}");
        assert!(unknown.contains("extra.platform"), "{unknown}");
        assert!(error("Name=title,name=id").contains("\"name\" is mapped twice"));
        assert!(error("=title").contains("no column name"));
        assert!(error("Name").contains("no '='"));
        assert!(error("When=created_at").contains("kept by the server"));
        assert!(error("When=extra.updated_at").contains("kept by the server"));
        assert!(error("Name=extra.Title").contains("title is a known field"));
        assert!(error("Name=extra.").contains("names no extra field"));
        assert!("".parse::<ColumnMapping>().unwrap().is_empty());
    }

    #[test]
    fn a_row_has_the_fields_its_json_object_would_have() {
        // A field the server keeps is dropped, as JSON's is.
        let input = "Name,version,Notes,rating\nA,3,\"caf\u{e9} \"\"x\"\" \\ \t\",-0\n";
        let (result, seen) = read_csv(input.as_bytes(), "Name=title", ParseLimits::default());
        result.unwrap();
        let json = br#"{"title":"A","version":3,"Notes":"caf\u00e9 \"x\" \\ \t","rating":-0}"#;
        let expected = crate::record::RecordFields::parse(json).unwrap();
        let [(_, Ok(value))] = &seen[..] else {
            panic!("{seen:?}");
        };
        assert_eq!(value, &json_of(super::Record::Fields(expected)));
        assert_eq!(value["Notes"], "caf\u{e9} \"x\" \\ \t");
    }

    #[test]
    fn a_mapping_goes_before_the_guess_from_the_headers() {
        let input = b"Name,Systems,Release Date,Notes,Studio,created_at\n\
                      A,PC|Mac,2020-01-02,dropped,S,2020-01-01\n";
        let (result, seen) = read_csv(
            input,
            "name=title,Systems=platforms,Notes=,studio=developer",
            ParseLimits::default(),
        );
        result.unwrap();
        assert_eq!(
            record(&seen, 0),
            &json!({
                "title": "A",
                "platforms": ["PC", "Mac"],
                "release_date": "2020-01-02",
                "developer": "S",
            })
        );
        let (result, seen) = read_csv(input, "Name=title", ParseLimits::default());
        result.unwrap();
        assert_eq!(
            record(&seen, 0),
            &json!({
                "title": "A",
                "Systems": "PC|Mac",
                "release_date": "2020-01-02",
                "Notes": "dropped",
                "Studio": "S",
            }),
            "unmapped columns that are not fields are extra fields; server fields are dropped"
        );
    }

    #[test]
    fn the_guess_for_a_form_follows_the_same_rule() {
        let guess = guess_mapping(" Title ;Release Date;cover-image;Notes;;Version\r\n");
        assert_eq!(
            guess,
            [
                ("Title".to_owned(), ColumnTarget::Field("title")),
                (
                    "Release Date".to_owned(),
                    ColumnTarget::Field("release_date")
                ),
                ("cover-image".to_owned(), ColumnTarget::Field("cover_image")),
                ("Notes".to_owned(), ColumnTarget::Extra("Notes".into())),
                (String::new(), ColumnTarget::Drop),
                ("Version".to_owned(), ColumnTarget::Drop),
            ]
        );
        let headers: Vec<&str> = guess.iter().map(|(h, _)| h.as_str()).collect();
        let resolved = CsvColumns::resolve(&headers, None).unwrap();
        let targets: Vec<_> = resolved
            .columns()
            .iter()
            .map(|c| c.target.clone())
            .collect();
        let guessed: Vec<_> = guess.into_iter().map(|(_, t)| t).collect();
        assert_eq!(targets, guessed);
    }

    #[test]
    fn a_file_without_a_title_or_id_column_fails_naming_its_columns() {
        let error = file_error(b"\n\nName,Systems\nA,PC\n", "");
        assert_eq!(error.offset, 2, "the header's offset");
        assert!(error.reason.contains("\"Name\", \"Systems\""), "{error}");
        assert!(error.reason.contains("\"Name=title\""), "{error}");
        // An id alone will do; a dropped title will not.
        assert_eq!(record(&read(b"ID\nabc\n"), 0), &json!({"id": "abc"}));
        let error = file_error(b"title,x\nA,1\n", "title=");
        assert!(
            error.reason.contains("no column holds the title"),
            "{error}"
        );
        let error = file_error(b"title,x\nA,1\n", "Name=title");
        assert!(
            error.reason.contains("\"Name\", which the header does not"),
            "{error}"
        );
    }

    #[test]
    fn two_columns_for_one_field_fail_naming_both() {
        let error = file_error(b"Name,title\nA,B\n", "Name=title");
        assert!(
            error
                .reason
                .contains("columns 1 (\"Name\") and 2 (\"title\") both go to title"),
            "{error}"
        );
        assert!(error.reason.contains("\"title=\""), "{error}");
        let error = file_error(b"title,Notes, Notes \nA,1,2\n", "");
        assert!(
            error.reason.contains("columns 2 (\"Notes\") and 3"),
            "{error}"
        );
        let error = file_error(b"title,Title\nA,B\n", "");
        assert!(error.reason.contains("both go to title"), "{error}");
    }

    #[test]
    fn rejects_can_name_the_column_behind_a_field() {
        let input = &b"Name;Systems;Notes;Rating\nA;PC;x;9\n"[..];
        let options = UploadOptions {
            mapping: Some("Name=title,Systems=platforms,Notes=".parse().unwrap()),
            ..UploadOptions::default()
        };
        let upload = UploadReader::open(input, ParseLimits::default(), &options).unwrap();
        let columns = upload.csv_columns().unwrap().clone();
        assert_eq!(columns.delimiter(), b';');
        assert_eq!(columns.column_of("title"), Some((1, "Name")));
        assert_eq!(columns.column_of("platforms[0]"), Some((2, "Systems")));
        assert_eq!(columns.column_of("rating"), Some((4, "Rating")));
        assert_eq!(columns.column_of("Notes"), None, "dropped");
        assert_eq!(columns.column_of("genres"), None);
        let summary = upload.read(&mut |_, _| Ok(())).unwrap();
        assert_eq!(summary.records, 1);
        let json = UploadReader::open(&b"[]"[..], ParseLimits::default(), &options).unwrap();
        assert!(json.csv_columns().is_none());
    }

    #[test]
    fn a_row_with_the_wrong_cell_count_is_rejected_and_reading_goes_on() {
        let seen = read(b"title,developer\nA\nB,x,y\nC,z\nD,,,,,,,,,,\n,,,,\n");
        assert_eq!(reason(&seen, 0), "the row has 1 cells; the header has 2");
        assert_eq!(reason(&seen, 1), "the row has 3 cells; the header has 2");
        assert_eq!(record(&seen, 2), &json!({"title": "C", "developer": "z"}));
        assert_eq!(reason(&seen, 3), "the row has 11 cells; the header has 2");
        assert_eq!(
            seen.len(),
            4,
            "a row of empty cells is blank, whatever its count"
        );
        assert_eq!(lines(&seen), [2, 3, 4, 5]);
    }

    #[test]
    fn a_cell_that_is_not_utf8_rejects_its_row_naming_the_column() {
        let seen = read(b"title,Notes,x\nA,caf\xE9,\xFF\nB,ok,\n");
        assert_eq!(
            reason(&seen, 0),
            "the cell in column 2 (\"Notes\") is not valid UTF-8 (is the file saved in another \
             encoding?)"
        );
        assert_eq!(record(&seen, 1), &json!({"title": "B", "Notes": "ok"}));
        let error = file_error(b"title,\xFF\nA,1\n", "");
        assert!(
            error.reason.contains("CSV column 2 is not valid UTF-8"),
            "{error}"
        );
        // A compressed file is not taken for CSV.
        let error = file_error(b"\x1f\x8b\x08\x00", "");
        assert!(error.reason.contains("0x1F (is it compressed"), "{error}");
    }

    #[test]
    fn a_long_row_is_rejected_and_the_next_one_read() {
        let limits = ParseLimits {
            max_bytes: 1 << 30,
            max_record_bytes: 16,
        };
        let (result, seen) = read_csv(
            b"title,notes\nA,0123456789abcd\nB,0123456789abcde\nC,\"0123\n456789abc\"\n",
            "",
            limits,
        );
        assert_eq!(result.unwrap().records, 3);
        assert_eq!(record(&seen, 0)["notes"], "0123456789abcd", "16 bytes fit");
        assert_eq!(
            reason(&seen, 1),
            "the row is longer than the limit of 16 bytes"
        );
        assert_eq!(
            reason(&seen, 2),
            "the row is longer than the limit of 16 bytes"
        );
        assert_eq!(lines(&seen), [2, 3, 4]);
        let error = file_error(&vec![b'a'; 2 << 20], "");
        assert!(
            error
                .reason
                .contains("header line is longer than the limit"),
            "{error}"
        );
    }

    #[test]
    fn a_lone_carriage_return_ends_a_line_on_every_path() {
        // Old Mac files end lines with `\r` alone; a quoted row goes through csv-core, the
        // others through the quote-free path: lines grow by one a row either way.
        let (result, seen) = read_csv(
            b"title,notes\rA,x\r\"B\",y\r\rC,z\r\nD,w\n",
            "",
            ParseLimits::default(),
        );
        assert_eq!(result.unwrap().records, 4);
        assert_eq!(lines(&seen), [2, 3, 5, 6]);
    }

    #[test]
    fn a_huge_row_is_skipped_in_constant_memory() {
        let input = io::Read::chain(
            io::Read::chain(
                &b"title,notes\nA,\""[..],
                io::Read::take(io::repeat(b'x'), 10 << 20),
            ),
            &b"\n,\"\"\"\nB,after\n"[..],
        );
        let limits = ParseLimits {
            max_bytes: 1 << 30,
            max_record_bytes: 1024,
        };
        let mut upload = UploadReader::open(input, limits, &UploadOptions::default()).unwrap();
        let mut seen = Vec::new();
        let summary = upload
            .run(&mut |pos, rec| {
                seen.push((pos, rec.map(json_of)));
                Ok(())
            })
            .unwrap();
        assert_eq!(summary.records, 2);
        assert_eq!(
            seen[0],
            (
                Position::Line(2),
                Err("the row is longer than the limit of 1024 bytes".into())
            )
        );
        assert_eq!(
            seen[1],
            (
                Position::Line(4),
                Ok(json!({"title": "B", "notes": "after"}))
            )
        );
        let super::super::Start::Csv(csv) = &upload.start else {
            panic!("not read as CSV");
        };
        assert!(csv.cells.len() <= 1026, "{}", csv.cells.len());
        assert!(csv.ends.len() <= 3);
    }

    #[test]
    fn the_size_limit_fails_the_file() {
        let limits = ParseLimits {
            max_bytes: 20,
            max_record_bytes: 100,
        };
        let (result, seen) = read_csv(b"title\nA\nB\nC\nD\nE\nF\nG\nH\nI\nJ\nK\n", "", limits);
        match result {
            Err(UploadError::File(e)) => {
                assert_eq!(e.offset, 20);
                assert!(e.reason.contains("limit of 20 bytes"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert!(seen.is_empty() || seen.len() < 11);
    }

    #[test]
    fn the_sink_can_stop_the_reader() {
        let result = read_upload_with(
            &b"title\nA\nB\n"[..],
            ParseLimits::default(),
            &UploadOptions::default(),
            &mut |_, _| Err(Stop),
        );
        assert!(matches!(result, Err(UploadError::Stopped)));
    }

    /// Hands over its bytes one at a time, so no row ever ends in the read buffer.
    struct Trickle<'a>(&'a [u8]);

    impl io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buf[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn rows_read_alike_whether_csv_core_or_the_quote_free_path_splits_them() {
        let input = b"title;platforms;rating;Notes\r\n\
            A;PC|Mac;7.5;x\r\n\
            ;;;\r\n\
            \t \r\n\
            B;PC\r\n\
            C;;;;;;\r\n\
            D;PC; 8 ;caf\xE9\r\n\
            \xC3;\xA9;1;2\n\
            E;Switch;9;y\n";
        let collect = |reader: &mut dyn io::Read| {
            let mut seen = Vec::new();
            read_upload_with(
                reader,
                ParseLimits::default(),
                &UploadOptions::default(),
                &mut |pos, rec| {
                    seen.push((pos, rec.map(json_of)));
                    Ok(())
                },
            )
            .unwrap();
            seen
        };
        let whole = collect(&mut &input[..]);
        assert_eq!(whole, collect(&mut Trickle(input)));
        assert_eq!(
            whole,
            [
                (
                    Position::Line(2),
                    Ok(
                        json!({"title": "A", "platforms": ["PC", "Mac"], "rating": 7.5, "Notes": "x"})
                    )
                ),
                (
                    Position::Line(5),
                    Err("the row has 2 cells; the header has 4".into())
                ),
                (
                    Position::Line(6),
                    Err("the row has 7 cells; the header has 4".into())
                ),
                (
                    Position::Line(7),
                    Err(
                        "the cell in column 4 (\"Notes\") is not valid UTF-8 (is the file saved \
                         in another encoding?)"
                            .into()
                    )
                ),
                (
                    Position::Line(8),
                    Err(
                        "the cell in column 1 (\"title\") is not valid UTF-8 (is the file saved \
                         in another encoding?)"
                            .into()
                    ),
                ),
                (
                    Position::Line(9),
                    Ok(json!({"title": "E", "platforms": ["Switch"], "rating": 9, "Notes": "y"}))
                ),
            ]
        );
    }

    #[test]
    fn json_numbers_are_recognised_exactly() {
        for yes in ["0", "-0", "7", "7.5", "-12.25e+3", "1E2", "10"] {
            assert!(is_json_number(yes.as_bytes()), "{yes}");
        }
        for no in ["", "-", "01", "1.", ".5", "+1", "1e", "1e+", "0x1", "1 "] {
            assert!(!is_json_number(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn text_is_escaped_as_json() {
        let seen = read(b"title,description\n\"A \\ \"\"b\"\"\",\"tab\there\x01\"\n");
        assert_eq!(
            record(&seen, 0),
            &json!({"title": "A \\ \"b\"", "description": "tab\there\u{1}"})
        );
        // Past the first 32 bytes of a row, in quoted cells and in unquoted ones.
        let long = "x".repeat(80);
        for (quoted, unquoted, last) in [
            ("\u{1}", "\u{1}", '\u{1}'),
            ("\\", "\\", '\\'),
            ("\"\"", "\"", '"'),
        ] {
            for row in [format!("\"{long}{quoted}\""), format!("{long}{unquoted}")] {
                let seen = read(format!("title,description\nA,{row}\n").as_bytes());
                let description = record(&seen, 0)["description"].as_str().unwrap();
                assert_eq!(description, format!("{long}{last}"), "{row}");
            }
        }
    }
}

#[cfg(test)]
mod speed {
    use super::super::{ParseLimits, read_upload};
    use crate::Game;
    use crate::upload::Record;
    use std::fmt::Write;
    use std::time::{Duration, Instant};

    /// The same records as NDJSON, as CSV with the descriptions quoted (as many exports quote
    /// text) and as CSV with no quote at all.
    fn catalogs(count: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let mut ndjson = String::new();
        let mut csv = String::from(
            "id,title,platforms,genres,release_date,developer,publisher,rating,price,currency,\
             tags,description\n",
        );
        let mut plain = csv.clone();
        for i in 0..count {
            let platforms = ["PC", "Nintendo Switch", "Xbox Series X|S"];
            let (p1, p2) = (platforms[i % 3], platforms[(i / 3) % 3]);
            let (rating, price) = (i % 101, i % 7000);
            let (r, p) = (
                format!("{}.{}", rating / 10, rating % 10),
                format!("{}.{:02}", price / 100, price % 100),
            );
            let description = "A generated game used to measure ludex: it has no story worth \
                               telling but bytes.";
            let _ = writeln!(
                ndjson,
                "{{\"id\":\"g{i:07}\",\"title\":\"Silent Kingdom {i}\",\"platforms\":[\"{p1}\",\
                 \"{p2}\"],\"genres\":[\"RPG\"],\"release_date\":\"2001-02-03\",\"developer\":\
                 \"Quiet Owl\",\"publisher\":\"Tin Robot\",\"rating\":{r},\"price\":{p},\
                 \"currency\":\"USD\",\"tags\":[\"synthetic\",\"batch-{}\"],\"description\":\
                 \"{description}\"}}",
                i / 1000
            );
            let _ = writeln!(
                csv,
                "g{i:07},Silent Kingdom {i},{p1};{p2},RPG,2001-02-03,Quiet Owl,Tin Robot,{r},{p},\
                 USD,synthetic;batch-{},\"{description}\"",
                i / 1000
            );
            let _ = writeln!(
                plain,
                "g{i:07},Silent Kingdom {i},{p1};{p2},RPG,2001-02-03,Quiet Owl,Tin Robot,{r},{p},\
                 USD,synthetic;batch-{},{description}",
                i / 1000
            );
        }
        (ndjson.into_bytes(), csv.into_bytes(), plain.into_bytes())
    }

    /// One run: reading alone, or reading with decoding and validation as an ingest does.
    fn time(input: &[u8], validate: bool) -> Duration {
        let began = Instant::now();
        let mut valid = 0;
        read_upload(input, ParseLimits::default(), &mut |_, text| {
            let record = text.unwrap();
            if validate {
                let fields = record.into_fields().unwrap();
                valid += usize::from(Game::from_record(fields).is_ok());
            } else {
                valid += usize::from(!matches!(record, Record::Json(t) if t.is_empty()));
            }
            Ok(())
        })
        .unwrap();
        assert!(valid > 0);
        began.elapsed()
    }

    /// CSV against NDJSON for the same records, reading alone and reading with the decoding and
    /// validation an ingest does: `cargo test -p ludex-domain --release --lib -- --ignored
    /// --nocapture csv_speed` (`ROUNDS=n` runs of each, 9 by default; `COUNT=n` records,
    /// 200,000 by default; `CSV_ONLY=1` reads only
    /// the CSV, for a profiler). Prints the rates; asserts nothing, the machine's noise is too
    /// large for a bound.
    #[test]
    #[ignore = "a measurement: run it in release"]
    fn csv_speed() {
        let count: usize = std::env::var("COUNT").map_or(200_000, |r| r.parse().unwrap());
        let (ndjson, quoted, plain) = catalogs(count);
        let rounds: usize = std::env::var("ROUNDS").map_or(9, |r| r.parse().unwrap());
        let rate = |d: Duration| count as f64 / d.as_secs_f64();
        if std::env::var_os("CSV_ONLY").is_some() {
            let best = (0..rounds).map(|_| time(&quoted, false)).min().unwrap();
            println!("CSV alone: {:.0} records/s", rate(best));
            return;
        }
        for validate in [false, true] {
            // Alternating runs, the best of each: the machine's noise hits all alike.
            let mut best = [Duration::MAX; 3];
            for _ in 0..rounds {
                for (best, input) in best.iter_mut().zip([&ndjson, &quoted, &plain]) {
                    *best = (*best).min(time(input, validate));
                }
            }
            let [n, q, p] = best.map(rate);
            println!(
                "validate {validate}: NDJSON {n:.0} records/s; CSV quoted {q:.0} ({:.3} of \
                 NDJSON), CSV unquoted {p:.0} ({:.3})",
                q / n,
                p / n
            );
        }
    }
}
