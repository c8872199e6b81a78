-- Retention: the poll log older than the cutoff (feeds keep their current state).
DELETE FROM feed_polls WHERE polled_at < :cutoff;
