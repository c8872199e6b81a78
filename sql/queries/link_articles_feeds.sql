-- The feed references of loaded articles (each (feed_id, entry_key) once; in key order, so two
-- runs linking overlapping entries lock them in the same order).
INSERT INTO article_feeds (feed_id, entry_key, article_id, entry_url)
SELECT l.feed_id, l.entry_key, a.id, l.entry_url
  FROM unnest(CAST(:feed_ids AS integer[]), CAST(:entry_keys AS text[]), CAST(:entry_urls AS text[]),
              CAST(:canonical_urls AS text[])) AS l(feed_id, entry_key, entry_url, canonical_url)
  JOIN articles a ON a.canonical_url = l.canonical_url
 ORDER BY l.feed_id, l.entry_key
ON CONFLICT (feed_id, entry_key) DO UPDATE SET last_seen_at = now();
