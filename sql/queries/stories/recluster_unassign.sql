-- recluster: every article of the window is to be assigned again.
UPDATE article_features SET assigned_at = NULL WHERE article_id = ANY(:ids);
