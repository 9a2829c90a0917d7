//! Any JSON text as one record. Validation must not panic, and a game it accepts must be
//! accepted again from its own canonical document, unchanged: stores keep that document and
//! every edit parses it back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ludex_domain::{Game, RecordFields, StoredGame};

fuzz_target!(|data: &[u8]| {
    let Ok(fields) = RecordFields::parse(data) else {
        return;
    };
    let Ok(game) = Game::from_record(fields) else {
        return;
    };
    let stored = StoredGame {
        id: game.id.clone(),
        version: 1,
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
        content: game.content_json(),
    };
    let again = stored.game().unwrap_or_else(|e| {
        panic!(
            "its canonical document {} is refused: {e:?}",
            stored.content
        )
    });
    assert_eq!(
        again.content_json(),
        stored.content,
        "the canonical document is not a fixpoint"
    );
    assert_eq!(again, game);
    let public: serde_json::Value = serde_json::from_str(&stored.to_json())
        .unwrap_or_else(|e| panic!("the public JSON {} is not JSON: {e}", stored.to_json()));
    assert!(public.is_object());
});
