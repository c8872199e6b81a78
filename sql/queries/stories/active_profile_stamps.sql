-- The stories active between :start and :end (the story window included), each with a stamp
-- that changes whenever the story or its profile row is written (the rows' xmin: a new
-- transaction id per write), so that a profile decoded earlier can be reused while its stamp
-- holds. `own`: this transaction wrote one of the rows (it may write it again before it
-- commits, under the same xmin), so the caller must not reuse or keep it.
SELECT s.id,
       s.xmin::text || '/' || p.xmin::text AS stamp,
       coalesce((pg_current_xact_id_if_assigned()::text::bigint % 4294967296)::text
                IN (s.xmin::text, p.xmin::text), false) AS own
  FROM stories s JOIN story_profiles p ON p.story_id = s.id
 WHERE s.last_published_at >= :start AND s.first_published_at <= :end
 ORDER BY s.id;
