-- recluster: forget the window's memberships.
DELETE FROM story_articles WHERE article_id = ANY(:ids);
