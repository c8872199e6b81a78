-- Where a merged story's articles went: follow warehouse.story_merges from :story_id to the
-- story that exists now (a survivor may itself have merged again later).
WITH RECURSIVE chain(story_id, depth) AS (
    SELECT into_story_id, 1 FROM warehouse.story_merges WHERE from_story_id = :story_id
    UNION ALL
    SELECT m.into_story_id, c.depth + 1
      FROM chain c JOIN warehouse.story_merges m ON m.from_story_id = c.story_id
     WHERE c.depth < 100
)
SELECT story_id FROM chain ORDER BY depth DESC LIMIT 1;
