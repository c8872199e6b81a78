-- Articles with an archived page, newest archived response each, for re-extraction.
-- The window applies to the publication time, else to when the article was first seen.
SELECT DISTINCT ON (a.id)
       a.id, a.source_id, a.url, a.canonical_url, a.final_url, a.guid, a.title, a.published_at,
       r.fetched_at, r.warc_file, r.warc_offset, r.warc_length,
       (SELECT f.language FROM article_feeds af JOIN feeds f ON f.id = af.feed_id
         WHERE af.article_id = a.id AND f.language IS NOT NULL
         ORDER BY af.first_seen_at LIMIT 1) AS feed_language
  FROM articles a
  JOIN archive_records r ON r.article_id = a.id AND r.kind = 'page'
  JOIN sources s ON s.id = a.source_id
 WHERE (CAST(:since AS timestamptz) IS NULL OR COALESCE(a.published_at, a.first_seen_at) >= :since)
   AND (CAST(:until AS timestamptz) IS NULL OR COALESCE(a.published_at, a.first_seen_at) < :until)
   AND (cardinality(CAST(:slugs AS text[])) = 0 OR s.slug = ANY(CAST(:slugs AS text[])))
   -- only_failed: rows whose page extraction did not produce the text (retries after a fix)
   AND (NOT :only_failed OR a.extraction_status IN ('failed', 'feed_content', 'feed_summary'))
 ORDER BY a.id, r.fetched_at DESC, r.id DESC;
