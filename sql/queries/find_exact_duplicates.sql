-- Incoming records already stored under another identity: for each (canonical URL, content
-- hash, whether its hash may be used), the stored article it duplicates and why — its
-- canonical URL was recorded as an extra URL of an article, or (for a real body) the same
-- normalized text is stored under another URL. A record whose canonical URL is itself stored
-- is an update, never a duplicate. Only records with a duplicate come back.
SELECT r.canonical_url, d.article_id, d.reason
  FROM unnest(CAST(:urls AS text[]), CAST(:hashes AS text[]), CAST(:check_hash AS boolean[]))
       AS r(canonical_url, content_hash, check_hash)
 CROSS JOIN LATERAL (
       SELECT d.article_id, d.reason
         FROM (SELECT au.article_id, 'canonical_url' AS reason, 0 AS rank
                 FROM article_urls au
                WHERE au.url = r.canonical_url
               UNION ALL
               SELECT a.id, 'content_hash', 1
                 FROM articles a
                WHERE r.check_hash AND a.content_hash = r.content_hash
                  AND a.canonical_url <> r.canonical_url) d
        WHERE NOT EXISTS (SELECT 1 FROM articles x WHERE x.canonical_url = r.canonical_url)
        ORDER BY d.rank, d.article_id
        LIMIT 1) d;
