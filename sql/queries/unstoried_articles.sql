-- Articles first seen since :since that no story assignment has processed (not near-duplicates
-- either): what a run that died between loading and assigning left behind. Articles a live run
-- may still have queued for assignment (first seen after the oldest other running run started)
-- are that run's to assign: dead runs are closed as 'abandoned' before this is asked.
SELECT a.id
  FROM articles a
  LEFT JOIN article_features f ON f.article_id = a.id
 WHERE a.first_seen_at >= :since
   AND a.first_seen_at < coalesce((SELECT min(r.started_at) FROM ingestion_runs r
                                    WHERE r.status = 'running' AND r.id IS DISTINCT FROM :run_id),
                                  'infinity')
   AND a.duplicate_of IS NULL
   AND f.assigned_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.article_id = a.id)
 ORDER BY a.id;
