-- Durations of finished runs (seconds) per kind, as histogram buckets (see poll_durations.sql).
-- Abandoned runs are left out: their finished_at is when a later run found them dead.
SELECT kind,
       cardinality(CAST(:neg_bounds AS float8[]))
         - width_bucket(-extract(epoch FROM finished_at - started_at)::float8, CAST(:neg_bounds AS float8[])) AS below,
       count(*)::bigint AS n, sum(extract(epoch FROM finished_at - started_at))::float8 AS seconds
  FROM ingestion_runs
 WHERE finished_at IS NOT NULL
   AND status <> 'abandoned'
 GROUP BY 1, 2;
