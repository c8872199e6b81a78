-- Checkpoint of one backfill unit; written once the unit's loads are committed.
INSERT INTO backfill_windows (job_key, unit, mode, sources, window_start, window_end, status, run_id,
                              items, fetched, articles_new, articles_updated, duplicates, failed, error)
VALUES (:job_key, :unit, :mode, :sources, :window_start, :window_end, :status, :run_id,
        :items, :fetched, :articles_new, :articles_updated, :duplicates, :failed, :error)
ON CONFLICT (job_key, unit) DO UPDATE
   SET status = excluded.status, run_id = excluded.run_id, items = excluded.items,
       fetched = excluded.fetched, articles_new = excluded.articles_new,
       articles_updated = excluded.articles_updated, duplicates = excluded.duplicates,
       failed = excluded.failed, error = excluded.error,
       attempts = backfill_windows.attempts + 1, finished_at = now();
