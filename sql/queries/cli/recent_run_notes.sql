-- Runs of the window whose row carries notes (sql/0016: what a run could not do or report,
-- e.g. a Prefect API lost mid-run, pages not archived), newest first, with how many there were.
SELECT id AS run_id, kind, status, started_at, finished_at, notes, count(*) OVER () AS total
  FROM ingestion_runs
 WHERE notes IS NOT NULL
   AND started_at >= now() - make_interval(hours => :hours)
 ORDER BY id DESC
 LIMIT :limit;
