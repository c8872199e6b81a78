-- A feed that left the sources file is deactivated, never deleted: its articles and poll
-- history stay. Feeds are matched on the URL the file gives (a moved feed polls elsewhere).
UPDATE feeds
   SET active = false, deactivated_reason = 'removed from sources file', updated_at = now()
 WHERE active AND NOT (registry_url = ANY(:urls));
