-- An article's MinHash LSH bands.
INSERT INTO article_lsh (article_id, band, hash)
SELECT :id, b, h FROM unnest(CAST(:bands AS smallint[]), CAST(:hashes AS bigint[])) AS q(b, h)
ON CONFLICT (article_id, band) DO UPDATE SET hash = excluded.hash;
