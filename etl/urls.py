"""URL canonicalization shared by every stage (a helper, not a stage).

courlan (trafilatura's URL library) does the heavy lifting — scheme/host case, default ports,
percent-encoding, well-known tracking parameters. We add what news links need on top: drop the
fragment, the remaining ad/tracking parameters outlets append in feeds, and sort the query so the
same article never gets two identities. The original URL is always kept next to it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from courlan import normalize_url

# Parameters that never change what page is served; courlan's list misses some of these.
_TRACKING = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|ocid|cmpid|xtor|at_\w+|"
    r"ns_\w+|_ga|_gl|igshid|icid|ito|ref_src|smid|partner|rss|s_cid|cid|sh|fsrc|feature)$",
    re.IGNORECASE,
)


def canonicalize(url: str) -> str:
    """The identity of a page: lowercase scheme/host, no default port, no fragment, no tracking
    parameters, sorted query. Paths keep their case (servers treat them as case-sensitive)."""
    url = url.strip()
    try:
        normalized = normalize_url(url, strict=False, trailing_slash=True)
    except Exception:  # courlan raises on some malformed inputs; fall back to our own pass
        normalized = url
    parts = urlsplit(normalized)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
    query.sort()
    netloc = parts.netloc.lower()
    if parts.scheme == "http" and netloc.endswith(":80"):
        netloc = netloc[:-3]
    elif parts.scheme == "https" and netloc.endswith(":443"):
        netloc = netloc[:-4]
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), netloc, path, urlencode(query), ""))


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
