-- Title, counts and first/last time from the members; the title is the original's.
UPDATE stories s
   SET article_count = x.n, source_count = x.ns, language_count = x.nl,
       first_published_at = x.f, last_published_at = x.l, title = x.title, updated_at = now()
  FROM (SELECT sa.story_id, count(*) AS n, count(DISTINCT a.source_id) AS ns,
               count(DISTINCT a.language) AS nl,
               min(COALESCE(a.published_at, a.first_seen_at)) AS f,
               max(COALESCE(a.published_at, a.first_seen_at)) AS l,
               (array_agg(a.title ORDER BY sa.relation <> 'original',
                          COALESCE(a.published_at, a.first_seen_at), a.id))[1] AS title
          FROM story_articles sa JOIN articles a ON a.id = sa.article_id
         WHERE sa.story_id = ANY(:ids)
         GROUP BY sa.story_id) x
 WHERE s.id = x.story_id;
