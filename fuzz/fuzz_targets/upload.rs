//! Any bytes as an upload: plain or gzip, a JSON object, an array, NDJSON or CSV, with or
//! without a byte order mark. Each record is decoded and validated as ingest does. The reader must
//! not panic, must stay inside its byte limits, and must hand over records in file order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ludex_domain::upload::{
    self, ParseLimits, Position, Record, UploadError, UploadOptions, UploadReader,
};
use ludex_domain::{Game, RecordFields};

/// Small limits, so inputs of a few kilobytes reach the paths over them.
const LIMITS: ParseLimits = ParseLimits {
    max_bytes: 64 * 1024,
    max_record_bytes: 512,
};

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = upload::decompressed(data) else {
        return;
    };
    let opened = match UploadReader::open(reader, LIMITS, &UploadOptions::default()) {
        Ok(opened) => opened,
        Err(UploadError::File(_)) => return,
        Err(UploadError::Stopped) => panic!("nothing stops the reader before it reads"),
    };
    let mut handed = 0u64;
    let mut last: Option<Position> = None;
    let read = opened.read(&mut |position, record| {
        handed += 1;
        assert!(
            last.is_none_or(|before| follows(before, position)),
            "record at {position} after {last:?}"
        );
        last = Some(position);
        if let Ok(record) = record {
            let (size, max) = match &record {
                Record::Json(text) => (text.len(), LIMITS.max_record_bytes),
                // A CSV row's limit is on the row as written; as JSON its fields may be longer
                // (escapes, the fields' names), but only by a bounded factor: memory stays flat.
                Record::Fields(fields) => (json_size(fields), 8 * LIMITS.max_record_bytes + 64),
            };
            assert!(size <= max, "a record over its limit was handed over");
            if let Ok(RecordFields { known, extra }) = record.into_fields() {
                let _ = Game::from_fields(&known, extra);
            }
        }
        Ok(())
    });
    match read {
        Ok(summary) => assert_eq!(summary.records, handed, "the summary miscounts"),
        Err(UploadError::File(_)) => {}
        Err(UploadError::Stopped) => panic!("the sink never stops the reader"),
    }
});

/// Lines and array indexes only grow, and one file never mixes them.
fn follows(before: Position, after: Position) -> bool {
    match (before, after) {
        (Position::Line(a), Position::Line(b)) | (Position::Index(a), Position::Index(b)) => a < b,
        _ => false,
    }
}

/// About the length of the fields as one JSON object.
fn json_size(fields: &RecordFields) -> usize {
    let known = serde_json::to_vec(&fields.known).map_or(0, |json| json.len());
    let extra: usize = fields
        .extra
        .iter()
        .map(|(key, value)| key.len() + value.get().len() + 4)
        .sum();
    known + extra
}
