-- Page claims of dead runs: their owners are "run:<run id>:<batch uuid>" (etl.jobs.batch).
DELETE FROM page_claims
 WHERE claimed_by LIKE ANY(SELECT 'run:' || CAST(id AS text) || ':%' FROM unnest(CAST(:ids AS bigint[])) AS id);
