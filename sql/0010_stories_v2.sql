-- Stories v2 (issue 11): the learned join decision compares an article's title and body with
-- a story's per-field centroids, so a story profile keeps the sums of its members' title and
-- body term vectors (sublinear tf, L2-normalized per article; the body centroid is cut to its
-- heaviest terms when saved, so a profile stays small however large the story grows).
ALTER TABLE story_profiles
    ADD COLUMN title_terms jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN body_terms  jsonb NOT NULL DEFAULT '{}'::jsonb;

-- Stories that fix themselves: when two open stories converge (one, compared with the other
-- like an article, clears the join bar), the newer one is merged into the older (its members
-- move, its row is deleted). Every merge is recorded, so that a reader holding the merged id
-- can follow it; change_xid stamps the merge like articles and stories are stamped (0006).
CREATE TABLE story_merges (
    from_story_id bigint PRIMARY KEY,              -- the story that is gone (ids are never reused)
    into_story_id bigint NOT NULL,                 -- the story that took its members (may merge again later)
    merged_at     timestamptz NOT NULL DEFAULT now(),
    change_xid    xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX story_merges_into_idx ON story_merges (into_story_id);
CREATE INDEX story_merges_change_xid_idx ON story_merges (change_xid);

CREATE VIEW warehouse.story_merges AS
SELECT m.from_story_id, m.into_story_id, m.merged_at
  FROM story_merges m;

COMMENT ON VIEW warehouse.story_merges IS
    'One row per merged story: two stories turned out to be one event and the newer was folded into the older. A story_id you hold that is no longer in warehouse.stories is in from_story_id here; follow into_story_id (repeatedly: the survivor may merge again).';
COMMENT ON COLUMN warehouse.story_merges.from_story_id IS 'The story that no longer exists; its articles now belong to into_story_id.';
COMMENT ON COLUMN warehouse.story_merges.into_story_id IS 'The older story that took the members of from_story_id.';
COMMENT ON COLUMN warehouse.story_merges.merged_at IS 'When the merge happened (UTC).';

CREATE FUNCTION warehouse.story_merges_changed(since_horizon bigint, until_horizon bigint)
RETURNS SETOF warehouse.story_merges
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF until_horizon > warehouse.pull_horizon() OR since_horizon > until_horizon THEN
        RAISE EXCEPTION 'invalid pull window [%, %): until_horizon must come from warehouse.pull_horizon()',
            since_horizon, until_horizon;
    END IF;
    RETURN QUERY
        SELECT v.*
          FROM warehouse.story_merges v
         WHERE v.from_story_id IN (SELECT m.from_story_id FROM public.story_merges m
                                    WHERE m.change_xid >= since_horizon::text::xid8
                                      AND m.change_xid <  until_horizon::text::xid8);
END
$$;
COMMENT ON FUNCTION warehouse.story_merges_changed(bigint, bigint) IS
    'Merges recorded in the pull window [since_horizon, until_horizon) (same horizons as stories_changed()): drop from_story_id from your copy and re-read into_story_id.';
REVOKE EXECUTE ON FUNCTION warehouse.story_merges_changed(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION warehouse.story_merges_changed(bigint, bigint) TO newsetl_reader;

-- Revisions: an article whose text changed after the story stage placed it is queued here
-- (by the trigger below, whoever updated it: a refetch, a re-extraction); the next story
-- batch takes it out of its story and assigns it again from its new text.
CREATE TABLE story_rescore (
    article_id bigint PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,
    queued_at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION queue_story_rescore() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO story_rescore (article_id)
    SELECT NEW.id WHERE EXISTS (SELECT 1 FROM article_features f
                                 WHERE f.article_id = NEW.id AND f.assigned_at IS NOT NULL)
    ON CONFLICT (article_id) DO NOTHING;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION queue_story_rescore() IS
    'An assigned article''s text changed: queue it for the story stage to place again.';
CREATE TRIGGER articles_queue_story_rescore AFTER UPDATE OF content_hash ON articles
    FOR EACH ROW WHEN (OLD.content_hash IS DISTINCT FROM NEW.content_hash)
    EXECUTE FUNCTION queue_story_rescore();
