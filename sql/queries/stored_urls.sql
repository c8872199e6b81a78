-- Which of these URLs already belong to a stored article (its own URL or another URL of it).
SELECT canonical_url FROM articles WHERE canonical_url = ANY(:urls)
UNION
SELECT url FROM article_urls WHERE url = ANY(:urls);
