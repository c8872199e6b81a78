-- The cited outlet's first article in the story (for article_citations.cited_article_id).
SELECT a.id, COALESCE(a.published_at, a.first_seen_at) AS event_t
  FROM story_articles sa JOIN articles a ON a.id = sa.article_id
 WHERE sa.story_id = :s AND a.source_id = :src AND a.id <> :me
 ORDER BY event_t, a.id LIMIT 1;
