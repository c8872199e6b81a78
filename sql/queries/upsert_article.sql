-- One row per canonical URL. A rerun with the same content writes nothing; a worse extraction
-- ('failed') never overwrites a good one. When the normalized text changed, the previous
-- version goes to article_revisions in the same statement (:revision_reason is 'refetch' for a
-- page fetched again, 'reextract' for a re-run of extraction over the archive).
-- `prev` reads the row as of the statement's snapshot (no FOR UPDATE: a locking read of a row
-- that `up` updates in the same statement returns nothing). Batches are per source, so two
-- concurrent writes of one URL are rare; if they race, the revision holds the older text.
WITH prev AS MATERIALIZED (
    SELECT id, title, description, body, content_hash, extraction_status, published_at,
           updated_at, fetched_at, word_count
      FROM articles
     WHERE canonical_url = :canonical_url
), up AS (
INSERT INTO articles (source_id, url, final_url, canonical_url, guid, title, description, body,
                      language, authors, published_at, updated_at, fetched_at, content_hash,
                      http_status, extraction_status, extraction_error, sitename, categories,
                      tags, image_url, word_count, page_canonical_url)
VALUES (:source_id, :url, :final_url, :canonical_url, :guid, :title, :description, :body,
        :language, :authors, :published_at, :updated_at, :fetched_at, :content_hash,
        :http_status, :extraction_status, :extraction_error, :sitename, :categories,
        :tags, :image_url, :word_count, :page_canonical_url)
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
RETURNING id, (xmax = 0) AS inserted
), rev AS (
INSERT INTO article_revisions (article_id, reason, title, description, body, content_hash,
                               extraction_status, published_at, updated_at, fetched_at, word_count)
SELECT prev.id, :revision_reason, prev.title, prev.description, prev.body, prev.content_hash,
       prev.extraction_status, prev.published_at, prev.updated_at, prev.fetched_at, prev.word_count
  FROM prev JOIN up ON up.id = prev.id
 WHERE NOT up.inserted AND prev.content_hash IS NOT NULL AND prev.extraction_status <> 'failed'
)
SELECT id, inserted FROM up;
