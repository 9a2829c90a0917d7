-- History (ludex_domain::history): who wrote each game's current version ('key:NAME' or
-- 'ingest:ID'; NULL for versions written before history was kept), and every version a change
-- replaced. An update or a delete files the version it replaces; a delete also files a version
-- with no content that says who deleted the game and when. Creating a game files nothing.
ALTER TABLE games ADD COLUMN changed_by TEXT;

CREATE TABLE game_versions (
    id         TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    content    TEXT,                          -- NULL: this version deleted the game
    changed_at TEXT    NOT NULL,
    changed_by TEXT,
    PRIMARY KEY (id, version)
) WITHOUT ROWID;
