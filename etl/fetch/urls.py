"""URL canonicalization shared by every stage (a helper, not a stage).

courlan (trafilatura's URL library) does the heavy lifting — scheme/host case, default ports,
percent-encoding, well-known tracking parameters. We add what news links need on top: drop the
fragment, the remaining ad/tracking parameters outlets append in feeds, and sort the query so the
same article never gets two identities. The original URL is always kept next to it.

AMP and mobile variants of a page are the same article: ``amp.``/``m.``/``mobile.``/``www.`` hosts,
Google AMP cache URLs, ``/amp`` path suffixes or prefixes and ``?amp=1``/``outputType=amp``
collapse onto the desktop URL. Path rules only fire where the rest of the path still looks
like an article (a slug with a hyphen or digits), so that ``/tag/amp`` or ``/amp`` stay put.
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


# Query parameters whose only job is to ask for the AMP rendering.
_AMP_PARAMS = re.compile(r"^(amp|_amp|amp_js_v|usqp|outputtype|output|format|view|platform)$", re.IGNORECASE)
_AMP_VALUES = {"", "1", "true", "yes", "amp", "mq331aq"}
# amp./m./mobile. variants and www. all collapse onto the bare host: an m. page's desktop twin
# may live on www. or on the bare domain, so the identity keeps neither (the URL itself is kept).
_MOBILE_HOST = re.compile(r"^(www|amp|m|mobile|mobil|movil|mobi)\.(?=[^.]+\.[^.]+)", re.IGNORECASE)
_AMP_CACHE = re.compile(r"^[^/]+\.cdn\.ampproject\.org$|^(www\.)?google\.[a-z.]+$", re.IGNORECASE)
_SLUGGY = re.compile(r"(-|\d)")


def _looks_like_article(segment: str) -> bool:
    return len(segment) >= 8 and bool(_SLUGGY.search(segment))


def _unwrap_amp_cache(url: str) -> str:
    """``https://www-ex-com.cdn.ampproject.org/c/s/www.ex.com/a`` and
    ``https://www.google.com/amp/s/www.ex.com/a`` → ``https://www.ex.com/a``."""
    parts = urlsplit(url)
    if not _AMP_CACHE.match(parts.netloc):
        return url
    m = re.match(r"^/(?:c|v|i|amp)/(s/)?(.+)$", parts.path)
    if not m or "." not in m.group(2).split("/", 1)[0]:
        return url
    inner = ("https://" if m.group(1) else "http://") + m.group(2)
    return inner + (f"?{parts.query}" if parts.query else "")


def _strip_amp_path(path: str) -> str:
    segments = path.split("/")
    # /story-slug-123/amp(/) → /story-slug-123
    tail = [s for s in segments if s]
    if len(tail) >= 2 and tail[-1].lower() == "amp" and _looks_like_article(tail[-2]):
        return "/" + "/".join(tail[:-1])
    # /amp/section/story-slug-123 → /section/story-slug-123
    if len(tail) >= 2 and tail[0].lower() == "amp" and _looks_like_article(tail[-1]):
        return "/" + "/".join(tail[1:])
    # /story-slug-123.amp or /story-slug-123.amp.html → /story-slug-123(.html)
    if tail:
        last = tail[-1]
        m = re.match(r"^(.+?)\.amp(\.html?)?$", last, re.IGNORECASE)
        if m and _looks_like_article(m.group(1)):
            tail[-1] = m.group(1) + (m.group(2) or "")
            return "/" + "/".join(tail)
    return path


def canonicalize(url: str) -> str:
    """The identity of a page: lowercase scheme/host, no default port, no fragment, no tracking
    parameters, sorted query, no trailing slash, desktop rather than AMP/mobile variant. Paths
    keep their case (servers treat them as case-sensitive)."""
    url = _unwrap_amp_cache(url.strip())
    try:
        normalized = normalize_url(url, strict=False, trailing_slash=True)
    except Exception:  # courlan raises on some malformed inputs; fall back to our own pass
        normalized = url
    parts = urlsplit(normalized)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not _TRACKING.match(k) and not (_AMP_PARAMS.match(k) and v.lower() in _AMP_VALUES)]
    query.sort()
    netloc = _MOBILE_HOST.sub("", parts.netloc.lower())
    if parts.scheme == "http" and netloc.endswith(":80"):
        netloc = netloc[:-3]
    elif parts.scheme == "https" and netloc.endswith(":443"):
        netloc = netloc[:-4]
    path = _strip_amp_path(parts.path or "/")
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), netloc, path, urlencode(query), ""))


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
