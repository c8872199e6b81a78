-- The extra URLs of exact duplicates; the first reason recorded stays.
INSERT INTO article_urls (url, article_id, reason)
SELECT u, a, r
  FROM unnest(CAST(:urls AS text[]), CAST(:article_ids AS bigint[]), CAST(:reasons AS text[])) AS d(u, a, r)
 ORDER BY u
ON CONFLICT (url) DO NOTHING;
