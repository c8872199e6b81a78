-- Pages loaded without their archive copy in the window (ingest_errors kind 'archive_failed',
-- sql/0016): how many, and the newest one's time and reason — `newsetl status`'s archive line.
SELECT count(*) AS pages_unarchived, max(created_at) AS last_failure_at,
       (array_agg(detail ORDER BY created_at DESC, id DESC))[1] AS last_reason
  FROM ingest_errors
 WHERE kind = 'archive_failed'
   AND created_at >= now() - make_interval(hours => :hours);
