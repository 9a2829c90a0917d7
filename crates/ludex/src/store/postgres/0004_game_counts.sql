-- The catalog's aggregates: games per platform, genre, release year and rating point, as
-- ludex_domain::counts defines them. Statement-level triggers keep them in the transaction of
-- every write to `games`, whatever statement makes it: one update per counter and statement,
-- counters locked in key order (after the game rows), so concurrent batches cannot deadlock.
-- Reports read these few rows instead of the catalog.
CREATE TABLE game_counts (
    dimension text   COLLATE "C" NOT NULL,  -- platform, genre, year or rating
    key       text   COLLATE "C" NOT NULL,  -- lower-cased label, year, rating point; '' for none
    label     text   NOT NULL,              -- as shown: the label the counter was created with
    games     bigint NOT NULL,
    PRIMARY KEY (dimension, key)
);

-- Counters that reached zero, found without reading the others (always nearly empty).
CREATE INDEX game_counts_spent ON game_counts (dimension, key) WHERE games <= 0;

-- The counters one game is counted under, with their labels. Label keys are the lower-cased
-- labels the store code wrote in `platforms` and `genres`, in the order of the document's
-- lists, which give the labels as written.
CREATE FUNCTION game_tallies(g games) RETURNS TABLE (dimension text, key text, label text)
LANGUAGE sql IMMUTABLE AS $$
    WITH doc AS (SELECT g.content::jsonb AS d)
    SELECT 'platform', k.key, l.label
    FROM doc, unnest(g.platforms) WITH ORDINALITY AS k(key, i)
        JOIN jsonb_array_elements_text(doc.d -> 'platforms') WITH ORDINALITY AS l(label, i)
            USING (i)
    UNION ALL
    SELECT 'genre', k.key, l.label
    FROM doc, unnest(g.genres) WITH ORDINALITY AS k(key, i)
        JOIN jsonb_array_elements_text(doc.d -> 'genres') WITH ORDINALITY AS l(label, i)
            USING (i)
    UNION ALL
    SELECT 'year', y, y FROM (SELECT coalesce(g.release_year::text, '')) AS t(y)
    UNION ALL
    SELECT 'rating', r, r
    FROM (SELECT CASE WHEN g.rating_key < 0 THEN '' ELSE least(g.rating_key / 10, 9)::text END)
        AS t(r)
$$;

-- Counts `added` in and `removed` out: each counter once, in key order; a new counter takes
-- the first of its labels in byte order; counters that reach zero go.
CREATE FUNCTION count_games(added games[], removed games[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO game_counts AS c (dimension, key, label, games)
    SELECT t.dimension, t.key, min(t.label COLLATE "C"), sum(t.n)
    FROM (
        SELECT x.dimension, x.key, x.label, 1 AS n
        FROM unnest(added) AS g, game_tallies(g) AS x
        UNION ALL
        SELECT x.dimension, x.key, '', -1
        FROM unnest(removed) AS g, game_tallies(g) AS x
    ) AS t
    GROUP BY t.dimension, t.key
    HAVING sum(t.n) <> 0
    ORDER BY t.dimension, t.key
    ON CONFLICT (dimension, key) DO UPDATE SET games = c.games + excluded.games;
    DELETE FROM game_counts WHERE games <= 0;
$$;

CREATE FUNCTION games_counted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM count_games((SELECT array_agg(n::games) FROM new_rows AS n), NULL);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM count_games(NULL, (SELECT array_agg(o::games) FROM old_rows AS o));
    ELSE
        -- Rows rewritten with the same content (a replay's mark) change no counter.
        PERFORM count_games(
            (SELECT array_agg(n::games) FROM new_rows AS n JOIN old_rows AS o USING (id)
             WHERE n.content_hash <> o.content_hash),
            (SELECT array_agg(o::games) FROM old_rows AS o JOIN new_rows AS n USING (id)
             WHERE n.content_hash <> o.content_hash));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER games_counted_inserts AFTER INSERT ON games
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION games_counted();
CREATE TRIGGER games_counted_updates AFTER UPDATE ON games
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION games_counted();
CREATE TRIGGER games_counted_deletes AFTER DELETE ON games
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION games_counted();

-- The games stored before the counters.
SELECT count_games((SELECT array_agg(g) FROM games AS g), NULL);
