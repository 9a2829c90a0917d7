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

CREATE INDEX games_by_title   ON games (title_key, id);
CREATE INDEX games_by_release ON games (release_key, id);
CREATE INDEX games_by_rating  ON games (rating_key, id);
CREATE INDEX games_by_updated ON games (updated_at, id);

CREATE VIRTUAL TABLE games_fts USING fts5 (
    title, content = 'games', content_rowid = 'seq', tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER games_fts_insert AFTER INSERT ON games BEGIN
    INSERT INTO games_fts (rowid, title) VALUES (new.seq, new.title);
END;

CREATE TRIGGER games_fts_delete AFTER DELETE ON games BEGIN
    INSERT INTO games_fts (games_fts, rowid, title) VALUES ('delete', old.seq, old.title);
END;

CREATE TRIGGER games_fts_update AFTER UPDATE OF title ON games WHEN old.title IS NOT new.title BEGIN
    INSERT INTO games_fts (games_fts, rowid, title) VALUES ('delete', old.seq, old.title);
    INSERT INTO games_fts (rowid, title) VALUES (new.seq, new.title);
END;

-- The ingest ledger: one entry per distinct upload (key + content fingerprint).
CREATE TABLE ingests (
    id         TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    record     TEXT NOT NULL                  -- the IngestRecord as JSON
);

CREATE INDEX ingests_by_start ON ingests (started_at, id);
