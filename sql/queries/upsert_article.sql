-- One row per canonical URL. A rerun with the same content writes nothing; a worse extraction
-- ('failed') never overwrites a good one.
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
       updated_at = now(),
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
RETURNING id, (xmax = 0) AS inserted;
