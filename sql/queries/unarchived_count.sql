-- How many articles of a reextract selection have no archived page (see unarchived_articles.sql).
SELECT count(*)
  FROM articles a
  JOIN sources s ON s.id = a.source_id
 WHERE (CAST(:since AS timestamptz) IS NULL OR COALESCE(a.published_at, a.first_seen_at) >= :since)
   AND (CAST(:until AS timestamptz) IS NULL OR COALESCE(a.published_at, a.first_seen_at) < :until)
   AND (cardinality(CAST(:slugs AS text[])) = 0 OR s.slug = ANY(CAST(:slugs AS text[])))
   AND (NOT :only_failed OR a.extraction_status IN ('failed', 'feed_content', 'feed_summary'))
   AND NOT EXISTS (SELECT 1 FROM archive_records r WHERE r.article_id = a.id AND r.kind = 'page');
