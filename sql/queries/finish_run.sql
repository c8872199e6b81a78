UPDATE ingestion_runs
   SET finished_at = now(), status = :status, feeds_polled = :feeds_polled,
       feeds_failed = :feeds_failed, entries_seen = :entries_seen, articles_new = :articles_new,
       articles_updated = :articles_updated, duplicates = :duplicates, errors = :errors,
       pages_unarchived = :pages_unarchived, error = :error,
       -- notes added while the run went on (add_run_note) are kept, the run's own come after
       notes = NULLIF(concat_ws(E'\n', notes, CAST(:notes AS text)), '')
 WHERE id = :run_id;
