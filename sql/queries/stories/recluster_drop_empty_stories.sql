-- recluster: stories left without a member go.
DELETE FROM stories s WHERE s.id = ANY(:ids)
   AND NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.story_id = s.id);
