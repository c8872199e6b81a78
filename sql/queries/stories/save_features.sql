-- Caches an article's features; an embedding computed later fills a missing one.
INSERT INTO article_features (article_id, event_time, language, terms, entities, numbers, embedding)
VALUES (:id, :t, :lang, :terms, :entities, :numbers, CAST(:emb AS real[]))
ON CONFLICT (article_id) DO UPDATE
   SET embedding = COALESCE(article_features.embedding, excluded.embedding);
