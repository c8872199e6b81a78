-- Dedup and story clustering state (issue 5). The result tables (articles.duplicate_of,
-- article_urls, stories, story_articles, article_citations) are in 0002; this adds what the
-- stage needs to stay per-article constant-time as the warehouse grows.

-- MinHash LSH bands: one row per (article, band). A candidate lookup is one index probe per
-- band, whatever the number of stored articles.
CREATE TABLE article_lsh (
    article_id bigint   NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    band       smallint NOT NULL,
    hash       bigint   NOT NULL,
    PRIMARY KEY (article_id, band)
);
CREATE INDEX article_lsh_band_hash_idx ON article_lsh (band, hash);

-- What story matching needs from an article, computed once (the sentence embedding is the
-- expensive part): content terms and named entities of title + lead, numbers, the embedding
-- of title + lead, and the time used for the window. `assigned_at` marks an article the
-- stage has processed (a rerun skips it; recluster clears it).
CREATE TABLE article_features (
    article_id   bigint PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,
    event_time   timestamptz NOT NULL,             -- published_at, else first_seen_at
    language     text,
    terms        text[] NOT NULL DEFAULT '{}',
    entities     text[] NOT NULL DEFAULT '{}',
    numbers      text[] NOT NULL DEFAULT '{}',
    embedding    float4[],                          -- NULL when the encoder is not installed
    assigned_at  timestamptz
);
CREATE INDEX article_features_time_idx ON article_features (event_time, article_id);
CREATE INDEX article_features_unassigned_idx ON article_features (event_time, article_id)
    WHERE assigned_at IS NULL;

-- A story's running profile, so that a new article is compared with the stories of the
-- active window only, never with their articles: term/entity/number counts over members and
-- the centroid of member embeddings (sum, not normalized; cosine does not care).
CREATE TABLE story_profiles (
    story_id       bigint PRIMARY KEY REFERENCES stories(id) ON DELETE CASCADE,
    member_count   integer NOT NULL DEFAULT 0,      -- distinct events counted (near-duplicates excluded)
    terms          jsonb NOT NULL DEFAULT '{}'::jsonb,
    entities       jsonb NOT NULL DEFAULT '{}'::jsonb,
    numbers        jsonb NOT NULL DEFAULT '{}'::jsonb,
    centroid       float4[],
    embedded_count integer NOT NULL DEFAULT 0,
    languages      text[] NOT NULL DEFAULT '{}',
    source_ids     integer[] NOT NULL DEFAULT '{}'
);
CREATE INDEX stories_window_idx ON stories (last_published_at, first_published_at);

-- Dedup/story counters per run (exact duplicates go to the existing `duplicates` column).
ALTER TABLE ingestion_runs
    ADD COLUMN near_duplicates  integer NOT NULL DEFAULT 0,
    ADD COLUMN stories_new      integer NOT NULL DEFAULT 0,
    ADD COLUMN stories_joined   integer NOT NULL DEFAULT 0,
    ADD COLUMN citations        integer NOT NULL DEFAULT 0;

CREATE INDEX article_citations_cited_source_idx ON article_citations (cited_source_id);
