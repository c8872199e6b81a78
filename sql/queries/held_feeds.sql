-- Due feeds this run did not poll because another run holds their lease, by holder.
SELECT f.leased_by, count(*) AS feeds
  FROM feeds f JOIN sources s ON s.id = f.source_id
 WHERE f.active AND f.leased_until > now() AND f.leased_by IS DISTINCT FROM :worker
   AND (cardinality(CAST(:slugs AS text[])) = 0 OR s.slug = ANY(:slugs))
 GROUP BY f.leased_by ORDER BY f.leased_by;
