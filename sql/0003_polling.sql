-- Polling with manners, safe on many workers (issue 3).

-- A feed moved with 301/308 is polled at its new URL (`url`) but stays the row the sources file
-- names (`registry_url`), so that syncing the file neither re-creates nor deactivates it.
ALTER TABLE feeds ADD COLUMN registry_url text;
UPDATE feeds SET registry_url = url;
ALTER TABLE feeds ALTER COLUMN registry_url SET NOT NULL;
ALTER TABLE feeds ADD CONSTRAINT feeds_registry_url_key UNIQUE (registry_url);

-- Inserts that do not know about registry_url (older code, tests) get the URL itself.
CREATE FUNCTION feeds_default_registry_url() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.registry_url := COALESCE(NEW.registry_url, NEW.url);
    RETURN NEW;
END
$$;
CREATE TRIGGER feeds_default_registry_url BEFORE INSERT ON feeds
    FOR EACH ROW EXECUTE FUNCTION feeds_default_registry_url();

-- The host a feed is fetched from, as Python's urlsplit().hostname gives it (lower case, no
-- brackets around IPv6 literals): Retry-After back-off is scoped to a host, never a domain.
ALTER TABLE feeds ADD COLUMN host text GENERATED ALWAYS AS (
    btrim(lower(substring(url from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^]]*\]|[^/:?#]*)')), '[]')
) STORED;

-- Lease: a worker claims due feeds with FOR UPDATE SKIP LOCKED and stamps them; a crashed
-- worker's lease simply expires.
ALTER TABLE feeds ADD COLUMN leased_until timestamptz;
ALTER TABLE feeds ADD COLUMN leased_by text;

-- Schedule inputs remembered between polls (a 304 carries no entries).
ALTER TABLE feeds ADD COLUMN entry_interval real;        -- seconds: usual gap between the feed's entries
ALTER TABLE feeds ADD COLUMN newest_entry_at timestamptz; -- newest entry date the feed listed (≤ poll time)
ALTER TABLE feeds ADD COLUMN feed_ttl real;              -- seconds: the feed's own hint (<ttl>, sy:updatePeriod)

-- Retry-After from a 429/503, per host, shared by every worker and run.
CREATE TABLE host_backoff (
    host        text PRIMARY KEY,
    until       timestamptz NOT NULL,
    http_status integer,
    reason      text,
    set_at      timestamptz NOT NULL DEFAULT now()
);
