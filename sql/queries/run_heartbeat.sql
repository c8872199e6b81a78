-- The run is alive: refreshed every few seconds by a thread of the process that runs it.
UPDATE ingestion_runs SET heartbeat_at = now() WHERE id = :run_id AND status = 'running';
