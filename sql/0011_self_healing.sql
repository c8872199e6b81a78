-- Crash-proof, self-healing runs (issue 13).

-- A run's liveness: the process that runs it (host, pid and the pid's start time, so that a
-- reused pid is not taken for the dead run) and a heartbeat it refreshes while it works. A
-- `running` row whose heartbeat is stale, or whose process is gone from its host, belongs to a
-- dead run: the next run (or `maintenance`) closes it as 'abandoned' and takes over its feed
-- leases and page claims at once.
ALTER TABLE ingestion_runs
    ADD COLUMN host         text,
    ADD COLUMN pid          integer,
    ADD COLUMN pid_started  double precision,   -- the process's start time (epoch seconds)
    ADD COLUMN heartbeat_at timestamptz;
ALTER TABLE ingestion_runs DROP CONSTRAINT ingestion_runs_status_check;
ALTER TABLE ingestion_runs ADD CONSTRAINT ingestion_runs_status_check
    CHECK (status IN ('running', 'completed', 'failed', 'abandoned'));
CREATE INDEX ingestion_runs_running_idx ON ingestion_runs (id) WHERE status = 'running';

COMMENT ON COLUMN warehouse.ingestion_runs.finished_at IS 'End time (UTC); NULL while running; for an abandoned run, when a later run found it dead.';
COMMENT ON COLUMN warehouse.ingestion_runs.status IS '''running'', ''completed'', ''failed'' or ''abandoned'' (the run''s process died; closed by a later run or by maintenance).';

-- Rows and values that could not be stored as they came: an entry refused (a link too long to
-- be a key), a value dropped (a date outside 1990 .. now + 2 days), an article row whose load
-- failed on its own while the rest of its batch loaded.
CREATE TABLE ingest_errors (
    id          bigserial PRIMARY KEY,
    run_id      bigint REFERENCES ingestion_runs(id) ON DELETE SET NULL,
    feed_id     integer REFERENCES feeds(id),
    source_id   integer REFERENCES sources(id),
    kind        text NOT NULL CHECK (kind IN ('entry_refused', 'value_dropped', 'row_failed')),
    url         text,                 -- the entry's link or the article's URL, cut to 2,000 characters
    detail      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_errors_created_idx ON ingest_errors (created_at);
-- (Articles a dead run loaded but never gave a story are found by first_seen_at: indexed in 0006.)
