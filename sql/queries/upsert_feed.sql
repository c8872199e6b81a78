-- Feeds are keyed by the URL the sources file gives (registry_url; `url` may have moved with a
-- 301/308). A feed that comes back to the file is reactivated only if it had been deactivated
-- for leaving the file (a 410 Gone stays deactivated).
INSERT INTO feeds (source_id, url, registry_url, language, section, min_interval, max_interval)
VALUES (:source_id, :url, :url, :language, :section,
        make_interval(secs => :min_interval), make_interval(secs => :max_interval))
ON CONFLICT (registry_url) DO UPDATE
   SET source_id = excluded.source_id,
       language = excluded.language,
       section = excluded.section,
       min_interval = excluded.min_interval,
       max_interval = excluded.max_interval,
       active = feeds.active OR feeds.deactivated_reason = 'removed from sources file',
       deactivated_reason = CASE WHEN feeds.deactivated_reason = 'removed from sources file'
                                 THEN NULL ELSE feeds.deactivated_reason END,
       updated_at = now()
 WHERE (feeds.source_id, feeds.language, feeds.section, feeds.min_interval, feeds.max_interval)
       IS DISTINCT FROM (excluded.source_id, excluded.language, excluded.section,
                         excluded.min_interval, excluded.max_interval)
    OR feeds.deactivated_reason = 'removed from sources file'
RETURNING id;
