-- The story stage's clock (sql/0017_story_clock.sql): read when a batch starts deciding, and
-- again once it holds the story lock (0 when the row is missing: a truncated database).
SELECT coalesce((SELECT tick FROM story_clock), 0) AS tick;
