"""Stage 1, fetch: polite, size-capped, SSRF-safe HTTP; robots.txt; when a feed is due;
canonical URLs; the raw WARC archive of every response."""
