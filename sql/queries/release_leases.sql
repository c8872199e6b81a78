-- Gives back feeds a worker claimed but did not poll (it is stopping, or the poll crashed).
UPDATE feeds SET leased_until = NULL, leased_by = NULL
 WHERE leased_by = :worker AND id = ANY(:ids);
