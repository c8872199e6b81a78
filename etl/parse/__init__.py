"""Stage 2, parse: bytes → data. Feeds and sitemaps to entries, pages to text and metadata
(trafilatura in killable worker processes), and entry + extraction → one normalized record."""
