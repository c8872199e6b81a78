-- Stories v3 (issue 19): related, not merged. A story is one event; when a later article is
-- about the same subject but not the same event (the next day's market report, a trial weeks
-- after a shooting that the join decision is not sure of), it opens or joins its own story and
-- the two stories are linked. One row per pair of stories, the newer first (ids grow with
-- creation); a merge moves the links of the merged story to the survivor
-- (stories/merge_links); the links of a deleted story go with it.
CREATE TABLE story_links (
    id               bigserial PRIMARY KEY,
    story_id         bigint NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    related_story_id bigint NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('related', 'follow_up')),
    score            double precision NOT NULL,
    linked_at        timestamptz NOT NULL DEFAULT now(),
    change_xid       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    CHECK (story_id > related_story_id),
    UNIQUE (story_id, related_story_id)
);
CREATE INDEX story_links_related_idx ON story_links (related_story_id);
CREATE INDEX story_links_change_xid_idx ON story_links (change_xid);

CREATE VIEW warehouse.story_links AS
SELECT l.id AS link_id, l.story_id, l.related_story_id, l.kind, l.score, l.linked_at
  FROM story_links l;

COMMENT ON VIEW warehouse.story_links IS
    'One row per pair of related stories: about the same subject (same names, same place, same company) but not the same event, so kept apart. Read both directions: a story''s related stories are the rows where it is story_id or related_story_id.';
COMMENT ON COLUMN warehouse.story_links.link_id IS 'Identifier of the link (stable while both stories exist).';
COMMENT ON COLUMN warehouse.story_links.story_id IS 'The newer story of the pair (ids grow with creation).';
COMMENT ON COLUMN warehouse.story_links.related_story_id IS 'The older story of the pair.';
COMMENT ON COLUMN warehouse.story_links.kind IS '''follow_up'': the newer story began after the older one had gone quiet (a trial after a shooting, the next day''s market report); ''related'': the two ran at the same time (twin events of one subject).';
COMMENT ON COLUMN warehouse.story_links.score IS 'How close the join decision found the two stories (its probability of one event, 0-1; below the bar to join them).';
COMMENT ON COLUMN warehouse.story_links.linked_at IS 'When the link was made or last moved by a merge (UTC).';

CREATE FUNCTION warehouse.story_links_changed(since_horizon bigint, until_horizon bigint)
RETURNS SETOF warehouse.story_links
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF until_horizon > warehouse.pull_horizon() OR since_horizon > until_horizon THEN
        RAISE EXCEPTION 'invalid pull window [%, %): until_horizon must come from warehouse.pull_horizon()',
            since_horizon, until_horizon;
    END IF;
    RETURN QUERY
        SELECT v.*
          FROM warehouse.story_links v
         WHERE v.link_id IN (SELECT l.id FROM public.story_links l
                              WHERE l.change_xid >= since_horizon::text::xid8
                                AND l.change_xid <  until_horizon::text::xid8);
END
$$;
COMMENT ON FUNCTION warehouse.story_links_changed(bigint, bigint) IS
    'Links made or moved in the pull window [since_horizon, until_horizon) (same horizons as stories_changed()). A merged story''s links move to the survivor as new rows: when story_merges_changed() reports a merge, drop the links of from_story_id from your copy.';
REVOKE EXECUTE ON FUNCTION warehouse.story_links_changed(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION warehouse.story_links_changed(bigint, bigint) TO newsetl_reader;
