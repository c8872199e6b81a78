-- Full-text search vectors move out of the articles row (issue 12: PostgreSQL CPU per page).
--
-- 0006 stored `search_vector` as a GENERATED column of `articles`. PostgreSQL 15 recomputes a
-- stored generated column on *every* UPDATE of the row, whatever columns it sets, and every
-- non-HOT update (articles has an index on change_xid, so all of them) inserts all of the new
-- tuple's lexemes into the GIN index again. The pipeline updates each article row several
-- times after loading it without touching its text: the story trigger re-stamps it
-- (`change_seq = change_seq`), near-duplicate marking sets `duplicate_of`. Measured on 2,000
-- articles of 900 words: 6.8 ms of PostgreSQL CPU per such UPDATE with the column, 0.3 ms
-- without it; and the GIN pending list each of them fills makes the cost grow with the run.
--
-- Now the vector lives in `article_search`, one row per article, written by a trigger only
-- when the title, description, body or language actually change. Readers see no change:
-- warehouse.articles keeps its `search_vector` column (same name, type, position and comment).

CREATE TABLE article_search (
    article_id    bigint PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    search_vector tsvector NOT NULL
);
COMMENT ON TABLE article_search IS
    'Full-text vector of each article (title A, description B, body C), kept by articles_search_sync.';

INSERT INTO article_search (article_id, search_vector)
SELECT id, search_vector FROM articles;

CREATE INDEX article_search_idx ON article_search USING gin (search_vector);

-- The one definition of what a search matches (was the generated column's expression).
CREATE FUNCTION article_search_vector(title text, description text, body text, language text)
RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector(warehouse.ts_config(language), coalesce(title, '')), 'A')
        || setweight(to_tsvector(warehouse.ts_config(language), coalesce(description, '')), 'B')
        || setweight(to_tsvector(warehouse.ts_config(language), left(coalesce(body, ''), 100000)), 'C')
$$;

CREATE FUNCTION articles_search_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO article_search (article_id, search_vector)
    VALUES (NEW.id, article_search_vector(NEW.title, NEW.description, NEW.body, NEW.language))
    ON CONFLICT (article_id) DO UPDATE SET search_vector = excluded.search_vector;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION articles_search_sync() IS
    'AFTER INSERT, or UPDATE of the text columns: (re)builds the article''s row of article_search.';

CREATE TRIGGER articles_search_inserted AFTER INSERT ON articles
    FOR EACH ROW EXECUTE FUNCTION articles_search_sync();
CREATE TRIGGER articles_search_updated AFTER UPDATE OF title, description, body, language ON articles
    FOR EACH ROW
    WHEN ((OLD.title, OLD.description, OLD.body, OLD.language)
          IS DISTINCT FROM (NEW.title, NEW.description, NEW.body, NEW.language))
    EXECUTE FUNCTION articles_search_sync();

-- Same columns as 0006's view; only where search_vector comes from changes.
CREATE OR REPLACE VIEW warehouse.articles AS
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
       x.search_vector
  FROM articles a
  JOIN sources s ON s.id = a.source_id
  LEFT JOIN story_articles sa ON sa.article_id = a.id
  LEFT JOIN article_search x ON x.article_id = a.id;

ALTER TABLE articles DROP COLUMN search_vector;
