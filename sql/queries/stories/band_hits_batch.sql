-- For each article of a batch, the stored articles sharing LSH bands with it, most shared
-- bands first, at most :limit each, in one statement for the whole batch.
SELECT id, article_id, hits
  FROM (SELECT q.id, l.article_id, count(*) AS hits,
               row_number() OVER (PARTITION BY q.id ORDER BY count(*) DESC, l.article_id) AS rank
          FROM article_lsh l
          JOIN unnest(CAST(:ids AS bigint[]), CAST(:bands AS smallint[]), CAST(:hashes AS bigint[]))
               AS q(id, band, hash)
            ON l.band = q.band AND l.hash = q.hash
         WHERE l.article_id <> q.id
         GROUP BY q.id, l.article_id) h
 WHERE rank <= :limit
 ORDER BY id, rank;
