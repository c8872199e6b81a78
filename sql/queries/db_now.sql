-- The database clock: every worker compares times against this one.
SELECT now();
