-- The extra URL of an exact duplicate; the first reason recorded stays.
INSERT INTO article_urls (url, article_id, reason)
VALUES (:canonical_url, :article_id, :reason)
ON CONFLICT (url) DO NOTHING;
