-- `newsetl story ID`: the story's own row, as `newsetl stories` lists it.
SELECT st.story_id, st.title, st.first_published_at, st.last_published_at,
       m.first_seen_at, m.last_seen_at, st.article_count, st.sources, st.languages
  FROM warehouse.stories st
  JOIN LATERAL (
       SELECT min(a.first_seen_at) AS first_seen_at, max(a.first_seen_at) AS last_seen_at
         FROM warehouse.story_articles sa
         JOIN warehouse.articles a USING (article_id)
        WHERE sa.story_id = st.story_id
  ) m ON true
 WHERE st.story_id = :story_id;
