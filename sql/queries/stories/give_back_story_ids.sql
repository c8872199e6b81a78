-- Gives back the ids stories/new_story_ids took that the batch did not use (the next story
-- gets :next), unless another session took one since (the sequence moved on): story ids stay
-- gapless as with one insert per story. Only the story stage, under its advisory lock, takes them.
SELECT setval(pg_get_serial_sequence('stories', 'id'), :next, false)
 WHERE pg_sequence_last_value(pg_get_serial_sequence('stories', 'id')::regclass) = :taken;
