-- recluster: the stories they belong to.
SELECT DISTINCT story_id FROM story_articles WHERE article_id = ANY(:ids);
