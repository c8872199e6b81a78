-- recluster: and its MinHash bands.
DELETE FROM article_lsh WHERE article_id = ANY(:ids);
