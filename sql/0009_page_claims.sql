-- A page being fetched by one run: another run (an ingest next to a backfill, two workers)
-- leaves it alone instead of fetching it a second time. Claims expire, so a crashed run's
-- pages are fetched again later.
CREATE TABLE page_claims (
    canonical_url text PRIMARY KEY,
    claimed_by    text NOT NULL,
    claimed_until timestamptz NOT NULL
);
