-- Claim pages for fetching; returns the ones this run got (free, or whose claim expired).
INSERT INTO page_claims AS c (canonical_url, claimed_by, claimed_until)
SELECT u, :owner, now() + make_interval(secs => :ttl)
  FROM unnest(CAST(:urls AS text[])) AS u
ON CONFLICT (canonical_url) DO UPDATE
   SET claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until
 WHERE c.claimed_until < now()
RETURNING canonical_url;
