-- Profiles of the stories active between :start and :end (the story window included).
SELECT s.id, s.first_published_at, s.last_published_at, p.member_count, p.terms,
       p.entities, p.numbers, p.centroid, p.embedded_count, p.languages, p.source_ids,
       p.title_terms, p.body_terms
  FROM stories s JOIN story_profiles p ON p.story_id = s.id
 WHERE s.last_published_at >= :start AND s.first_published_at <= :end
 ORDER BY s.id;
