-- Retention: records of rows that could not be stored, older than the cutoff (like the poll log).
DELETE FROM ingest_errors WHERE created_at < :cutoff;
