-- History (ludex_domain::history): who wrote each game's current version ('key:NAME' or
-- 'ingest:ID'; NULL for versions written before history was kept), and every version a change
-- replaced. An update or a delete files the version it replaces, in the statement that makes
-- the change; a delete also files a version with no content that says who deleted the game
-- and when. Creating a game files nothing.
ALTER TABLE games ADD COLUMN changed_by text;

CREATE TABLE game_versions (
    id         text COLLATE "C" NOT NULL,
    version    int8 NOT NULL,
    content    text,                          -- NULL: this version deleted the game
    changed_at text COLLATE "C" NOT NULL,
    changed_by text,
    PRIMARY KEY (id, version)
);
