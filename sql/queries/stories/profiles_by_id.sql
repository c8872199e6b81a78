-- The profiles of the stories :ids, with the same stamp as stories/active_profile_stamps.
SELECT s.id, s.first_published_at, s.last_published_at, p.member_count, p.terms,
       p.entities, p.numbers, p.centroid, p.embedded_count, p.languages, p.source_ids,
       p.title_terms, p.body_terms,
       s.xmin::text || '/' || p.xmin::text AS stamp
  FROM stories s JOIN story_profiles p ON p.story_id = s.id
 WHERE s.id = ANY(:ids)
 ORDER BY s.id;
