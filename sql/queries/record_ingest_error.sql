-- A row or value that could not be stored as it came (see etl.parse.normalize).
INSERT INTO ingest_errors (run_id, feed_id, source_id, kind, url, detail)
VALUES (:run_id, :feed_id, :source_id, :kind, left(:url, 2000), left(:detail, 2000));
