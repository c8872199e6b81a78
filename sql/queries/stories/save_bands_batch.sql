-- The MinHash LSH bands of a batch's articles, in one statement.
INSERT INTO article_lsh (article_id, band, hash)
SELECT a, b, h FROM unnest(CAST(:ids AS bigint[]), CAST(:bands AS smallint[]), CAST(:hashes AS bigint[])) AS q(a, b, h)
ON CONFLICT (article_id, band) DO UPDATE SET hash = excluded.hash;
