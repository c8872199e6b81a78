-- A story's members with their cached features and their text, to rebuild its profile.
SELECT f.article_id AS id, a.source_id, f.language, f.event_time AS event_t, f.terms, f.entities,
       f.numbers, f.embedding, sa.relation, a.title, a.description, a.body
  FROM story_articles sa JOIN article_features f ON f.article_id = sa.article_id
  JOIN articles a ON a.id = sa.article_id
 WHERE sa.story_id = :s ORDER BY f.event_time, f.article_id;
