-- The Prefect artifact that reports this run (its key also names the run).
UPDATE ingestion_runs SET artifact_key = :key, artifact_id = CAST(:artifact_id AS uuid)
 WHERE id = :run_id;
