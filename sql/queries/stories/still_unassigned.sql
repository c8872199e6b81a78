-- Which of a batch's prepared articles are still unplaced once the story lock is held (another
-- worker may have placed some of them meanwhile).
SELECT a.id
  FROM articles a
  LEFT JOIN article_features f ON f.article_id = a.id
 WHERE a.id = ANY(:ids) AND f.assigned_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.article_id = a.id);
