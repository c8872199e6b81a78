-- Candidate originals with their bodies, to confirm a near-duplicate by exact similarity
-- (by id: the first candidate of the earliest family wins a tie, whatever the physical row order).
SELECT a.id, a.body, COALESCE(a.duplicate_of, a.id) AS root,
       COALESCE(r.published_at, r.first_seen_at) AS root_time
  FROM articles a JOIN articles r ON r.id = COALESCE(a.duplicate_of, a.id)
 WHERE a.id = ANY(:ids)
 ORDER BY a.id;
