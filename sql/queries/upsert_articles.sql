-- Articles in one statement (:rows, a JSON array of records, each canonical URL once), one row
-- per canonical URL: a rerun with the same content writes nothing, a worse extraction
-- ('failed') never overwrites a good one, and a row whose text changed keeps its previous
-- version in article_revisions in the same statement (:revision_reason is 'refetch' for a page
-- fetched again, 'reextract' for a re-run of extraction over the archive). `prev` reads the
-- rows as of the statement's snapshot (no FOR UPDATE: a locking read of a row that `up`
-- updates in the same statement returns nothing); if two writes of one URL race, the revision
-- holds the older text. Returns the rows written, with their id and whether they are new; a
-- record not returned was unchanged. Rows are inserted in canonical-URL order: new ids follow
-- that order, and two runs loading overlapping batches lock rows in the same order.
WITH incoming AS MATERIALIZED (
    SELECT *
      FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
           source_id integer, url text, final_url text, canonical_url text, guid text, title text,
           description text, body text, language text, authors text[], published_at timestamptz,
           updated_at timestamptz, fetched_at timestamptz, content_hash text, http_status integer,
           extraction_status text, extraction_error text, sitename text, categories text[],
           tags text[], image_url text, word_count integer, page_canonical_url text)
), prev AS MATERIALIZED (
    SELECT a.id, a.title, a.description, a.body, a.content_hash, a.extraction_status,
           a.published_at, a.updated_at, a.fetched_at, a.word_count
      FROM articles a
      JOIN incoming i ON i.canonical_url = a.canonical_url
), up AS (
INSERT INTO articles (source_id, url, final_url, canonical_url, guid, title, description, body,
                      language, authors, published_at, updated_at, fetched_at, content_hash,
                      http_status, extraction_status, extraction_error, sitename, categories,
                      tags, image_url, word_count, page_canonical_url)
SELECT source_id, url, final_url, canonical_url, guid, title, description, body,
       language, coalesce(authors, '{}'), published_at, updated_at, fetched_at, content_hash,
       http_status, extraction_status, extraction_error, sitename, coalesce(categories, '{}'),
       coalesce(tags, '{}'), image_url, word_count, page_canonical_url
  FROM incoming
 ORDER BY canonical_url
ON CONFLICT (canonical_url) DO UPDATE
   SET final_url = excluded.final_url,
       title = excluded.title,
       description = excluded.description,
       body = excluded.body,
       language = excluded.language,
       authors = excluded.authors,
       published_at = COALESCE(articles.published_at, excluded.published_at),
       -- A revision of real text: the page's own newer modified time, else now. A first good
       -- extraction after a failure or a summary, or a re-extraction, is not a new version of
       -- the article: keep what the page says.
       updated_at = CASE
           WHEN :revision_reason = 'refetch' AND articles.content_hash IS NOT NULL
                AND articles.extraction_status NOT IN ('failed', 'feed_summary')
           THEN CASE WHEN excluded.updated_at > COALESCE(articles.updated_at, articles.published_at, '-infinity')
                     THEN excluded.updated_at ELSE now() END
           ELSE COALESCE(excluded.updated_at, articles.updated_at) END,
       fetched_at = excluded.fetched_at,
       content_hash = excluded.content_hash,
       http_status = excluded.http_status,
       extraction_status = excluded.extraction_status,
       extraction_error = excluded.extraction_error,
       sitename = excluded.sitename,
       categories = excluded.categories,
       tags = excluded.tags,
       image_url = excluded.image_url,
       word_count = excluded.word_count,
       page_canonical_url = excluded.page_canonical_url
 WHERE articles.content_hash IS DISTINCT FROM excluded.content_hash
   AND (excluded.extraction_status <> 'failed' OR articles.extraction_status = 'failed')
RETURNING id, canonical_url, (xmax = 0) AS inserted
), rev AS (
INSERT INTO article_revisions (article_id, reason, title, description, body, content_hash,
                               extraction_status, published_at, updated_at, fetched_at, word_count)
SELECT prev.id, :revision_reason, prev.title, prev.description, prev.body, prev.content_hash,
       prev.extraction_status, prev.published_at, prev.updated_at, prev.fetched_at, prev.word_count
  FROM prev JOIN up ON up.id = prev.id
 WHERE NOT up.inserted AND prev.content_hash IS NOT NULL AND prev.extraction_status <> 'failed'
 ORDER BY prev.id
)
SELECT id, canonical_url, inserted FROM up;
