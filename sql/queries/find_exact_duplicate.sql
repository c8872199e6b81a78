-- An incoming record already stored under another identity: its canonical URL was recorded as
-- an extra URL of an article, or (for a real body) the same normalized text is stored under
-- another URL. A record whose canonical URL is itself stored is an update, never a duplicate.
SELECT d.article_id, d.reason
  FROM (SELECT au.article_id, 'canonical_url' AS reason, 0 AS rank
          FROM article_urls au
         WHERE au.url = :canonical_url
        UNION ALL
        SELECT a.id, 'content_hash', 1
          FROM articles a
         WHERE :check_hash AND a.content_hash = :content_hash AND a.canonical_url <> :canonical_url) d
 WHERE NOT EXISTS (SELECT 1 FROM articles x WHERE x.canonical_url = :canonical_url)
 ORDER BY d.rank, d.article_id
 LIMIT 1;
