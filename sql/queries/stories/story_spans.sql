-- First and last time of some stories (to load their profiles).
SELECT first_published_at, last_published_at FROM stories WHERE id = ANY(:ids);
