-- The sources file now lists a feed under the URL it moved to (301/308): that row becomes the
-- file's entry, so its history stays and no second row is created.
UPDATE feeds
   SET registry_url = :url, updated_at = now()
 WHERE url = :url AND registry_url <> :url
   AND NOT EXISTS (SELECT 1 FROM feeds o WHERE o.registry_url = :url);
