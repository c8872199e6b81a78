-- An article is a near-duplicate of an original.
UPDATE articles SET duplicate_of = :orig WHERE id = :id AND duplicate_of IS DISTINCT FROM :orig;
