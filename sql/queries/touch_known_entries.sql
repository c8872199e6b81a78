-- Entries this feed listed before: just note that the feed still lists them.
UPDATE article_feeds
   SET last_seen_at = now()
 WHERE feed_id = :feed_id AND entry_key = ANY(:keys)
RETURNING entry_key;
