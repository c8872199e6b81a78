INSERT INTO ingestion_runs (flow_run_id, kind, parameters, host, pid, pid_started, heartbeat_at)
VALUES (:flow_run_id, :kind, CAST(:parameters AS jsonb), :host, :pid, :pid_started, now())
RETURNING id;
