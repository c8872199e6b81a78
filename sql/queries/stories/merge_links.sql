-- Story :from merged into :into: its links move to :into (new rows, stamped now, so that pulls
-- see them); a link between the two goes; of two links to the same story, the closer stays.
WITH moved AS (
    DELETE FROM story_links WHERE story_id = :from OR related_story_id = :from
    RETURNING CASE WHEN story_id = :from THEN related_story_id ELSE story_id END AS other, kind, score
)
INSERT INTO story_links (story_id, related_story_id, kind, score)
SELECT greatest(other, :into), least(other, :into), kind, score
  FROM moved
 WHERE other <> :into
ON CONFLICT (story_id, related_story_id) DO UPDATE
   SET score = excluded.score, linked_at = now(), change_xid = pg_current_xact_id()
 WHERE story_links.score < excluded.score;
