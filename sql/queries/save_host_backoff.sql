-- Retry-After, per host: the latest answer of the server wins.
INSERT INTO host_backoff (host, until, http_status, reason)
VALUES (:host, :until, :http_status, :reason)
ON CONFLICT (host) DO UPDATE
   SET until = excluded.until, http_status = excluded.http_status,
       reason = excluded.reason, set_at = now();
