-- A batch's story links (the newer story first), in one statement: a pair linked again keeps
-- its kind and takes the higher score.
INSERT INTO story_links (story_id, related_story_id, kind, score)
SELECT s, r, k, sc
  FROM unnest(CAST(:s AS bigint[]), CAST(:r AS bigint[]), CAST(:kind AS text[]),
              CAST(:score AS float8[])) AS q(s, r, k, sc)
ON CONFLICT (story_id, related_story_id) DO UPDATE
   SET score = excluded.score, change_xid = pg_current_xact_id()
 WHERE story_links.score < excluded.score;
