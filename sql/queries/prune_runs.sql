-- Retention: finished runs older than the cutoff that no poll refers to any more.
DELETE FROM ingestion_runs r
 WHERE r.finished_at < :cutoff
   AND r.status <> 'running'
   AND NOT EXISTS (SELECT 1 FROM feed_polls p WHERE p.run_id = r.id);
