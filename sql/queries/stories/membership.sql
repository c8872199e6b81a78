-- The story an article belongs to, and how.
SELECT story_id, relation, score, method FROM story_articles WHERE article_id = :id;
