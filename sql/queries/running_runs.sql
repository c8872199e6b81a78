-- Runs still marked running, with how long their heartbeat has been silent (rows written before
-- heartbeats existed count from their start).
SELECT id, host, pid, pid_started,
       EXTRACT(EPOCH FROM now() - COALESCE(heartbeat_at, started_at)) AS silent_seconds
  FROM ingestion_runs
 WHERE status = 'running' AND id <> :run_id;
