-- Articles first seen since :since that no story assignment has processed (not near-duplicates
-- either): what a run that died between loading and assigning left behind.
SELECT a.id
  FROM articles a
  LEFT JOIN article_features f ON f.article_id = a.id
 WHERE a.first_seen_at >= :since
   AND a.duplicate_of IS NULL
   AND f.assigned_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.article_id = a.id)
 ORDER BY a.id;
