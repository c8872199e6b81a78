-- Runs in progress (or dead without having recorded their end).
SELECT count(*) FROM ingestion_runs WHERE status = 'running';
