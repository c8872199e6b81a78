-- Story assignment is serialized across processes: results must not depend on timing.
SELECT pg_advisory_xact_lock(:k);
