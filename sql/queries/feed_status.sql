-- One line per feed for `newsetl status`: health, schedule, what is new, and whether its host
-- is parked by Retry-After.
SELECT s.slug, f.id, f.url, f.registry_url, f.language, f.active, f.deactivated_reason,
       f.last_polled_at, f.last_http_status, f.last_error, f.consecutive_failures,
       f.failing_since, f.next_poll_at, f.last_new_entry_at, f.newest_entry_at,
       f.entry_interval, f.leased_until, f.leased_by, b.until AS host_parked_until,
       b.reason AS host_parked_reason,
       (SELECT count(*) FROM article_feeds af
         WHERE af.feed_id = f.id AND af.first_seen_at > now() - interval '24 hours') AS new_24h,
       (SELECT count(*) FROM article_feeds af WHERE af.feed_id = f.id) AS articles_total
  FROM feeds f
  JOIN sources s ON s.id = f.source_id
  LEFT JOIN host_backoff b ON b.host = f.host AND b.until > now()
 ORDER BY s.slug, f.url;
