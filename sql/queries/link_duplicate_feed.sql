-- The feed reference of an exact duplicate points at the stored article.
INSERT INTO article_feeds (feed_id, entry_key, article_id, entry_url)
VALUES (:feed_id, :entry_key, :article_id, :entry_url)
ON CONFLICT (feed_id, entry_key) DO UPDATE SET last_seen_at = now();
