-- The catalog's aggregates: games per platform, genre, release year and rating point, as
-- ludex_domain::counts defines them. Statement-level triggers keep them in the transaction of
-- every write to `games`, whatever statement makes it: one update per counter and statement,
-- from the rows' key columns (the documents are read only to name a new counter).
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

-- The platform and genre counter keys of one game with its labels as written: the keys are the
-- lower-cased labels the store code wrote in `platforms` and `genres`, in the order of the
-- document's lists, which give the labels as written. Reads the document: used only to name
-- counters when they are created.
CREATE FUNCTION game_labels(g games) RETURNS TABLE (dimension text, key text, label text)
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
$$;

-- The counter keys of one game, from its key columns (the labels' keys are the lower-cased
-- labels the store code wrote): what counting needs, without reading the document.
CREATE FUNCTION game_count_keys(platforms text[], genres text[], release_year integer,
    rating_key integer) RETURNS TABLE (dimension text, key text)
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'platform', p FROM unnest(platforms) AS p
    UNION ALL
    SELECT 'genre', g FROM unnest(genres) AS g
    UNION ALL
    SELECT 'year', coalesce(release_year::text, '')
    UNION ALL
    SELECT 'rating', CASE WHEN rating_key < 0 THEN '' ELSE least(rating_key / 10, 9)::text END
$$;

CREATE TYPE game_count_change AS (dimension text, key text, games bigint);

-- Adds each change once, in key order (counter rows are locked in that order, after the game
-- rows, so concurrent statements never wait on each other crosswise); counters that reach
-- zero go. A counter created here shows its key until `label_game_counts` names it. Returns
-- the platform and genre counters it created with games in them.
CREATE FUNCTION apply_game_counts(changes game_count_change[]) RETURNS game_count_change[]
LANGUAGE plpgsql AS $$
DECLARE
    created game_count_change[];
BEGIN
    WITH added AS (
        INSERT INTO game_counts AS c (dimension, key, label, games)
        SELECT x.dimension, x.key, x.key, x.games FROM unnest(changes) AS x
        WHERE x.games <> 0
        ORDER BY x.dimension, x.key
        ON CONFLICT (dimension, key) DO UPDATE SET games = c.games + excluded.games
        RETURNING c.dimension, c.key, c.games, c.xmax = 0 AS inserted
    )
    SELECT array_agg(ROW(dimension, key, 0)::game_count_change) INTO created
    FROM added WHERE inserted AND games > 0 AND dimension IN ('platform', 'genre');
    DELETE FROM game_counts WHERE games <= 0;
    RETURN created;
END
$$;

-- Names counters just created by the labels of the games that brought them, from their
-- documents: the first spelling in byte order. Only the games that bring a new label are read.
CREATE FUNCTION label_game_counts(created game_count_change[], brought games[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE game_counts AS c SET label = l.label
    FROM (
        SELECT x.dimension, x.key, min(x.label COLLATE "C") AS label
        FROM unnest(brought) AS g, game_labels(g) AS x, unnest(created) AS n
        WHERE n.dimension = x.dimension AND n.key = x.key
        GROUP BY x.dimension, x.key
    ) AS l
    WHERE c.dimension = l.dimension AND c.key = l.key
$$;

-- Whether a game brings one of the counters just created.
CREATE FUNCTION brings(created game_count_change[], platforms text[], genres text[])
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM unnest(created) AS n
        WHERE (n.dimension = 'platform' AND n.key = ANY (platforms))
           OR (n.dimension = 'genre' AND n.key = ANY (genres))
    )
$$;

-- One function for the three triggers: the rows each statement wrote are counted in, the rows
-- it replaced or deleted counted out (rows rewritten with the same content, a replay's mark,
-- change no counter), and the new counters the written rows bring are named. A branch reads
-- only the transition tables its event has.
CREATE FUNCTION games_counted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    created game_count_change[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        created := apply_game_counts(ARRAY(
            SELECT ROW(k.dimension, k.key, count(*))::game_count_change
            FROM new_rows AS n
                CROSS JOIN LATERAL game_count_keys(n.platforms, n.genres, n.release_year, n.rating_key) AS k
            GROUP BY k.dimension, k.key));
    ELSIF TG_OP = 'UPDATE' THEN
        created := apply_game_counts(ARRAY(
            SELECT ROW(t.dimension, t.key, sum(t.n))::game_count_change
            FROM (
                SELECT k.dimension, k.key, 1 AS n
                FROM new_rows AS n JOIN old_rows AS o USING (id)
                    CROSS JOIN LATERAL game_count_keys(n.platforms, n.genres, n.release_year, n.rating_key) AS k
                WHERE n.content_hash <> o.content_hash
                UNION ALL
                SELECT k.dimension, k.key, -1
                FROM old_rows AS o JOIN new_rows AS n USING (id)
                    CROSS JOIN LATERAL game_count_keys(o.platforms, o.genres, o.release_year, o.rating_key) AS k
                WHERE n.content_hash <> o.content_hash
            ) AS t
            GROUP BY t.dimension, t.key));
    ELSE
        created := apply_game_counts(ARRAY(
            SELECT ROW(k.dimension, k.key, -count(*))::game_count_change
            FROM old_rows AS o
                CROSS JOIN LATERAL game_count_keys(o.platforms, o.genres, o.release_year, o.rating_key) AS k
            GROUP BY k.dimension, k.key));
    END IF;
    -- Only games written bring a counter to name, so `created` is empty after a DELETE.
    IF created IS NOT NULL THEN
        PERFORM label_game_counts(created, ARRAY(
            SELECT n::games FROM new_rows AS n WHERE brings(created, n.platforms, n.genres)));
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
SELECT label_game_counts(
    apply_game_counts(ARRAY(
        SELECT ROW(k.dimension, k.key, count(*))::game_count_change
        FROM games AS g
            CROSS JOIN LATERAL game_count_keys(g.platforms, g.genres, g.release_year, g.rating_key) AS k
        GROUP BY k.dimension, k.key)),
    ARRAY(SELECT g FROM games AS g));
