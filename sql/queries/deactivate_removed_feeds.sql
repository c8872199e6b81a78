-- A feed that left the sources file is deactivated, never deleted: its articles and poll
-- history stay.
UPDATE feeds
   SET active = false, deactivated_reason = 'removed from sources file', updated_at = now()
 WHERE active AND NOT (url = ANY(:urls));
