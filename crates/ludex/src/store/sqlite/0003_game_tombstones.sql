-- The last version of every deleted game id: a game created again under that id counts on
-- from it, so a version (an ETag) never names two different games. One small row per deleted
-- id, kept forever; never listed.
CREATE TABLE game_tombstones (
    id      TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;
