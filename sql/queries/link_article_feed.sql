INSERT INTO article_feeds (feed_id, entry_key, article_id, entry_url)
SELECT :feed_id, :entry_key, id, :entry_url FROM articles WHERE canonical_url = :canonical_url
ON CONFLICT (feed_id, entry_key) DO UPDATE SET last_seen_at = now();
