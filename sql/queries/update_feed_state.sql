-- After one poll. A 200 replaces the validators with the response's (a server that stopped
-- sending an ETag must not get a stale one back); a 304 or an error keeps them unless new ones
-- came. Validators are saved even when the body hash shows no change. Failures are counted in a
-- row with the time they started; a success resets both. A 301/308 moves the feed to its new
-- URL unless another feed already polls that URL; a 410 deactivates with a reason. The lease is
-- released.
UPDATE feeds
   SET last_polled_at       = now(),
       next_poll_at         = now() + make_interval(secs => :next_poll_in),
       last_http_status     = :http_status,
       etag                 = CASE WHEN :replace_validators THEN CAST(:etag AS text)
                                   ELSE COALESCE(CAST(:etag AS text), etag) END,
       last_modified        = CASE WHEN :replace_validators THEN CAST(:last_modified AS text)
                                   ELSE COALESCE(CAST(:last_modified AS text), last_modified) END,
       body_hash            = COALESCE(CAST(:body_hash AS text), body_hash),
       consecutive_failures = CASE WHEN :failed THEN consecutive_failures + 1 ELSE 0 END,
       failing_since        = CASE WHEN :failed THEN COALESCE(failing_since, now()) ELSE NULL END,
       last_error           = CAST(:error AS text),
       last_new_entry_at    = CASE WHEN :entries_new > 0 THEN now() ELSE last_new_entry_at END,
       entry_interval       = COALESCE(CAST(:entry_interval AS real), entry_interval),
       newest_entry_at      = GREATEST(CAST(:newest_entry_at AS timestamptz), newest_entry_at),
       feed_ttl             = CASE WHEN :parsed THEN CAST(:feed_ttl AS real) ELSE feed_ttl END,
       url                  = CASE WHEN CAST(:new_url AS text) IS NOT NULL
                                    AND NOT EXISTS (SELECT 1 FROM feeds o WHERE o.url = CAST(:new_url AS text))
                                   THEN CAST(:new_url AS text) ELSE url END,
       active               = active AND CAST(:deactivate_reason AS text) IS NULL,
       deactivated_reason   = COALESCE(CAST(:deactivate_reason AS text), deactivated_reason),
       leased_until         = NULL,
       leased_by            = NULL,
       updated_at           = now()
 WHERE id = :feed_id;
