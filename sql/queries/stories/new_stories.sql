-- The stories a batch opened (ids from stories/new_story_ids), in one statement.
INSERT INTO stories (id, title, first_published_at, last_published_at)
SELECT id, title, t, t
  FROM unnest(CAST(:ids AS bigint[]), CAST(:titles AS text[]), CAST(:ts AS timestamptz[])) AS q(id, title, t);
