-- Units of a backfill job that are finished for good; a rerun skips them.
SELECT unit FROM backfill_windows WHERE job_key = :job_key AND status = 'done';
