-- recluster: the articles of the window.
SELECT id FROM articles WHERE COALESCE(published_at, first_seen_at) >= :since;
