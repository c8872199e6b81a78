-- Reserve the next start slot for a host; returns how many seconds to wait for it.
INSERT INTO host_slots AS h (host, next_start)
VALUES (:host, clock_timestamp() + make_interval(secs => :interval))
ON CONFLICT (host) DO UPDATE
   SET next_start = GREATEST(h.next_start, clock_timestamp()) + make_interval(secs => :interval)
RETURNING GREATEST(0, EXTRACT(epoch FROM (h.next_start - make_interval(secs => :interval))
                                         - clock_timestamp()))::float8 AS wait;
