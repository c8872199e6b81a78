-- newsetl schema, first cut: sources and their feeds, one row per poll, one row per canonical
-- article with every feed that listed it, and one row per flow run.
-- All timestamps are timestamptz (stored UTC).

CREATE TABLE sources (
    id                   serial PRIMARY KEY,
    slug                 text NOT NULL UNIQUE,          -- stable id used everywhere
    name                 text NOT NULL,
    homepage             text,
    min_request_interval real NOT NULL DEFAULT 1.0,     -- seconds between request starts per host
    active               boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE feeds (
    id                   serial PRIMARY KEY,
    source_id            integer NOT NULL REFERENCES sources(id),
    url                  text NOT NULL UNIQUE,
    language             text,
    section              text,
    active               boolean NOT NULL DEFAULT true, -- removed from the sources file → false
    deactivated_reason   text,
    min_interval         interval,                      -- per-feed override of the poll floor
    max_interval         interval,                      -- per-feed override of the poll ceiling
    -- polling state
    etag                 text,
    last_modified        text,
    body_hash            text,
    last_polled_at       timestamptz,
    next_poll_at         timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_http_status     integer,
    last_error           text,
    last_new_entry_at    timestamptz,
    failing_since        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feeds_due_idx ON feeds (next_poll_at) WHERE active;

CREATE TABLE ingestion_runs (
    id               bigserial PRIMARY KEY,
    flow_run_id      uuid,
    kind             text NOT NULL DEFAULT 'manual'
                     CHECK (kind IN ('scheduled', 'manual', 'backfill', 'demo', 'maintenance')),
    parameters       jsonb NOT NULL DEFAULT '{}'::jsonb,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    status           text NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'completed', 'failed')),
    feeds_polled     integer NOT NULL DEFAULT 0,
    feeds_failed     integer NOT NULL DEFAULT 0,
    entries_seen     integer NOT NULL DEFAULT 0,
    articles_new     integer NOT NULL DEFAULT 0,
    articles_updated integer NOT NULL DEFAULT 0,
    duplicates       integer NOT NULL DEFAULT 0,
    errors           integer NOT NULL DEFAULT 0,
    error            text
);

CREATE TABLE feed_polls (
    id           bigserial PRIMARY KEY,
    feed_id      integer NOT NULL REFERENCES feeds(id),
    run_id       bigint REFERENCES ingestion_runs(id),
    polled_at    timestamptz NOT NULL DEFAULT now(),
    url          text NOT NULL,                  -- the URL actually requested
    http_status  integer,                        -- NULL when no response came back
    bytes        integer,
    duration_ms  integer,
    entries_seen integer NOT NULL DEFAULT 0,
    entries_new  integer NOT NULL DEFAULT 0,
    error_kind   text,                           -- 'http', 'timeout', 'connect', 'parse', 'blocked', ...
    error        text
);
CREATE INDEX feed_polls_feed_time_idx ON feed_polls (feed_id, polled_at DESC);

CREATE TABLE articles (
    id                bigserial PRIMARY KEY,
    source_id         integer NOT NULL REFERENCES sources(id),
    url               text NOT NULL,             -- the link as the feed listed it
    final_url         text,                      -- after redirects
    canonical_url     text NOT NULL UNIQUE,      -- normalized identity of the article
    guid              text,
    title             text,
    description       text,
    body              text,
    language          text,
    authors           text[] NOT NULL DEFAULT '{}',
    published_at      timestamptz,
    fetched_at        timestamptz,
    first_seen_at     timestamptz NOT NULL DEFAULT now(),
    content_hash      text,
    http_status       integer,
    extraction_status text NOT NULL
                      CHECK (extraction_status IN ('ok', 'recall', 'feed_content', 'feed_summary', 'failed')),
    extraction_error  text,                      -- why a fallback or failure happened
    sitename          text,
    categories        text[] NOT NULL DEFAULT '{}',
    tags              text[] NOT NULL DEFAULT '{}',
    image_url         text,
    word_count        integer,
    page_canonical_url text,                     -- rel=canonical / og:url as the page states it
    updated_at        timestamptz                -- when the content last changed (page or revision)
);
-- Bodies are already compact text; skip server-side compression on the embedded server.
ALTER TABLE articles ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE INDEX articles_published_idx ON articles (published_at DESC);
CREATE INDEX articles_source_published_idx ON articles (source_id, published_at DESC);
CREATE INDEX articles_content_hash_idx ON articles (content_hash);

CREATE TABLE article_feeds (
    feed_id       integer NOT NULL REFERENCES feeds(id),
    entry_key     text NOT NULL,                 -- the entry's guid, else its link
    article_id    bigint NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    entry_url     text NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed_id, entry_key)
);
CREATE INDEX article_feeds_article_idx ON article_feeds (article_id);
