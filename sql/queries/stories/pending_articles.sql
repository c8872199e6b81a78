-- The next chunk of articles not processed yet, oldest first, after (:lt, :lid).
SELECT a.id, COALESCE(a.published_at, a.first_seen_at) AS event_t
  FROM articles a LEFT JOIN article_features f ON f.article_id = a.id
 WHERE f.assigned_at IS NULL
   AND (CAST(:since AS timestamptz) IS NULL OR COALESCE(a.published_at, a.first_seen_at) >= :since)
   AND (CAST(:lt AS timestamptz) IS NULL
        OR (COALESCE(a.published_at, a.first_seen_at), a.id) > (CAST(:lt AS timestamptz), :lid))
 ORDER BY event_t, a.id LIMIT :n;
