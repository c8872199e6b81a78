-- Story :from converged with the older story :into: its members move there and the merge is
-- recorded (warehouse.story_merges). The emptied story is deleted by stories/drop_story.
WITH recorded AS (
    INSERT INTO story_merges (from_story_id, into_story_id) VALUES (:from, :into)
    ON CONFLICT (from_story_id) DO UPDATE SET into_story_id = excluded.into_story_id,
                                              merged_at = now(), change_xid = pg_current_xact_id()
)
UPDATE story_articles SET story_id = :into WHERE story_id = :from;
