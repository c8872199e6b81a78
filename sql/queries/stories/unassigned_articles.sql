-- The articles of a batch that have no story yet, in processing order, with their cached features.
SELECT a.id, a.source_id, a.language, a.title, a.description, a.body,
       COALESCE(a.published_at, a.first_seen_at) AS event_t,
       f.article_id IS NOT NULL AS has_features, f.terms, f.entities, f.numbers, f.embedding
  FROM articles a
  LEFT JOIN article_features f ON f.article_id = a.id
 WHERE a.id = ANY(:ids) AND f.assigned_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.article_id = a.id)
 ORDER BY event_t, a.id;
