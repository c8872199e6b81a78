-- Hosts parked by Retry-After right now, with the seconds left.
SELECT host, extract(epoch FROM until - now())::float8 AS seconds_left
  FROM host_backoff
 WHERE until > now()
 ORDER BY host;
