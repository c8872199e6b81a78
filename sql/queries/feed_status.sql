-- One line per feed for `newsetl status`.
SELECT s.slug, f.id, f.url, f.language, f.active, f.deactivated_reason,
       f.last_polled_at, f.last_http_status, f.last_error, f.consecutive_failures,
       f.failing_since, f.next_poll_at, f.last_new_entry_at,
       (SELECT count(*) FROM article_feeds af
         WHERE af.feed_id = f.id AND af.first_seen_at > now() - interval '24 hours') AS new_24h,
       (SELECT count(*) FROM article_feeds af WHERE af.feed_id = f.id) AS articles_total
  FROM feeds f
  JOIN sources s ON s.id = f.source_id
 ORDER BY s.slug, f.url;
