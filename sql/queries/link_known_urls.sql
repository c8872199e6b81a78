-- Entries new to this feed whose article is already stored (listed by another feed, or its
-- GUID changed, or seen before under this URL as an exact duplicate): record the feed
-- reference, fetch nothing.
INSERT INTO article_feeds (feed_id, entry_key, article_id, entry_url)
SELECT :feed_id, e.entry_key, COALESCE(a.id, au.article_id), e.entry_url
  FROM unnest(CAST(:keys AS text[]), CAST(:urls AS text[]), CAST(:canonical AS text[]))
       AS e(entry_key, entry_url, canonical_url)
  LEFT JOIN articles a ON a.canonical_url = e.canonical_url
  LEFT JOIN article_urls au ON au.url = e.canonical_url
 WHERE COALESCE(a.id, au.article_id) IS NOT NULL
ON CONFLICT (feed_id, entry_key) DO UPDATE SET last_seen_at = now()
RETURNING entry_key;
