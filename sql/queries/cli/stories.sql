-- `newsetl stories` (and `newsetl story ID`, with :story_id): the latest stories from the
-- warehouse views, latest publication first. Filters are optional (NULL: any): one story
-- :story_id, stories with an article published on or after :since, with an article from outlet
-- :source, with an article in language :lang.
SELECT st.story_id, st.title, st.first_published_at, st.last_published_at,
       m.first_seen_at, m.last_seen_at, st.article_count, st.sources, st.languages
  FROM warehouse.stories st
  JOIN LATERAL (
       SELECT min(a.first_seen_at) AS first_seen_at, max(a.first_seen_at) AS last_seen_at
         FROM warehouse.story_articles sa
         JOIN warehouse.articles a USING (article_id)
        WHERE sa.story_id = st.story_id
  ) m ON true
 WHERE (CAST(:story_id AS bigint) IS NULL OR st.story_id = CAST(:story_id AS bigint))
   AND (CAST(:since AS timestamptz) IS NULL OR st.last_published_at >= CAST(:since AS timestamptz))
   AND (CAST(:source AS text) IS NULL OR CAST(:source AS text) = ANY(st.sources))
   AND (CAST(:lang AS text) IS NULL OR CAST(:lang AS text) = ANY(st.languages))
 ORDER BY st.last_published_at DESC NULLS LAST, st.story_id DESC
 LIMIT :limit;
