-- Reserve start slots for several hosts in one statement: :counts consecutive slots of
-- :intervals seconds for each of :hosts. Returns, per host, the seconds to wait for its first
-- slot (the others follow every interval).
WITH wanted AS (
    SELECT *
      FROM unnest(CAST(:hosts AS text[]), CAST(:counts AS int[]), CAST(:intervals AS float8[]))
           AS w(host, n, secs)
)
INSERT INTO host_slots AS h (host, next_start)
SELECT host, clock_timestamp() + make_interval(secs => n * secs)
  FROM wanted
 ORDER BY host  -- the same lock order in every process
ON CONFLICT (host) DO UPDATE
   SET next_start = GREATEST(h.next_start, clock_timestamp())
                    + make_interval(secs => (SELECT n * secs FROM wanted w WHERE w.host = h.host))
RETURNING host,
          GREATEST(0, EXTRACT(epoch FROM (h.next_start
                                          - make_interval(secs => (SELECT n * secs FROM wanted w
                                                                    WHERE w.host = h.host)))
                                  - clock_timestamp()))::float8 AS wait;
