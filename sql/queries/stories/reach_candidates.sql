-- The long reach of a batch: for each name of :keys (the batch's rare names that few stories of
-- its window hold), the stories that ended in [:far, :edge) — within the rarity horizon, before
-- the window — whose profile holds it, at most :caps + 1 per name (the name's cap: more than that and it is
-- not rare, and no more of its stories are needed to know it). One probe of
-- story_profiles_entities_idx per name; bounded by the number of names times their cap.
-- The profile ids come out of the index as an array first: joined directly, the planner (which
-- takes `?` to match 1% of the profiles) walked the stories' primary key or hashed the whole
-- reach span for every name — 6–10 s a batch with 1M articles stored; this is 0.4 ms a name.
SELECT k.key, h.id
  FROM unnest(CAST(:keys AS text[]), CAST(:caps AS integer[])) AS k(key, cap)
  CROSS JOIN LATERAL (
        SELECT s.id
          FROM stories s
         WHERE s.id = ANY (ARRAY(SELECT p.story_id FROM story_profiles p WHERE p.entities ? k.key))
           AND s.last_published_at >= :far AND s.last_published_at < :edge
         ORDER BY s.id
         LIMIT k.cap + 1) AS h
 ORDER BY k.key, h.id;
