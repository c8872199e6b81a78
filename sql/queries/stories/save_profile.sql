-- A story's profile: feature counts over its members, the title/body centroids and the
-- embedding sum.
INSERT INTO story_profiles (story_id, member_count, terms, entities, numbers, centroid,
                            embedded_count, languages, source_ids, title_terms, body_terms)
VALUES (:id, :n, CAST(:terms AS jsonb), CAST(:entities AS jsonb), CAST(:numbers AS jsonb),
        CAST(:centroid AS real[]), :ne, :langs, :sources, CAST(:title AS jsonb), CAST(:body AS jsonb))
ON CONFLICT (story_id) DO UPDATE
   SET member_count = excluded.member_count, terms = excluded.terms,
       entities = excluded.entities, numbers = excluded.numbers,
       centroid = excluded.centroid, embedded_count = excluded.embedded_count,
       languages = excluded.languages, source_ids = excluded.source_ids,
       title_terms = excluded.title_terms, body_terms = excluded.body_terms;
