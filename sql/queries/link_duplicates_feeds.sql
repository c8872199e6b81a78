-- The feed references of exact duplicates point at the stored article (each (feed_id,
-- entry_key) once, in key order).
INSERT INTO article_feeds (feed_id, entry_key, article_id, entry_url)
SELECT l.feed_id, l.entry_key, l.article_id, l.entry_url
  FROM unnest(CAST(:feed_ids AS integer[]), CAST(:entry_keys AS text[]), CAST(:entry_urls AS text[]),
              CAST(:article_ids AS bigint[])) AS l(feed_id, entry_key, entry_url, article_id)
 ORDER BY l.feed_id, l.entry_key
ON CONFLICT (feed_id, entry_key) DO UPDATE SET last_seen_at = now();
