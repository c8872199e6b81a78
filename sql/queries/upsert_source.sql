-- Sources are keyed by slug; the registry file is the truth for name and politeness.
INSERT INTO sources (slug, name, homepage, min_request_interval, active)
VALUES (:slug, :name, :homepage, :min_request_interval, true)
ON CONFLICT (slug) DO UPDATE
   SET name = excluded.name,
       homepage = excluded.homepage,
       min_request_interval = excluded.min_request_interval,
       active = true,
       updated_at = now()
 WHERE (sources.name, sources.homepage, sources.min_request_interval, sources.active)
       IS DISTINCT FROM (excluded.name, excluded.homepage, excluded.min_request_interval, true)
RETURNING id;
