//! A stored game and a JSON Merge Patch (RFC 7396), as `PATCH /games/{id}` applies it: the
//! first line of the input is the game, the rest the patch. Nothing may panic, and applying
//! the same patch twice must change nothing more than applying it once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ludex_domain::{Game, RecordFields};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (stored, patch) = data.split_at(split);
    let (Ok(stored), Ok(patch)) = (RecordFields::parse(stored), RecordFields::parse(patch)) else {
        return;
    };
    let mut merged = stored;
    merged.merge_patch(&patch);
    let mut twice = merged.clone();
    twice.merge_patch(&patch);
    assert_eq!(twice, merged, "the patch is not idempotent");
    let _ = Game::from_record(merged);
});
