SELECT pg_advisory_unlock(hashtextextended(:key, 0));
