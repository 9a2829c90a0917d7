-- The catalog: one row per game. `content` is the canonical JSON document; the other columns
-- exist to filter, sort and detect changes without parsing it.
CREATE TABLE games (
    seq           INTEGER PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    title         TEXT    NOT NULL,
    title_key     TEXT    NOT NULL,           -- lower-cased title, for sorting
    release_key   TEXT    NOT NULL,           -- 'YYYY[-MM[-DD]]', '' when unknown
    release_year  INTEGER,
    rating_key    INTEGER NOT NULL,           -- tenths, -1 when unrated
    platforms_key TEXT    NOT NULL,           -- lower-cased labels between U+001F separators
    genres_key    TEXT    NOT NULL,
    content       TEXT    NOT NULL,
    content_hash  BLOB    NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    attempt       TEXT,                       -- the ingest attempt that last wrote the row
    attempt_pos   INTEGER                     -- and the record's line or index in its file
);

-- Only the default sort has an index: secondary indexes on random keys (title, date, rating)
-- cost more at ingest than they save on reads of a catalog this size (see BENCHMARKS.md).
-- Sorting by those columns scans with a top-N sort.
CREATE INDEX games_by_updated ON games (updated_at, id);

CREATE VIRTUAL TABLE games_fts USING fts5 (
    title, content = 'games', content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 2'
);

-- The search index is kept by the store code, not by triggers: a trigger makes every row its
-- own statement transaction, and FTS5 flushes its buffer at each one (20x slower ingest).

-- The ingest ledger: one entry per distinct upload (key + content fingerprint).
CREATE TABLE ingests (
    id         TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    record     TEXT NOT NULL                  -- the IngestRecord as JSON
);

CREATE INDEX ingests_by_start ON ingests (started_at, id);
