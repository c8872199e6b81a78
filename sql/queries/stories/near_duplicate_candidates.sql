-- Candidates' bodies, to confirm a near-duplicate by exact similarity (by id: the first
-- confirming candidate of a family wins, whatever the physical row order).
SELECT a.id, a.body
  FROM articles a
 WHERE a.id = ANY(:ids)
 ORDER BY a.id;
