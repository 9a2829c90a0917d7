-- The catalog and the ingest ledger on PostgreSQL (docs/postgres.md explains each choice).
-- Applied by the store on open through sqlx's migrator; never edit it once shipped: add the next.

-- Title search folds accents (Éclair matches eclair). unaccent is a trusted extension: the
-- database owner can create it without being a superuser (RDS included).
CREATE EXTENSION IF NOT EXISTS unaccent;

-- One row per game. `content` is the canonical JSON document, kept as text so it reads back
-- byte for byte; the other columns exist to filter, sort and detect changes without parsing it.
-- Sort keys use the "C" collation: byte order, the same order the SQLite store and the
-- cursors use, whatever the database's locale.
CREATE TABLE games (
    id            text     COLLATE "C" PRIMARY KEY,
    title         text     NOT NULL,
    title_key     text     COLLATE "C" NOT NULL,  -- lower-cased title, for sorting
    release_key   text     COLLATE "C" NOT NULL,  -- 'YYYY[-MM[-DD]]', '' when unknown
    release_year  integer,
    rating_key    integer  NOT NULL,              -- tenths, -1 when unrated
    platforms     text[]   NOT NULL,              -- lower-cased labels
    genres        text[]   NOT NULL,
    search        tsvector NOT NULL,              -- the title's words, lower-cased, unaccented
    content       text     NOT NULL,
    content_hash  bytea    NOT NULL,              -- BLAKE3 of content
    version       bigint   NOT NULL,
    created_at    text     COLLATE "C" NOT NULL,  -- RFC 3339 UTC with milliseconds: sorts as time
    updated_at    text     COLLATE "C" NOT NULL,
    attempt       text,                           -- the ingest attempt that last wrote the row
    attempt_pos   bigint                          -- and the record's line or index in its file
);

-- Every sort is a keyset walk over its own index: pages cost the same at any depth.
CREATE INDEX games_by_updated ON games (updated_at, id);
CREATE INDEX games_by_title ON games (title_key, id);
CREATE INDEX games_by_release ON games (release_key, id);
CREATE INDEX games_by_rating ON games (rating_key, id);

-- Label filters (`platforms @> ARRAY['pc']`) and title search (`search @@ tsquery`).
CREATE INDEX games_by_platform ON games USING gin (platforms);
CREATE INDEX games_by_genre ON games USING gin (genres);
CREATE INDEX games_search ON games USING gin (search);

-- The ingest ledger: one entry per distinct upload (key + content fingerprint).
CREATE TABLE ingests (
    id         text  COLLATE "C" PRIMARY KEY,
    started_at text  COLLATE "C" NOT NULL,
    record     jsonb NOT NULL                     -- the IngestRecord
);

CREATE INDEX ingests_by_start ON ingests (started_at, id);
