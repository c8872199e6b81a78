-- Dedup and story tables (filled by the dedup/story stage). Created now so that every later
-- piece (warehouse views, reclustering) has one agreed shape.

-- Near-duplicate copies point at the earliest original; exact duplicates add no row at all.
ALTER TABLE articles ADD COLUMN duplicate_of bigint REFERENCES articles(id);
CREATE INDEX articles_duplicate_of_idx ON articles (duplicate_of) WHERE duplicate_of IS NOT NULL;

-- Other URLs under which an already-stored article was seen (exact duplicates).
CREATE TABLE article_urls (
    url           text PRIMARY KEY,             -- canonicalized
    article_id    bigint NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    reason        text NOT NULL,                -- 'canonical_url', 'guid', 'content_hash'
    first_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX article_urls_article_idx ON article_urls (article_id);

-- One story = one real-world event, across outlets and languages.
CREATE TABLE stories (
    id                 bigserial PRIMARY KEY,
    title              text,
    first_published_at timestamptz,
    last_published_at  timestamptz,
    article_count      integer NOT NULL DEFAULT 0,
    source_count       integer NOT NULL DEFAULT 0,
    language_count     integer NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stories_last_published_idx ON stories (last_published_at DESC);

-- Each article belongs to at most one story; `relation` says how it joined.
CREATE TABLE story_articles (
    story_id   bigint NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    article_id bigint NOT NULL UNIQUE REFERENCES articles(id) ON DELETE CASCADE,
    relation   text NOT NULL CHECK (relation IN ('original', 'near_duplicate', 'same_story', 'cites')),
    score      real,                             -- similarity that decided it (NULL for 'original')
    method     text,                             -- e.g. 'minhash', 'lexical', 'embedding', 'attribution'
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (story_id, article_id)
);

-- Attribution cues ("based on information from France 24", "(AFP)") as provenance links.
CREATE TABLE article_citations (
    article_id       bigint NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    cited_name       text NOT NULL,              -- the outlet as written ('France 24', 'AFP')
    cited_source_id  integer REFERENCES sources(id),
    cited_article_id bigint REFERENCES articles(id) ON DELETE SET NULL,
    cue              text NOT NULL,              -- the phrase that matched
    PRIMARY KEY (article_id, cited_name)
);
