-- A backfill window is loaded by one run at a time: a session lock, gone with its connection.
SELECT pg_try_advisory_lock(hashtextextended(:key, 0));
