-- How many feeds lease_feeds could still hand this run (the same conditions, without locking):
-- a round of polling units is sized by it, so that a run with 8 due feeds starts one unit, not
-- task_workers of them, most of which would find nothing (each unit is a Prefect task run).
SELECT count(*)
  FROM feeds f
  JOIN sources s ON s.id = f.source_id
 WHERE f.active
   AND (:force OR f.next_poll_at IS NULL OR f.next_poll_at <= now())
   AND (f.leased_until IS NULL OR f.leased_until <= now())
   AND (f.last_polled_at IS NULL OR f.last_polled_at < :run_started)
   AND (cardinality(CAST(:slugs AS text[])) = 0 OR s.slug = ANY(:slugs))
   AND NOT EXISTS (SELECT 1 FROM host_backoff b WHERE b.host = f.host AND b.until > now());
