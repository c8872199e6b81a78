-- The warehouse contract: the only objects downstream teams read.
--
-- Internal tables (public schema) may change at any time; the views of the `warehouse` schema
-- keep their names, columns and meanings, and change only by adding a new schema version
-- (warehouse_v2, ...). Every view and column carries a COMMENT; docs/warehouse.md is generated
-- from those comments (tests/test_warehouse_docs.py keeps the two in sync).
--
-- Parts: 1. change tracking (change_seq, change_xid)  2. full-text search  3. the views
--        4. incremental pulls  5. the read-only role  6. indexes for time and source queries.

CREATE SCHEMA warehouse;
COMMENT ON SCHEMA warehouse IS
    'newsetl''s contract for downstream readers: views over the internal tables, stable across releases (a breaking change adds warehouse_v2). See docs/warehouse.md.';


------------------------------------------------------------------------------------------------
-- 1. Change tracking
--
-- Every insert or update of an article or a story stamps the row with
--   change_seq: a new value from one shared sequence (the row's version number; it only grows)
--   change_xid: the id of the writing transaction (pg_current_xact_id(), 64-bit, never wraps).
-- change_seq is allocated when the row is written, not when the transaction commits, so on its
-- own it cannot tell a reader which changes are still to come: a transaction that took value
-- 41 may commit after one that took 42. The pull cursor is therefore the transaction horizon
-- (part 4); change_seq orders the versions a pull returns.
------------------------------------------------------------------------------------------------

CREATE SEQUENCE change_seq AS bigint;
COMMENT ON SEQUENCE change_seq IS 'Version numbers of article and story rows (see stamp_change()).';

ALTER TABLE articles ADD COLUMN change_seq bigint, ADD COLUMN change_xid xid8;
ALTER TABLE stories  ADD COLUMN change_seq bigint, ADD COLUMN change_xid xid8;

CREATE FUNCTION stamp_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_xid := pg_current_xact_id();
    NEW.change_seq := nextval('change_seq');
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION stamp_change() IS
    'BEFORE INSERT OR UPDATE: gives the row a new change_seq and the writer''s transaction id.';

CREATE TRIGGER articles_stamp_change BEFORE INSERT OR UPDATE ON articles
    FOR EACH ROW EXECUTE FUNCTION stamp_change();
CREATE TRIGGER stories_stamp_change BEFORE INSERT OR UPDATE ON stories
    FOR EACH ROW EXECUTE FUNCTION stamp_change();

-- Rows that exist already get their first version now (the trigger stamps them).
UPDATE articles SET change_seq = NULL;
UPDATE stories SET change_seq = NULL;
ALTER TABLE articles ALTER COLUMN change_seq SET NOT NULL, ALTER COLUMN change_xid SET NOT NULL;
ALTER TABLE stories  ALTER COLUMN change_seq SET NOT NULL, ALTER COLUMN change_xid SET NOT NULL;

-- What the views show of a row may change without the row itself being written: an article's
-- story_id, a story's sources[] and languages[], a member's source/language/published_at, a
-- source's slug or name. These triggers re-stamp the rows whose view output changed
-- ("SET change_seq = change_seq" is enough: stamp_change() runs on every UPDATE).

-- Lock order everywhere in this file: articles before stories (as an article update that
-- re-stamps its story does), so two of these triggers cannot deadlock each other.
CREATE FUNCTION touch_story_members(story_ids bigint[], article_ids bigint[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE articles SET change_seq = change_seq WHERE id = ANY(article_ids);
    UPDATE stories  SET change_seq = change_seq WHERE id = ANY(story_ids);
$$;

-- One statement-level trigger per event (transition tables allow only one event each), one
-- UPDATE per statement however many rows it touched.
CREATE FUNCTION story_membership_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM touch_story_members(ARRAY(SELECT DISTINCT story_id FROM new_rows),
                                    ARRAY(SELECT article_id FROM new_rows));
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM touch_story_members(ARRAY(SELECT DISTINCT story_id FROM old_rows),
                                    ARRAY(SELECT article_id FROM old_rows));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION story_membership_changed() IS
    'A story''s members changed: new versions for the story (sources, languages) and its articles (story_id).';

CREATE TRIGGER story_articles_inserted AFTER INSERT ON story_articles
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION story_membership_changed();
CREATE TRIGGER story_articles_updated AFTER UPDATE ON story_articles
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION story_membership_changed();
CREATE TRIGGER story_articles_deleted AFTER DELETE ON story_articles
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION story_membership_changed();

CREATE FUNCTION article_member_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE stories SET change_seq = change_seq
     WHERE id = (SELECT story_id FROM story_articles WHERE article_id = NEW.id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION article_member_changed() IS
    'An article''s source, language or publication time changed: a new version for its story.';

CREATE TRIGGER articles_member_changed AFTER UPDATE OF source_id, language, published_at ON articles
    FOR EACH ROW
    WHEN ((OLD.source_id, OLD.language, OLD.published_at)
          IS DISTINCT FROM (NEW.source_id, NEW.language, NEW.published_at))
    EXECUTE FUNCTION article_member_changed();

CREATE FUNCTION source_renamed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Rare (the registry renames an outlet) but it changes `source`/`source_name` of every
    -- article of the source, so all of them get a new version.
    UPDATE articles SET change_seq = change_seq WHERE source_id = NEW.id;
    UPDATE stories SET change_seq = change_seq
     WHERE id IN (SELECT sa.story_id FROM story_articles sa
                    JOIN articles a ON a.id = sa.article_id
                   WHERE a.source_id = NEW.id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION source_renamed() IS
    'A source''s slug or name changed: new versions for its articles and their stories.';

CREATE TRIGGER sources_renamed AFTER UPDATE OF slug, name ON sources
    FOR EACH ROW
    WHEN ((OLD.slug, OLD.name) IS DISTINCT FROM (NEW.slug, NEW.name))
    EXECUTE FUNCTION source_renamed();


------------------------------------------------------------------------------------------------
-- 2. Full-text search
--
-- One tsvector per article, built with the text-search configuration of the article's
-- language: title weighted A, description B, body C. Stored as a generated column, so it can
-- never be stale, and it is recomputed only when title, description, body or language change
-- (not when a trigger re-stamps change_seq). Only the first 100,000 characters of the body are
-- indexed: a tsvector is limited to 1 MB, and a huge page must not make the insert fail.
------------------------------------------------------------------------------------------------

-- ISO 639-1 code (any case; 'pt-BR', 'es_419' and the like use their first part) → the snowball
-- configuration shipped with PostgreSQL 15+. Arabic and every other language, or no language,
-- use 'simple' (lower-cased words, no stemming, no stop words).
CREATE FUNCTION warehouse.ts_config(language text) RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE lower(split_part(translate(language, '_', '-'), '-', 1))
    WHEN 'en' THEN 'english'::regconfig
    WHEN 'es' THEN 'spanish'::regconfig
    WHEN 'fr' THEN 'french'::regconfig
    WHEN 'de' THEN 'german'::regconfig
    WHEN 'it' THEN 'italian'::regconfig
    WHEN 'pt' THEN 'portuguese'::regconfig
    WHEN 'nl' THEN 'dutch'::regconfig
    WHEN 'ca' THEN 'catalan'::regconfig
    WHEN 'eu' THEN 'basque'::regconfig
    WHEN 'da' THEN 'danish'::regconfig
    WHEN 'sv' THEN 'swedish'::regconfig
    WHEN 'no' THEN 'norwegian'::regconfig
    WHEN 'nb' THEN 'norwegian'::regconfig
    WHEN 'nn' THEN 'norwegian'::regconfig
    WHEN 'fi' THEN 'finnish'::regconfig
    WHEN 'hu' THEN 'hungarian'::regconfig
    WHEN 'ro' THEN 'romanian'::regconfig
    WHEN 'ru' THEN 'russian'::regconfig
    WHEN 'sr' THEN 'serbian'::regconfig
    WHEN 'el' THEN 'greek'::regconfig
    WHEN 'tr' THEN 'turkish'::regconfig
    WHEN 'id' THEN 'indonesian'::regconfig
    WHEN 'ga' THEN 'irish'::regconfig
    WHEN 'lt' THEN 'lithuanian'::regconfig
    WHEN 'hy' THEN 'armenian'::regconfig
    WHEN 'hi' THEN 'hindi'::regconfig
    WHEN 'ne' THEN 'nepali'::regconfig
    WHEN 'ta' THEN 'tamil'::regconfig
    WHEN 'yi' THEN 'yiddish'::regconfig
    ELSE 'simple'::regconfig
END;
COMMENT ON FUNCTION warehouse.ts_config(text) IS
    'Text-search configuration used for an article language (ISO 639-1 code): en→english, es→spanish, fr→french, de→german, ...; ar, other and unknown languages → simple. Use it to build queries that match search_vector.';

-- The internal table depends on this one contract function on purpose: the mapping is part of
-- the contract (it decides what a search matches), and there must be only one copy of it.
ALTER TABLE articles ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
       setweight(to_tsvector(warehouse.ts_config(language), coalesce(title, '')), 'A')
    || setweight(to_tsvector(warehouse.ts_config(language), coalesce(description, '')), 'B')
    || setweight(to_tsvector(warehouse.ts_config(language), left(coalesce(body, ''), 100000)), 'C')
) STORED;
CREATE INDEX articles_search_idx ON articles USING gin (search_vector);


------------------------------------------------------------------------------------------------
-- 3. The views
------------------------------------------------------------------------------------------------

CREATE VIEW warehouse.articles AS
SELECT a.id                          AS article_id,
       s.slug                        AS source,
       s.name                        AS source_name,
       coalesce(a.final_url, a.url)  AS url,
       a.canonical_url,
       a.title,
       a.description,
       a.body,
       a.language,
       a.authors,
       a.categories,
       a.tags,
       a.image_url,
       a.published_at,
       a.updated_at,
       a.first_seen_at,
       a.word_count,
       a.extraction_status,
       sa.story_id,
       a.duplicate_of,
       a.change_seq,
       a.search_vector
  FROM articles a
  JOIN sources s ON s.id = a.source_id
  LEFT JOIN story_articles sa ON sa.article_id = a.id;

COMMENT ON VIEW warehouse.articles IS
    'One row per stored article (one per canonical URL; exact duplicates found under other URLs add no row).';
COMMENT ON COLUMN warehouse.articles.article_id IS 'Article id; stable, never reused.';
COMMENT ON COLUMN warehouse.articles.source IS 'Slug of the outlet that published it (stable id, e.g. ''france24''); see also warehouse.feed_health.source.';
COMMENT ON COLUMN warehouse.articles.source_name IS 'Display name of the outlet (e.g. ''France 24''); may be renamed.';
COMMENT ON COLUMN warehouse.articles.url IS 'Address of the article page: the URL it was fetched from after redirects, else the link the feed listed.';
COMMENT ON COLUMN warehouse.articles.canonical_url IS 'Normalized URL that identifies the article (lower-case host, no fragment, no tracking parameters, sorted query); unique.';
COMMENT ON COLUMN warehouse.articles.title IS 'Headline: the feed''s title, else the page''s with a trailing site-name suffix removed; NULL if unknown.';
COMMENT ON COLUMN warehouse.articles.description IS 'Standfirst or feed summary, one line of plain text; NULL if none.';
COMMENT ON COLUMN warehouse.articles.body IS 'Main text as plain text (NFC, paragraphs separated by a blank line); the feed''s summary when the page could not be extracted (see extraction_status).';
COMMENT ON COLUMN warehouse.articles.language IS 'ISO 639-1 language code (e.g. ''en'', ''es''): the feed''s declared language, else the page''s, else detected from the text; NULL if unknown.';
COMMENT ON COLUMN warehouse.articles.authors IS 'Author names as published; empty array if none.';
COMMENT ON COLUMN warehouse.articles.categories IS 'Section or category labels from the page or the feed; empty array if none.';
COMMENT ON COLUMN warehouse.articles.tags IS 'Keyword tags from the page''s metadata; empty array if none.';
COMMENT ON COLUMN warehouse.articles.image_url IS 'Lead image URL; NULL if none.';
COMMENT ON COLUMN warehouse.articles.published_at IS 'Publication time (UTC) as the outlet states it, from the page or the feed; NULL if unknown.';
COMMENT ON COLUMN warehouse.articles.updated_at IS 'When the article last changed (UTC): the outlet''s stated update time, or when newsetl stored changed content; NULL if never updated.';
COMMENT ON COLUMN warehouse.articles.first_seen_at IS 'When newsetl first stored the article (UTC).';
COMMENT ON COLUMN warehouse.articles.word_count IS 'Words in body (0 when there is no body).';
COMMENT ON COLUMN warehouse.articles.extraction_status IS '''ok'' (main text extracted from the page), ''recall'' (extracted with the recall-oriented fallback), ''feed_content'' (full text taken from the feed), ''feed_summary'' (page unavailable: body is the feed''s summary), ''failed'' (no text).';
COMMENT ON COLUMN warehouse.articles.story_id IS 'Story (real-world event) the article belongs to, see warehouse.stories; NULL until the story stage has placed it.';
COMMENT ON COLUMN warehouse.articles.duplicate_of IS 'For a near-duplicate copy (e.g. the same wire story on another site): the article_id of the earliest original; NULL otherwise.';
COMMENT ON COLUMN warehouse.articles.change_seq IS 'Version number of the row: a new, larger value whenever any column of this row changes. Orders versions; for incremental pulls use warehouse.articles_changed().';
COMMENT ON COLUMN warehouse.articles.search_vector IS 'Full-text index of title (weight A), description (B) and body (C, first 100,000 characters), built with warehouse.ts_config(language). Query with @@ and websearch_to_tsquery(warehouse.ts_config(''en''), ''...'').';


CREATE VIEW warehouse.stories AS
SELECT st.id                            AS story_id,
       st.title,
       st.first_published_at,
       st.last_published_at,
       coalesce(m.article_count, 0)     AS article_count,
       coalesce(m.source_count, 0)      AS source_count,
       coalesce(m.sources, '{}')        AS sources,
       coalesce(m.languages, '{}')      AS languages,
       st.change_seq
  FROM stories st
  LEFT JOIN LATERAL (
       SELECT count(*)::integer                                   AS article_count,
              count(DISTINCT a.source_id)::integer                AS source_count,
              array_agg(DISTINCT s.slug ORDER BY s.slug)          AS sources,
              array_agg(DISTINCT a.language ORDER BY a.language)
                  FILTER (WHERE a.language IS NOT NULL)           AS languages
         FROM story_articles sa
         JOIN articles a ON a.id = sa.article_id
         JOIN sources s ON s.id = a.source_id
        WHERE sa.story_id = st.id
  ) m ON true;

COMMENT ON VIEW warehouse.stories IS
    'One row per story: one real-world event as covered across outlets and languages. Members are in warehouse.story_articles.';
COMMENT ON COLUMN warehouse.stories.story_id IS 'Story id; stable while the story exists (stories merged by reclustering disappear, their articles move).';
COMMENT ON COLUMN warehouse.stories.title IS 'Representative headline chosen by the story stage; NULL until chosen.';
COMMENT ON COLUMN warehouse.stories.first_published_at IS 'Earliest publication time among the story''s articles (UTC).';
COMMENT ON COLUMN warehouse.stories.last_published_at IS 'Latest publication time among the story''s articles (UTC).';
COMMENT ON COLUMN warehouse.stories.article_count IS 'Number of member articles (rows in warehouse.story_articles for this story), duplicates included.';
COMMENT ON COLUMN warehouse.stories.source_count IS 'Number of distinct outlets among the member articles.';
COMMENT ON COLUMN warehouse.stories.sources IS 'Slugs of the outlets among the member articles, sorted.';
COMMENT ON COLUMN warehouse.stories.languages IS 'Language codes among the member articles, sorted (unknown languages left out).';
COMMENT ON COLUMN warehouse.stories.change_seq IS 'Version number of the row: a new, larger value whenever the story or its membership changes. For incremental pulls use warehouse.stories_changed().';


CREATE VIEW warehouse.story_articles AS
SELECT sa.story_id,
       sa.article_id,
       s.slug          AS source,
       a.language,
       a.published_at,
       sa.relation
  FROM story_articles sa
  JOIN articles a ON a.id = sa.article_id
  JOIN sources s ON s.id = a.source_id;

COMMENT ON VIEW warehouse.story_articles IS
    'Membership of articles in stories: one row per article that belongs to a story (an article belongs to at most one).';
COMMENT ON COLUMN warehouse.story_articles.story_id IS 'The story (warehouse.stories.story_id).';
COMMENT ON COLUMN warehouse.story_articles.article_id IS 'The article (warehouse.articles.article_id); unique in this view.';
COMMENT ON COLUMN warehouse.story_articles.source IS 'Slug of the article''s outlet.';
COMMENT ON COLUMN warehouse.story_articles.language IS 'The article''s language code; NULL if unknown.';
COMMENT ON COLUMN warehouse.story_articles.published_at IS 'The article''s publication time (UTC); NULL if unknown.';
COMMENT ON COLUMN warehouse.story_articles.relation IS 'How the article joined the story: ''original'' (first report), ''near_duplicate'' (edited copy of another member), ''same_story'' (independent report of the same event, any language), ''cites'' (attributes its information to a member, e.g. "according to France 24").';


CREATE VIEW warehouse.feed_health AS
SELECT s.slug                         AS source,
       f.url                          AS feed_url,
       f.language,
       f.last_polled_at,
       CASE WHEN p.polled_at IS NULL      THEN NULL
            WHEN p.error_kind IS NOT NULL THEN p.error_kind
            WHEN p.http_status = 304      THEN 'not_modified'
            ELSE 'ok'
       END                            AS last_status,
       f.consecutive_failures,
       f.last_new_entry_at            AS last_new_article_at,
       (SELECT count(*)::integer
          FROM article_feeds af
         WHERE af.feed_id = f.id
           AND af.first_seen_at > now() - interval '24 hours') AS articles_24h,
       CASE WHEN f.active THEN f.next_poll_at END AS next_poll_at
  FROM feeds f
  JOIN sources s ON s.id = f.source_id
  LEFT JOIN LATERAL (
       SELECT fp.polled_at, fp.http_status, fp.error_kind
         FROM feed_polls fp
        WHERE fp.feed_id = f.id
        ORDER BY fp.polled_at DESC, fp.id DESC
        LIMIT 1
  ) p ON true;

COMMENT ON VIEW warehouse.feed_health IS
    'One row per feed ever configured, with the outcome of its polling; the current state, not history.';
COMMENT ON COLUMN warehouse.feed_health.source IS 'Slug of the outlet the feed belongs to.';
COMMENT ON COLUMN warehouse.feed_health.feed_url IS 'URL of the RSS/Atom feed; unique.';
COMMENT ON COLUMN warehouse.feed_health.language IS 'Language code declared for the feed''s articles; NULL if not declared.';
COMMENT ON COLUMN warehouse.feed_health.last_polled_at IS 'When the feed was last requested (UTC); NULL if never.';
COMMENT ON COLUMN warehouse.feed_health.last_status IS 'Outcome of the last poll: ''ok'', ''not_modified'' (HTTP 304), or the error kind (''http'', ''timeout'', ''connect'', ''parse'', ''blocked'', ''internal'', ...); NULL if never polled.';
COMMENT ON COLUMN warehouse.feed_health.consecutive_failures IS 'Failed polls in a row; 0 after a success.';
COMMENT ON COLUMN warehouse.feed_health.last_new_article_at IS 'When a poll of this feed last found an entry not seen before (UTC); NULL if never.';
COMMENT ON COLUMN warehouse.feed_health.articles_24h IS 'Entries this feed listed for the first time in the last 24 hours (articles already stored via another feed included).';
COMMENT ON COLUMN warehouse.feed_health.next_poll_at IS 'When the feed is due again (UTC); NULL if it was never scheduled or is no longer polled (removed from the registry, or gone).';


CREATE VIEW warehouse.ingestion_runs AS
SELECT r.id AS run_id,
       r.flow_run_id,
       r.kind,
       r.parameters,
       r.started_at,
       r.finished_at,
       r.status,
       r.feeds_polled,
       r.articles_new,
       r.articles_updated,
       r.duplicates,
       r.errors
  FROM ingestion_runs r;

COMMENT ON VIEW warehouse.ingestion_runs IS 'One row per ingestion run (one flow run of newsetl).';
COMMENT ON COLUMN warehouse.ingestion_runs.run_id IS 'Run id, increasing with start time.';
COMMENT ON COLUMN warehouse.ingestion_runs.flow_run_id IS 'Prefect flow-run id (UUID); NULL when run outside Prefect.';
COMMENT ON COLUMN warehouse.ingestion_runs.kind IS '''scheduled'', ''manual'' or ''backfill''; also ''demo'' (the offline demo) and ''maintenance'' (re-extraction, reclustering), passed through unchanged.';
COMMENT ON COLUMN warehouse.ingestion_runs.parameters IS 'Parameters the run was started with (JSON object).';
COMMENT ON COLUMN warehouse.ingestion_runs.started_at IS 'Start time (UTC).';
COMMENT ON COLUMN warehouse.ingestion_runs.finished_at IS 'End time (UTC); NULL while running or if the run died.';
COMMENT ON COLUMN warehouse.ingestion_runs.status IS '''running'', ''completed'' or ''failed''.';
COMMENT ON COLUMN warehouse.ingestion_runs.feeds_polled IS 'Feeds requested in the run (failed ones included).';
COMMENT ON COLUMN warehouse.ingestion_runs.articles_new IS 'Articles stored for the first time.';
COMMENT ON COLUMN warehouse.ingestion_runs.articles_updated IS 'Stored articles whose content changed.';
COMMENT ON COLUMN warehouse.ingestion_runs.duplicates IS 'Entries recognised as duplicates of stored articles.';
COMMENT ON COLUMN warehouse.ingestion_runs.errors IS 'Failed feed polls plus articles whose extraction failed.';


------------------------------------------------------------------------------------------------
-- 4. Incremental pulls
--
-- The cursor is a transaction horizon: pg_snapshot_xmin(pg_current_snapshot()), the oldest
-- transaction id still running. Every transaction below it has finished, so every row version
-- written below it is visible now, and every version still to come will carry a transaction id
-- at or above it. A pull returns the versions written in [previous horizon, new horizon):
-- nothing committed late is skipped (it lands in a later window) and nothing comes twice.
-- `change_seq > last seen` alone would not do: values are taken at write time, so a
-- transaction holding 41 can commit after 42 was read (tests/test_warehouse_pull.py shows it).
------------------------------------------------------------------------------------------------

CREATE FUNCTION warehouse.pull_horizon() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_snapshot_xmin(pg_current_snapshot())::text::bigint;
COMMENT ON FUNCTION warehouse.pull_horizon() IS
    'The cursor for incremental pulls: every change below this horizon is committed and visible. Call it first, then pass it as until_horizon to articles_changed()/stories_changed(), and keep it as the next since_horizon.';

CREATE FUNCTION warehouse.articles_changed(since_horizon bigint, until_horizon bigint)
RETURNS SETOF warehouse.articles
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF until_horizon > warehouse.pull_horizon() OR since_horizon > until_horizon THEN
        RAISE EXCEPTION 'invalid pull window [%, %): until_horizon must come from warehouse.pull_horizon()',
            since_horizon, until_horizon;
    END IF;
    RETURN QUERY
        SELECT v.*
          FROM warehouse.articles v
         WHERE v.article_id IN (SELECT a.id FROM public.articles a
                                 WHERE a.change_xid >= since_horizon::text::xid8
                                   AND a.change_xid <  until_horizon::text::xid8);
END
$$;
COMMENT ON FUNCTION warehouse.articles_changed(bigint, bigint) IS
    'Rows of warehouse.articles inserted or changed in the pull window [since_horizon, until_horizon), current version. Start with since_horizon 0 for a full load.';

CREATE FUNCTION warehouse.stories_changed(since_horizon bigint, until_horizon bigint)
RETURNS SETOF warehouse.stories
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF until_horizon > warehouse.pull_horizon() OR since_horizon > until_horizon THEN
        RAISE EXCEPTION 'invalid pull window [%, %): until_horizon must come from warehouse.pull_horizon()',
            since_horizon, until_horizon;
    END IF;
    RETURN QUERY
        SELECT v.*
          FROM warehouse.stories v
         WHERE v.story_id IN (SELECT st.id FROM public.stories st
                               WHERE st.change_xid >= since_horizon::text::xid8
                                 AND st.change_xid <  until_horizon::text::xid8);
END
$$;
COMMENT ON FUNCTION warehouse.stories_changed(bigint, bigint) IS
    'Rows of warehouse.stories created or changed (title, dates, membership) in the pull window [since_horizon, until_horizon), current version. Re-read warehouse.story_articles for these story_ids.';

CREATE INDEX articles_change_xid_idx ON articles (change_xid);
CREATE INDEX stories_change_xid_idx ON stories (change_xid);


------------------------------------------------------------------------------------------------
-- 5. The read-only role
--
-- Roles belong to the cluster, not the database: another database (or a parallel migration)
-- may have created it already. The views run with their owner's rights, so the reader needs
-- no right on any internal table.
------------------------------------------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'newsetl_reader') THEN
        CREATE ROLE newsetl_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- created concurrently by a migration of another database
END
$$;

REVOKE ALL ON SCHEMA warehouse FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION warehouse.articles_changed(bigint, bigint),
                           warehouse.stories_changed(bigint, bigint) FROM PUBLIC;
GRANT USAGE ON SCHEMA warehouse TO newsetl_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA warehouse TO newsetl_reader;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA warehouse TO newsetl_reader;
-- Views and functions a later migration adds to warehouse (by the same migrating role) are
-- readable by newsetl_reader without a GRANT of their own.
ALTER DEFAULT PRIVILEGES IN SCHEMA warehouse GRANT SELECT ON TABLES TO newsetl_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA warehouse GRANT EXECUTE ON FUNCTIONS TO newsetl_reader;


------------------------------------------------------------------------------------------------
-- 6. Indexes for time-range and source queries (published_at and (source_id, published_at)
--    exist since 0001; stories.last_published_at since 0002).
------------------------------------------------------------------------------------------------

CREATE INDEX articles_first_seen_idx ON articles (first_seen_at);
CREATE INDEX stories_first_published_idx ON stories (first_published_at);
CREATE INDEX article_feeds_feed_seen_idx ON article_feeds (feed_id, first_seen_at);
