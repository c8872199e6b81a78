INSERT INTO feed_polls (feed_id, run_id, url, http_status, bytes, duration_ms,
                        entries_seen, entries_new, error_kind, error)
VALUES (:feed_id, :run_id, :url, :http_status, :bytes, :duration_ms,
        :entries_seen, :entries_new, :error_kind, :error);
