-- Extraction (issue 4): the raw WARC archive's index and article revisions.

-- One row per archived HTTP response (page or feed). The WARC files hold the bytes; this says
-- where each response record is, so that re-extraction reads exactly one gzip member.
CREATE TABLE archive_records (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('page', 'feed')),
    url         text NOT NULL,                 -- the URL the response came from (after redirects)
    article_id  bigint REFERENCES articles(id) ON DELETE SET NULL,   -- pages
    feed_id     integer REFERENCES feeds(id) ON DELETE SET NULL,     -- feed polls
    warc_file   text NOT NULL,                 -- relative to NEWSETL_ARCHIVE_DIR
    warc_offset bigint NOT NULL,               -- of the response record's gzip member
    warc_length bigint NOT NULL,
    digest      text NOT NULL,                 -- WARC-Payload-Digest (sha1:BASE32)
    http_status integer,
    fetched_at  timestamptz NOT NULL,
    UNIQUE (warc_file, warc_offset)
);
CREATE INDEX archive_records_article_idx ON archive_records (article_id, fetched_at DESC) WHERE article_id IS NOT NULL;
CREATE INDEX archive_records_feed_idx ON archive_records (feed_id, fetched_at DESC) WHERE feed_id IS NOT NULL;

-- The previous version of an article whose normalized text changed (on refetch, or when
-- re-extraction from the archive produced different text). The current version stays in articles.
CREATE TABLE article_revisions (
    id                bigserial PRIMARY KEY,
    article_id        bigint NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    reason            text NOT NULL DEFAULT 'refetch' CHECK (reason IN ('refetch', 'reextract')),
    title             text,
    description       text,
    body              text,
    content_hash      text,
    extraction_status text,
    published_at      timestamptz,
    updated_at        timestamptz,
    fetched_at        timestamptz,
    word_count        integer,
    superseded_at     timestamptz NOT NULL DEFAULT now()   -- when the newer version replaced it
);
ALTER TABLE article_revisions ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE INDEX article_revisions_article_idx ON article_revisions (article_id, superseded_at DESC);
