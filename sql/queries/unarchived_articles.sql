-- Articles of a reextract selection with no archived page (sql/0016): their page was not
-- archived when fetched (the disk was full: ingest_errors kind 'archive_failed' says why), no
-- response came back at all, or archiving was off. Same window and filters as
-- archived_articles.sql; newest first.
SELECT a.id, s.slug AS source, a.first_seen_at, a.extraction_status, a.canonical_url AS url,
       (SELECT e.detail FROM ingest_errors e
         WHERE e.kind = 'archive_failed' AND e.url = a.url
         ORDER BY e.created_at DESC LIMIT 1) AS why
  FROM articles a
  JOIN sources s ON s.id = a.source_id
 WHERE (CAST(:since AS timestamptz) IS NULL OR COALESCE(a.published_at, a.first_seen_at) >= :since)
   AND (CAST(:until AS timestamptz) IS NULL OR COALESCE(a.published_at, a.first_seen_at) < :until)
   AND (cardinality(CAST(:slugs AS text[])) = 0 OR s.slug = ANY(CAST(:slugs AS text[])))
   AND (NOT :only_failed OR a.extraction_status IN ('failed', 'feed_content', 'feed_summary'))
   AND NOT EXISTS (SELECT 1 FROM archive_records r WHERE r.article_id = a.id AND r.kind = 'page')
 ORDER BY a.id DESC;
