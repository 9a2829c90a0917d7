-- The catalog's aggregates: games per platform, genre, release year and rating point
-- (ludex_domain::counts), kept by the store code in the transaction that writes the games, one
-- update per counter and batch. Reports read these few rows instead of the catalog. The
-- migration fills it from the games already stored (in Rust: keys and labels come from the
-- domain's rules).
CREATE TABLE game_counts (
    dimension TEXT    NOT NULL,               -- platform, genre, year or rating
    key       TEXT    NOT NULL,               -- lower-cased label, year, rating point; '' for none
    label     TEXT    NOT NULL,               -- as shown: the label the counter was created with
    games     INTEGER NOT NULL,
    PRIMARY KEY (dimension, key)
) WITHOUT ROWID;
