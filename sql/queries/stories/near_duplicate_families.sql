-- The candidates' copy families, earliest original first, each with the body of its first
-- candidate (by id) and the ids of all its candidates: a wire story copied by fifty outlets
-- is one family, and confirming it usually takes one body instead of twenty.
WITH c AS (
    SELECT a.id, COALESCE(a.duplicate_of, a.id) AS root
      FROM articles a
     WHERE a.id = ANY(:ids)
), f AS (
    SELECT root, min(id) AS first_id, array_agg(id ORDER BY id) AS ids
      FROM c
     GROUP BY root
)
SELECT f.root, f.ids, fa.body AS first_body, COALESCE(r.published_at, r.first_seen_at) AS root_time
  FROM f
  JOIN articles fa ON fa.id = f.first_id
  JOIN articles r ON r.id = f.root
 ORDER BY root_time, f.root;
