-- Every source, for the attribution cues that name an outlet.
SELECT id, slug, name FROM sources ORDER BY id;
