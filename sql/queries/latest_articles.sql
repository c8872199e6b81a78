SELECT a.id, s.slug, a.language, a.published_at, a.extraction_status, a.word_count, a.title, a.canonical_url
  FROM articles a
  JOIN sources s ON s.id = a.source_id
 ORDER BY a.published_at DESC NULLS LAST, a.id DESC
 LIMIT :limit;
