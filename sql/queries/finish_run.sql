UPDATE ingestion_runs
   SET finished_at = now(), status = :status, feeds_polled = :feeds_polled,
       feeds_failed = :feeds_failed, entries_seen = :entries_seen, articles_new = :articles_new,
       articles_updated = :articles_updated, duplicates = :duplicates, errors = :errors,
       error = :error
 WHERE id = :run_id;
