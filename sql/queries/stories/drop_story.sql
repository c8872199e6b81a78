-- A story merged away (no members left; its profile goes with it).
DELETE FROM stories WHERE id = :id;
