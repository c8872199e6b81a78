-- Keep the newest validators even when the body did not change; count failures in a row and
-- remember since when the feed has been failing.
UPDATE feeds
   SET last_polled_at       = now(),
       next_poll_at         = now() + make_interval(secs => :next_poll_in),
       last_http_status     = :http_status,
       etag                 = COALESCE(:etag, etag),
       last_modified        = COALESCE(:last_modified, last_modified),
       body_hash            = COALESCE(:body_hash, body_hash),
       consecutive_failures = CASE WHEN :failed THEN consecutive_failures + 1 ELSE 0 END,
       failing_since        = CASE WHEN :failed THEN COALESCE(failing_since, now()) ELSE NULL END,
       last_error           = :error,
       last_new_entry_at    = CASE WHEN :entries_new > 0 THEN now() ELSE last_new_entry_at END,
       updated_at           = now()
 WHERE id = :feed_id;
