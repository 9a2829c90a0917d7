-- History (ludex_domain::history): who wrote each game's current version ('key:NAME' or
-- 'ingest:ID'; NULL for versions written before history was kept), and every version a change
-- replaced. An update or a delete files the version it replaces; a delete also files a version
-- with no content that says who deleted the game and when. Creating a game files nothing.
ALTER TABLE games ADD COLUMN changed_by TEXT;

-- Rows are appended in rowid order (an update files its version at the end of the table, not
-- in the middle of a B-tree keyed by game id) and found through the index on (id, version).
-- No constraint can fail (no NOT NULL, no UNIQUE: the store copies the rows from `games`, whose
-- columns have them), so filing a version needs no statement journal: a statement that does
-- opens a savepoint, which makes FTS5 write its pending changes to disk and costs the journal's
-- page copies (2.3x the time of an update in the ingest benchmark).
CREATE TABLE game_versions (
    seq        INTEGER PRIMARY KEY,
    id         TEXT,
    version    INTEGER,
    content    TEXT,                          -- NULL: this version deleted the game
    changed_at TEXT,
    changed_by TEXT
);

CREATE INDEX game_versions_by_game ON game_versions (id, version);
