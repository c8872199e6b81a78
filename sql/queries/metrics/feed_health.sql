-- Feed health for Prometheus, one row per active feed. Ages are in seconds, measured by the
-- database clock; a feed that never succeeded (or never found anything) counts from when it
-- was added, so "never" still grows and alerts.
SELECT s.slug AS source, f.url AS feed,
       f.consecutive_failures,
       extract(epoch FROM now() - coalesce(ok.last_success, f.created_at))::float8 AS since_success,
       extract(epoch FROM now() - coalesce(f.last_new_entry_at, f.created_at))::float8 AS since_new_article,
       (b.host IS NOT NULL) AS host_parked
  FROM feeds f
  JOIN sources s ON s.id = f.source_id
  LEFT JOIN LATERAL (
       SELECT max(p.polled_at) AS last_success
         FROM feed_polls p
        WHERE p.feed_id = f.id AND p.error_kind IS NULL AND p.error IS NULL
  ) ok ON true
  LEFT JOIN host_backoff b ON b.host = f.host AND b.until > now()
 WHERE f.active
 ORDER BY s.slug, f.url;
