-- Feed-poll durations (seconds) as histogram buckets, in one pass over the poll log.
-- :neg_bounds are the bucket bounds negated, ascending; width_bucket(-x, :neg_bounds) counts
-- the bounds >= x, so `below` = how many bounds lie strictly below x: x belongs to the first
-- bucket whose le is >= x, exactly Prometheus' rule.
SELECT cardinality(CAST(:neg_bounds AS float8[]))
         - width_bucket(-duration_ms / 1000.0, CAST(:neg_bounds AS float8[])) AS below,
       count(*)::bigint AS n, sum(duration_ms)::float8 / 1000 AS seconds
  FROM feed_polls
 WHERE duration_ms IS NOT NULL
 GROUP BY 1;
