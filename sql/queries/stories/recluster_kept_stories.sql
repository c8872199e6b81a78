-- recluster: stories that keep older members (their profiles are rebuilt).
SELECT id FROM stories WHERE id = ANY(:ids);
