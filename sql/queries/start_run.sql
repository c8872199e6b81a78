INSERT INTO ingestion_runs (flow_run_id, kind, parameters)
VALUES (:flow_run_id, :kind, CAST(:parameters AS jsonb))
RETURNING id;
