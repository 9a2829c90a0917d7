//! Any bytes as an upload: plain or gzip, a JSON object, an array, NDJSON or CSV, with or
//! without a byte order mark. Each record is decoded and validated as ingest does. The reader must
//! not panic, must stay inside its byte limits, and must hand over records in file order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ludex_domain::upload::{self, ParseLimits, Position, UploadError, UploadOptions, UploadReader};
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
    // A CSV row's limit is on the row as written; the JSON it is handed over as may be longer
    // (escapes, the fields' names), but only by a bounded factor: memory stays flat.
    let max_text = if opened.csv_columns().is_some() {
        8 * LIMITS.max_record_bytes + 64
    } else {
        LIMITS.max_record_bytes
    };
    let mut handed = 0u64;
    let mut last: Option<Position> = None;
    let read = opened.read(&mut |position, text| {
        handed += 1;
        assert!(
            last.is_none_or(|before| follows(before, position)),
            "record at {position} after {last:?}"
        );
        last = Some(position);
        if let Ok(text) = text {
            assert!(
                text.len() <= max_text,
                "a record over its limit was handed over"
            );
            if let Ok(RecordFields { known, extra }) = RecordFields::parse(text) {
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
