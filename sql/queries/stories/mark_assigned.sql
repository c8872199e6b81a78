-- Processed: a rerun skips it.
UPDATE article_features SET assigned_at = now() WHERE article_id = :id;
