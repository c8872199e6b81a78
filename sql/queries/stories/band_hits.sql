-- Articles sharing LSH bands with the new one, most shared bands first.
SELECT l.article_id, count(*) AS hits
  FROM article_lsh l
  JOIN unnest(CAST(:bands AS smallint[]), CAST(:hashes AS bigint[])) AS q(band, hash)
    ON l.band = q.band AND l.hash = q.hash
 WHERE l.article_id <> :id
 GROUP BY l.article_id
 ORDER BY hits DESC, l.article_id
 LIMIT :limit;
