-- Feed leases of dead runs: their workers are "host:pid:<run id>" (etl.jobs.polling.worker_id).
UPDATE feeds SET leased_until = NULL, leased_by = NULL
 WHERE leased_by LIKE ANY(SELECT '%:' || CAST(id AS text) FROM unnest(CAST(:ids AS bigint[])) AS id);
