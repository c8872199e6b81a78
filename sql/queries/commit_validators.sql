-- A poll that found new entries holds its validators back until those entries are loaded:
-- if the run dies in between, the next poll must not get a 304 (or an unchanged body hash)
-- and skip entries that were never stored.
UPDATE feeds
   SET etag          = CASE WHEN :replace_validators THEN CAST(:etag AS text)
                            ELSE COALESCE(CAST(:etag AS text), etag) END,
       last_modified = CASE WHEN :replace_validators THEN CAST(:last_modified AS text)
                            ELSE COALESCE(CAST(:last_modified AS text), last_modified) END,
       body_hash     = COALESCE(CAST(:body_hash AS text), body_hash)
 WHERE id = :feed_id;
