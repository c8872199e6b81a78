-- The other URLs of an article, for warehouse readers (issue 14).
--
-- An exact duplicate met under a second URL (the same normalized text as a stored article)
-- adds no article row, only an alias in article_urls. Without this view
-- a reader holding such a URL from elsewhere (a tweet, a wire list) could not find the article
-- or its story. Additive: the warehouse contract only grows (see 0006_warehouse.sql).

CREATE VIEW warehouse.article_urls AS
SELECT u.article_id,
       u.url,
       u.reason,
       u.first_seen_at
  FROM article_urls u;

COMMENT ON VIEW warehouse.article_urls IS
    'Other URLs under which a stored article was found (exact duplicates add no article row, only a row here); one row per URL. The article''s own address is warehouse.articles.canonical_url.';
COMMENT ON COLUMN warehouse.article_urls.article_id IS 'The article this URL leads to (warehouse.articles.article_id).';
COMMENT ON COLUMN warehouse.article_urls.url IS 'The other URL, normalized like warehouse.articles.canonical_url (lower-case host, no fragment, no tracking parameters, sorted query); unique.';
COMMENT ON COLUMN warehouse.article_urls.reason IS 'Why it was recognised as the same article: ''content_hash'' (identical normalized text); ''canonical_url'' and ''guid'' are reserved for the same canonical URL or feed entry id.';
COMMENT ON COLUMN warehouse.article_urls.first_seen_at IS 'When newsetl first met the article under this URL (UTC).';

-- 0006 set default privileges for views added later by the same role; granting explicitly
-- keeps the view readable when another role runs this migration.
GRANT SELECT ON warehouse.article_urls TO newsetl_reader;
