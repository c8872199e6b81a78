-- The stories related to :story_id (same subject, another event), closest first, with what a
-- reader needs to pick one: title, span, size, outlets and languages.
SELECT CASE WHEN l.story_id = :story_id THEN l.related_story_id ELSE l.story_id END AS story_id,
       l.kind, l.score, s.title, s.first_published_at, s.last_published_at, s.article_count,
       s.sources AS outlets, s.languages
  FROM warehouse.story_links l
  JOIN warehouse.stories s ON s.story_id = CASE WHEN l.story_id = :story_id THEN l.related_story_id
                                                ELSE l.story_id END
 WHERE l.story_id = :story_id OR l.related_story_id = :story_id
 ORDER BY l.score DESC, 1;
