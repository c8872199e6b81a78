-- Backfill checkpoints, and the link from a run to the Prefect artifact that reports it.

-- The Prefect table artifact each flow run publishes (per source: feeds polled, new, updated,
-- duplicates, failed). The key is stable and contains the run id, so the run row and the UI
-- page point at each other.
ALTER TABLE ingestion_runs ADD COLUMN artifact_key text;
ALTER TABLE ingestion_runs ADD COLUMN artifact_id uuid;

-- One row per unit of work of a backfill job. A job is what the operator asked for (mode,
-- sources, inputs, window size), hashed into `job_key`; its date range is cut into windows
-- (`unit` = '2026-11-20' for a one-day window, '2026-11-20+3d' for wider ones, 'undated' for
-- items that carry no date). A rerun of the same job skips every unit whose status is 'done';
-- a killed run leaves no 'done' row for the window it was in, so that window runs again, and
-- the loads are idempotent upserts. Concurrent runs of one job never work on one unit at a
-- time: the worker holds a PostgreSQL advisory lock on (job_key, unit) while it works.
CREATE TABLE backfill_windows (
    job_key      text NOT NULL,
    unit         text NOT NULL,
    mode         text NOT NULL CHECK (mode IN ('sitemap', 'urls', 'warc', 'reextract')),
    sources      text[] NOT NULL DEFAULT '{}',
    window_start timestamptz,                      -- inclusive; NULL for 'undated'
    window_end   timestamptz,                      -- exclusive
    status       text NOT NULL CHECK (status IN ('done', 'incomplete', 'failed')),
    -- 'incomplete': processed, but the plan it came from was partial (a sitemap could not be
    -- read), so a rerun does it again; 'failed': an unexpected error stopped the window.
    run_id       bigint REFERENCES ingestion_runs(id) ON DELETE SET NULL,
    items        integer NOT NULL DEFAULT 0,       -- candidates in the window
    fetched      integer NOT NULL DEFAULT 0,       -- pages fetched (or read from WARC)
    articles_new integer NOT NULL DEFAULT 0,
    articles_updated integer NOT NULL DEFAULT 0,
    duplicates   integer NOT NULL DEFAULT 0,       -- already stored: skipped before fetching, or unchanged
    failed       integer NOT NULL DEFAULT 0,       -- rows whose extraction failed
    error        text,
    attempts     integer NOT NULL DEFAULT 1,
    finished_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_key, unit)
);
CREATE INDEX backfill_windows_run_idx ON backfill_windows (run_id);
