-- What a run could not do or report while its work went on (issue 22).
--
-- pages_unarchived: page responses the run loaded without their WARC copy (full disk, I/O
-- error, permissions); each is also an ingest_errors row of kind 'archive_failed' saying which
-- page and why. Such articles cannot be re-extracted later (`newsetl reextract` counts them).
-- notes: one line per thing the run could not do or report though it completed, e.g. the
-- Prefect API that went away mid-run (what Prefect did not get), or the archive's disk filling.
--
-- Both stay out of warehouse.ingestion_runs: that view carries what a run loaded (the counts a
-- downstream reader reconciles against) and, like `error`, `feeds_failed` or the run's
-- process, leaves operations out; operators read these through `newsetl status` and the
-- metrics (docs/faults.md).
ALTER TABLE ingestion_runs
    ADD COLUMN pages_unarchived integer NOT NULL DEFAULT 0,
    ADD COLUMN notes            text;

ALTER TABLE ingest_errors DROP CONSTRAINT ingest_errors_kind_check;
ALTER TABLE ingest_errors ADD CONSTRAINT ingest_errors_kind_check
    CHECK (kind IN ('entry_refused', 'value_dropped', 'row_failed', 'archive_failed'));
-- `newsetl reextract --list-unarchived` says why each page is missing (sql/queries/unarchived_articles.sql).
CREATE INDEX ingest_errors_archive_failed_idx ON ingest_errors (url) WHERE kind = 'archive_failed';
