-- Articles whose text changed since they were placed (queued by the articles trigger of
-- 0010), oldest first; taken out of the queue by the batch that places them again.
DELETE FROM story_rescore
 WHERE article_id IN (SELECT article_id FROM story_rescore ORDER BY queued_at, article_id LIMIT :n)
RETURNING article_id;
