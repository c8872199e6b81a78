-- A feed skipped because its host is parked: due again when the host is, no failure counted,
-- lease released.
UPDATE feeds
   SET next_poll_at = GREATEST(CAST(:until AS timestamptz), now()),
       leased_until = NULL, leased_by = NULL, updated_at = now()
 WHERE id = :feed_id;
