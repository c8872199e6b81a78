-- Active feeds whose next poll time has come (or every active feed with :force), optionally
-- restricted to some sources, oldest-due first.
SELECT f.id, f.url, f.language, f.section, f.etag, f.last_modified, f.body_hash,
       f.consecutive_failures, s.id AS source_id, s.slug, s.min_request_interval
  FROM feeds f
  JOIN sources s ON s.id = f.source_id
 WHERE f.active
   AND (:force OR f.next_poll_at IS NULL OR f.next_poll_at <= now())
   AND (cardinality(CAST(:slugs AS text[])) = 0 OR s.slug = ANY(:slugs))
 ORDER BY f.next_poll_at NULLS FIRST, f.id;
