-- Closes the rows of runs whose process is dead; returns those this call closed.
UPDATE ingestion_runs
   SET status = 'abandoned', finished_at = now(), error = :reason
 WHERE id = ANY(:ids) AND status = 'running'
RETURNING id;
