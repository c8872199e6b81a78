-- One more line on a run's `notes` (sql/0016): something it could not do or report, learnt
-- after its row was finished (the Prefect API lost at its end) or while it runs.
UPDATE ingestion_runs
   SET notes = concat_ws(E'\n', notes, CAST(:note AS text))
 WHERE id = :run_id;
