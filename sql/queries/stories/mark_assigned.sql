-- The articles of a batch are processed (a rerun skips them; recluster clears the mark).
UPDATE article_features SET assigned_at = now() WHERE article_id = ANY(:ids);
