-- Totals over the finished runs, per kind and status: a run counts once it has finished, so
-- the totals only grow (runs pruned by maintenance drop out, which Prometheus reads as a
-- counter reset). Failed articles: errors that were not failed feed polls.
SELECT kind, status,
       count(*)::bigint                                      AS runs,
       coalesce(sum(articles_new), 0)::bigint                AS articles_new,
       coalesce(sum(articles_updated), 0)::bigint            AS articles_updated,
       coalesce(sum(duplicates), 0)::bigint                  AS articles_duplicate,
       coalesce(sum(greatest(errors - feeds_failed, 0)), 0)::bigint AS articles_failed,
       coalesce(sum(feeds_polled), 0)::bigint                AS feeds_polled,
       coalesce(sum(feeds_failed), 0)::bigint                AS feeds_failed,
       coalesce(sum(stories_new), 0)::bigint                 AS stories_new,
       coalesce(sum(stories_joined), 0)::bigint              AS stories_joined,
       coalesce(sum(pages_unarchived), 0)::bigint            AS pages_unarchived
  FROM ingestion_runs
 WHERE status <> 'running'
 GROUP BY kind, status
 ORDER BY kind, status;
