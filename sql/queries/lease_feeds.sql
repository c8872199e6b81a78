-- Claims up to :limit due feeds for one worker. FOR UPDATE SKIP LOCKED lets concurrent workers
-- pass each other's claims; the lease stamp keeps the feed out of every other worker's reach
-- until it is released (poll recorded) or expires (worker crashed). A run polls a feed at most
-- once (:run_started), and feeds whose host is parked by Retry-After are left alone, even with
-- :force (which only ignores the schedule).
WITH picked AS (
    SELECT f.id
      FROM feeds f
      JOIN sources s ON s.id = f.source_id
     WHERE f.active
       AND (:force OR f.next_poll_at IS NULL OR f.next_poll_at <= now())
       AND (f.leased_until IS NULL OR f.leased_until <= now())
       AND (f.last_polled_at IS NULL OR f.last_polled_at < :run_started)
       AND (cardinality(CAST(:slugs AS text[])) = 0 OR s.slug = ANY(:slugs))
       AND NOT EXISTS (SELECT 1 FROM host_backoff b WHERE b.host = f.host AND b.until > now())
     ORDER BY f.next_poll_at NULLS FIRST, f.id
     LIMIT :limit
       FOR UPDATE OF f SKIP LOCKED
)
-- The lease also covers the worst case of politeness: every feed of the chunk on one host,
-- spaced by that source's min_request_interval.
UPDATE feeds f
   SET leased_until = now() + make_interval(secs => :lease_seconds + :limit * s.min_request_interval),
       leased_by = :worker
  FROM picked, sources s
 WHERE f.id = picked.id AND s.id = f.source_id
RETURNING f.id, f.url, f.language, f.section, f.etag, f.last_modified, f.body_hash,
          f.consecutive_failures, s.id AS source_id, s.slug, s.min_request_interval,
          CAST(EXTRACT(EPOCH FROM f.min_interval) AS float8) AS min_interval,
          CAST(EXTRACT(EPOCH FROM f.max_interval) AS float8) AS max_interval,
          f.entry_interval, f.newest_entry_at, f.feed_ttl, f.host;
