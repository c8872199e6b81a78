-- Rows and values that could not be stored as they came (sql/0011), newest first: what
-- `newsetl status` shows under the feeds table, with how many there were in the window.
SELECT e.created_at, e.kind, s.slug AS source, f.url AS feed_url, e.url, e.detail,
       count(*) OVER () AS total
FROM ingest_errors e
LEFT JOIN sources s ON s.id = e.source_id
LEFT JOIN feeds f ON f.id = e.feed_id
WHERE e.created_at >= now() - make_interval(hours => :hours)
ORDER BY e.created_at DESC, e.id DESC
LIMIT :limit;
