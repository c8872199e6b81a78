-- Which of these canonical URLs are already stored (as an article, or as another URL of one):
-- a backfill skips them before fetching, so one URL is never fetched twice.
SELECT canonical_url FROM articles WHERE canonical_url = ANY(CAST(:urls AS text[]))
UNION
SELECT url FROM article_urls WHERE url = ANY(CAST(:urls AS text[]));
