-- `newsetl story ID`: its articles with outlet, language, time, title, URL and how each joined
-- (warehouse.story_articles.relation; a near-duplicate also names the article it copies).
SELECT a.article_id, a.source, a.source_name, a.language, a.published_at, a.first_seen_at,
       a.title, a.url, sa.relation, a.duplicate_of
  FROM warehouse.story_articles sa
  JOIN warehouse.articles a USING (article_id)
 WHERE sa.story_id = :story_id
 ORDER BY coalesce(a.published_at, a.first_seen_at), a.article_id;
