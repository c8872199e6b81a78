-- The long reach (issue 11): an article may join a story that ended weeks ago (a hearing, a
-- charge months after a shooting) when it shares a rare name with it. Those stories are found
-- by the name, never by loading weeks of profiles: stories/reach_candidates probes this index
-- once per name of a batch (the jsonb `?` operator on the profile's entity keys).
CREATE INDEX story_profiles_entities_idx ON story_profiles USING gin (entities);
