-- recluster: and its near-duplicate links.
UPDATE articles SET duplicate_of = NULL WHERE id = ANY(:ids) AND duplicate_of IS NOT NULL;
