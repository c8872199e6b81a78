-- Claim pages for fetching; returns the ones this run got (free, whose claim expired, or
-- already its own: a batch retried after a lost connection claims its pages again).
INSERT INTO page_claims AS c (canonical_url, claimed_by, claimed_until)
SELECT u, :owner, now() + make_interval(secs => :ttl)
  FROM unnest(CAST(:urls AS text[])) AS u
ON CONFLICT (canonical_url) DO UPDATE
   SET claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until
 WHERE c.claimed_until < now() OR c.claimed_by = excluded.claimed_by
RETURNING canonical_url;
