"""Self-check for the demo sites: ``python -m etl.demo._selfcheck``.

Starts :class:`etl.demo.server.DemoSites`, fetches every feed and page over HTTP with
urllib and checks status codes, content types, that every feed item link is served,
article counts per outlet/language, page metadata (canonical, JSON-LD, og:, <time>),
conditional requests (ETag/If-None-Match and Last-Modified/If-Modified-Since -> 304),
404s, robots.txt, the cross-outlet links, the consistency of the shared Panama story
and the wire-copy near-duplicate pair.

When ``feedparser`` and ``trafilatura`` are importable (e.g. under the project's
virtualenv) it also parses every feed with feedparser and runs
``trafilatura.bare_extraction`` on every article page, checking that the article body
comes out and reporting any page clutter that leaks into the extracted text.

Exit status 0 when every check passes.
"""

from __future__ import annotations

import difflib
import email.utils
import json
import re
import sys
import tomllib
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser

from etl.demo.server import OUTLET_LANGUAGES, DemoSites, image_path

EXPECTED_COUNTS = {
    ("france24", "en"): 8,
    ("france24", "es"): 7,
    ("france24", "fr"): 5,
    ("voa", "en"): 8,
    ("voa", "es"): 6,
    ("hemiwire", "en"): 3,
}

PANAMA = [
    ("france24", "en", "americas-ministers-pledge-120-million-darien-gap-migration-panama-meeting"),
    ("france24", "es", "cancilleres-de-las-americas-firman-en-panama-declaracion-para-frenar-cruces-por-el-darien"),
    ("france24", "fr", "migrations-onze-pays-des-ameriques-s-engagent-a-panama-contre-les-traversees-du-darien"),
    ("voa", "en", "americas-ministers-sign-darien-declaration-pledge-120-million-to-manage-migration"),
    ("voa", "es", "once-paises-firman-en-panama-declaracion-sobre-migracion-y-el-darien"),
    ("hemiwire", "en", "eleven-nations-sign-darien-migration-pact-in-panama-back-120m-fund"),
]
PANAMA_FOLLOWUP = ("voa", "en", "rights-groups-welcome-darien-fund-but-warn-against-enforcement-first-approach")
FOLLOWUP_FACTS = ["Ricardo Ábrego Salazar", "Margaret Ellison", "Metetí", "Nicaragua", "120", "45", "182", "40",
                  "Bogotá", "2027"]
PANAMA_FACTS = ["Ricardo Ábrego Salazar", "Margaret Ellison", "Catalina Restrepo Vélez", "Andrés Solano Quirós",
                "Metetí", "Nicaragua", "120", "45", "182", "303", "40", "2027"]
WIRE_PAIR = (("voa", "en", "strong-quake-shakes-central-chile-no-major-damage-reported"),
             ("hemiwire", "en", "strong-quake-shakes-central-chile-no-major-damage-reported"))

_ATOM = "{http://www.w3.org/2005/Atom}"


class Report:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.warnings: list[str] = []
        self.checks = 0

    def check(self, ok: bool, message: str) -> bool:
        self.checks += 1
        if not ok:
            self.failures.append(message)
        return ok

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


class _PageParser(HTMLParser):
    """Collects the bits of an article page the checks look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.html_lang: str | None = None
        self.canonical: str | None = None
        self.meta: dict[str, str] = {}
        self.times: list[str] = []
        self.links: list[str] = []
        self.jsonld: list[str] = []
        self._in_jsonld = False
        self._buf: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.html_lang = a.get("lang")
        elif tag == "link" and a.get("rel") == "canonical":
            self.canonical = a.get("href")
        elif tag == "meta" and ("property" in a or "name" in a):
            self.meta[a.get("property") or a.get("name", "")] = a.get("content", "")
        elif tag == "time" and "datetime" in a:
            self.times.append(a["datetime"])
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "script":
            self.scripts += 1
            if a.get("type") == "application/ld+json":
                self._in_jsonld, self._buf = True, []

    def handle_data(self, data: str) -> None:
        if self._in_jsonld:
            self._buf.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in_jsonld:
            self.jsonld.append("".join(self._buf))
            self._in_jsonld = False


def _news_article(blobs: list[str]) -> dict | None:
    for blob in blobs:
        data = json.loads(blob)
        for node in data.get("@graph", [data]) if isinstance(data, dict) else data:
            if isinstance(node, dict) and node.get("@type") == "NewsArticle":
                return node
    return None


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ")).strip()


def _plain(paragraph: str) -> str:
    return re.sub(r"\[([^\]]+)\]\(@[^)]+\)", r"\1", paragraph)


def check_feeds(sites: DemoSites, rep: Report) -> dict[tuple[str, str], list[str]]:
    links: dict[tuple[str, str], list[str]] = {}
    for slug, lang, url in sites.feed_urls():
        status, headers, body = fetch(url)
        rep.check(status == 200, f"feed {url}: status {status}")
        rep.check(headers.get("content-type") == "application/rss+xml; charset=utf-8",
                  f"feed {url}: content-type {headers.get('content-type')}")
        root = ET.fromstring(body)
        if root.tag == "rss":
            channel = root.find("channel")
            assert channel is not None
            for field in ("title", "description", "link", "lastBuildDate"):
                rep.check(channel.find(field) is not None, f"feed {url}: channel lacks <{field}>")
            items = channel.findall("item")
            found = []
            for item in items:
                link = item.findtext("link", "").strip()
                found.append(link)
                for field in ("title", "description", "guid", "pubDate", "category"):
                    rep.check(item.find(field) is not None, f"feed {url}: item {link} lacks <{field}>")
                pub = item.findtext("pubDate", "")
                if slug == "france24":
                    rep.check(pub.endswith(" GMT"), f"feed {url}: France 24 pubDate not GMT: {pub}")
                    guid = item.find("guid")
                    rep.check(guid is not None and guid.get("isPermaLink") == "false"
                              and re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                                               guid.text or "") is not None,
                              f"feed {url}: France 24 guid not a non-permalink UUID")
                    rep.check(item.find("{http://search.yahoo.com/mrss/}thumbnail") is not None,
                              f"feed {url}: item lacks media:thumbnail")
                    rep.check(item.find("{http://purl.org/dc/elements/1.1/}creator") is not None,
                              f"feed {url}: item lacks dc:creator")
                else:
                    rep.check(pub.endswith(" +0000"), f"feed {url}: VOA pubDate not +0000: {pub}")
                    rep.check(item.findtext("guid") == link, f"feed {url}: VOA guid != link for {link}")
                    enc = item.findtext("{http://purl.org/rss/1.0/modules/content/}encoded", "")
                    rep.check(enc.count("<p>") >= 4, f"feed {url}: content:encoded too short for {link}")
        else:
            rep.check(root.tag == f"{_ATOM}feed", f"feed {url}: neither RSS nor Atom ({root.tag})")
            found = []
            for entry in root.findall(f"{_ATOM}entry"):
                alt = [l for l in entry.findall(f"{_ATOM}link") if l.get("rel", "alternate") == "alternate"]
                link = alt[0].get("href", "") if alt else ""
                found.append(link)
                for field in ("id", "title", "published", "updated", "summary"):
                    rep.check(entry.find(f"{_ATOM}{field}") is not None, f"feed {url}: entry {link} lacks <{field}>")
                rep.check(entry.findtext(f"{_ATOM}author/{_ATOM}name") is not None,
                          f"feed {url}: entry {link} lacks author/name")
        links[(slug, lang)] = found
        rep.check(len(found) == EXPECTED_COUNTS[(slug, lang)],
                  f"feed {url}: {len(found)} items, expected {EXPECTED_COUNTS[(slug, lang)]}")
        for link in found:
            s, _, _ = fetch(link)
            rep.check(s == 200, f"feed {url}: item link {link} -> {s}")
    return links


def check_pages(sites: DemoSites, rep: Report) -> dict[str, str]:
    pages: dict[str, str] = {}
    for (outlet, lang, slug), art in sorted(sites.catalog.by_key.items()):
        url = sites.article_url(outlet, lang, slug)
        status, headers, body = fetch(url)
        if not rep.check(status == 200, f"page {url}: status {status}"):
            continue
        rep.check(headers.get("content-type") == "text/html; charset=utf-8",
                  f"page {url}: content-type {headers.get('content-type')}")
        text = body.decode("utf-8")
        pages[url] = text
        p = _PageParser()
        p.feed(text)
        rep.check((p.html_lang or "").split("-")[0] == lang, f"page {url}: html lang {p.html_lang!r}")
        rep.check(p.canonical == url, f"page {url}: canonical {p.canonical!r}")
        for prop in ("og:title", "og:url", "og:type", "og:image", "og:description", "og:site_name"):
            rep.check(prop in p.meta, f"page {url}: missing <meta property={prop}>")
        rep.check(p.meta.get("og:title") == art.title, f"page {url}: og:title mismatch")
        iso = art.published.strftime("%Y-%m-%dT%H:%M:%SZ")
        rep.check(iso in p.times, f"page {url}: no <time datetime={iso}>")
        rep.check(p.scripts >= 3, f"page {url}: expected inline scripts, found {p.scripts}")
        node = _news_article(p.jsonld)
        if rep.check(node is not None, f"page {url}: no NewsArticle JSON-LD"):
            assert node is not None
            rep.check(node.get("headline") == art.title, f"page {url}: JSON-LD headline mismatch")
            rep.check(node.get("datePublished") == iso, f"page {url}: JSON-LD datePublished mismatch")
            rep.check(node.get("inLanguage") == lang, f"page {url}: JSON-LD inLanguage mismatch")
            names = [a.get("name") for a in node.get("author", [])]
            rep.check(art.author in names, f"page {url}: JSON-LD author mismatch {names}")
        for para in art.paragraphs:
            rep.check(_norm(_plain(para)) in _norm(_strip_tags(text)), f"page {url}: paragraph missing: {para[:60]}")
        # the clutter the brief asks for
        for marker, what in (("cookie", "cookie banner"), ("newsletter", "newsletter"), ("comment", "comments"),
                             ("related", "related list"), ("share", "share widget")):
            rep.check(marker in text.lower(), f"page {url}: no {what}")
        rep.check(len(p.links) >= 40, f"page {url}: only {len(p.links)} links; expected heavy navigation")
        img = sites.url(outlet, image_path(art))
        s, h, _ = fetch(img)
        rep.check(s == 200 and h.get("content-type") == "image/png", f"image {img}: {s} {h.get('content-type')}")
    # structure differs between outlets
    for url, text in pages.items():
        if "/news/" in url:
            rep.check('class="entry-content"' in text, f"page {url}: hemiwire body container missing")
        elif "/a/" in url:
            rep.check('<div class="wsw">' in text, f"page {url}: VOA body container missing")
        else:
            rep.check('<article class="t-content' in text, f"page {url}: France 24 body container missing")
    return pages


def _strip_tags(html_text: str) -> str:
    import html as _html

    html_text = re.sub(r"</?(a|em|strong|b|i|span)\b[^>]*>", "", html_text)
    return _html.unescape(re.sub(r"<[^>]+>", " ", html_text))


def check_http(sites: DemoSites, rep: Report) -> None:
    for slug, lang, url in sites.feed_urls():
        status, headers, _ = fetch(url)
        etag, lm = headers.get("etag"), headers.get("last-modified")
        rep.check(bool(etag) and bool(lm), f"feed {url}: missing ETag/Last-Modified")
        newest = max(a.published for a in sites.catalog.by_feed[(slug, lang)])
        rep.check(lm == email.utils.format_datetime(newest, usegmt=True), f"feed {url}: Last-Modified {lm} != newest item")
        s, h, b = fetch(url, {"If-None-Match": etag or ""})
        rep.check(s == 304 and b == b"", f"feed {url}: If-None-Match -> {s}")
        rep.check(h.get("etag") == etag, f"feed {url}: 304 without the same ETag")
        s, _, _ = fetch(url, {"If-None-Match": '"something-else"'})
        rep.check(s == 200, f"feed {url}: non-matching If-None-Match -> {s}")
        s, _, _ = fetch(url, {"If-Modified-Since": lm or ""})
        rep.check(s == 304, f"feed {url}: If-Modified-Since=Last-Modified -> {s}")
        s, _, _ = fetch(url, {"If-Modified-Since": "Wed, 18 Nov 2026 00:00:00 GMT"})
        rep.check(s == 200, f"feed {url}: older If-Modified-Since -> {s}")
        s, _, _ = fetch(url, {"If-None-Match": '"nope"', "If-Modified-Since": lm or ""})
        rep.check(s == 200, f"feed {url}: If-None-Match must take precedence over If-Modified-Since -> {s}")
        s, h, b = fetch(url, method="HEAD")
        rep.check(s == 200 and b == b"" and h.get("etag") == etag, f"feed {url}: HEAD -> {s}")
    page = sites.article_urls()[0]
    _, h, _ = fetch(page)
    s, _, _ = fetch(page, {"If-None-Match": h.get("etag", "")})
    rep.check(s == 304, f"page {page}: If-None-Match -> {s}")
    for slug, base in sites.base_urls.items():
        s, h, b = fetch(base + "/robots.txt")
        rep.check(s == 200 and b"Allow: /" in b and "Disallow: /\n" not in b.decode(), f"{slug} robots.txt -> {s}")
        s, h, _ = fetch(base + "/no/such/page")
        rep.check(s == 404 and h.get("content-type", "").startswith("text/html"), f"{slug} unknown path -> {s}")
        s, _, _ = fetch(base + "/")
        rep.check(s == 200, f"{slug} homepage -> {s}")
    # percent-encoded and decoded forms of an accented France 24 path both work
    fr = sites.article_url("france24", "fr", PANAMA[2][2])
    rep.check("%C3%A9" in fr, f"expected a percent-encoded accented section in {fr}")
    s, _, _ = fetch(fr)
    rep.check(s == 200, f"{fr} -> {s}")


def check_stories(sites: DemoSites, pages: dict[str, str], rep: Report) -> None:
    cat = sites.catalog.by_key
    for key in PANAMA + [PANAMA_FOLLOWUP]:
        art = cat[key]
        words = art.word_count
        if key in PANAMA[:5]:
            rep.check(350 <= words <= 600, f"Panama story {key}: {words} words, expected 350-600")
        body = " ".join(_plain(p) for p in art.paragraphs)
        for fact in FOLLOWUP_FACTS if key == PANAMA_FOLLOWUP else PANAMA_FACTS:
            rep.check(fact in body, f"Panama story {key}: fact {fact!r} missing")
        rep.check(art.published.date().isoformat() == ("2026-11-21" if key == PANAMA_FOLLOWUP else "2026-11-20"),
                  f"Panama story {key}: wrong date {art.published}")
    for key, art in cat.items():
        if key not in PANAMA[:5] and key != PANAMA_FOLLOWUP:
            rep.check(200 <= art.word_count <= 500 or key == PANAMA[5],
                      f"{key}: {art.word_count} words, expected 200-500")
        rep.check(len(art.paragraphs) >= 4, f"{key}: fewer than 4 paragraphs")
        rep.check("2026-11-19" <= art.published.date().isoformat() <= "2026-11-21", f"{key}: date out of range")
    hemi = cat[PANAMA[5]]
    rep.check("based on information from France 24 and Voice of America" in hemi.paragraphs[0],
              "hemiwire Panama story does not credit France 24 and VOA")
    hemi_html = pages[sites.article_url(*PANAMA[5])]
    for key in (PANAMA[0], PANAMA[3]):
        target = sites.article_url(*key)
        rep.check(f'href="{target}"' in hemi_html, f"hemiwire Panama story does not link to {target}")
    follow_html = pages[sites.article_url(*PANAMA_FOLLOWUP)]
    rep.check(f'href="{sites.article_url(*PANAMA[3])}"' in follow_html, "VOA follow-up does not link the original")
    a, b = (" ".join(cat[k].paragraphs).split() for k in WIRE_PAIR)
    ratio = difflib.SequenceMatcher(a=a, b=b, autojunk=False).ratio()
    changed = sum(max(i2 - i1, j2 - j1) for op, i1, i2, j1, j2 in
                  difflib.SequenceMatcher(a=a[: len(b) + 3], b=b, autojunk=False).get_opcodes() if op != "equal")
    rep.check(ratio > 0.9 and len(b) < len(a), f"wire pair similarity {ratio:.3f} (expected near-duplicate, shorter)")
    rep.check(2 <= changed <= 6, f"wire pair: {changed} words changed in the shared part, expected 2-3")
    rep.check(cat[WIRE_PAIR[0]].paragraphs[-1] not in cat[WIRE_PAIR[1]].paragraphs, "wire pair: last paragraph not cut")
    rep.check("(AP) —" in cat[WIRE_PAIR[0]].paragraphs[0], "wire story lacks the (AP) dateline")


def check_registry(sites: DemoSites, rep: Report) -> None:
    text = sites.sources_toml(min_request_interval=0.25)
    data = tomllib.loads(text)
    feeds = [(s["slug"], f["language"], f["url"]) for s in data["sources"] for f in s["feeds"]]
    rep.check(sorted(feeds) == sorted(sites.feed_urls()), "sources_toml feeds differ from feed_urls()")
    rep.check(all(s["min_request_interval"] == 0.25 for s in data["sources"]), "sources_toml interval not applied")
    rep.check(all(s["homepage"] == sites.base_urls[s["slug"]] + "/" for s in data["sources"]), "homepage mismatch")
    rep.check(all(f["section"] == "all" for s in data["sources"] for f in s["feeds"]), "feed section not 'all'")
    try:
        from etl.config import parse_sources
    except Exception as exc:  # the project's config module is optional for this check
        rep.warn(f"etl.config.parse_sources not importable ({exc}); registry checked with tomllib only")
        return
    parsed = parse_sources(text, origin="<demo>")
    rep.check(len(parsed) == 3 and sum(len(s.feeds) for s in parsed) == 6, "etl.config.parse_sources disagreed")


def check_with_libraries(sites: DemoSites, pages: dict[str, str], rep: Report) -> list[str]:
    notes: list[str] = []
    try:
        import feedparser
        import trafilatura
    except ImportError:
        notes.append("feedparser/trafilatura not importable here: library checks skipped")
        return notes
    for slug, lang, url in sites.feed_urls():
        parsed = feedparser.parse(url)
        rep.check(not parsed.bozo, f"feedparser {url}: bozo {parsed.get('bozo_exception')}")
        rep.check(len(parsed.entries) == EXPECTED_COUNTS[(slug, lang)], f"feedparser {url}: {len(parsed.entries)} entries")
        for e in parsed.entries:
            rep.check(bool(e.get("link")) and bool(e.get("title")) and e.get("published_parsed") is not None,
                      f"feedparser {url}: incomplete entry {e.get('link')}")
            rep.check(bool(e.get("author")), f"feedparser {url}: entry without author {e.get('link')}")
        notes.append(f"feedparser {parsed.version:8} {slug}/{lang}: {len(parsed.entries)} entries, bozo={parsed.bozo}")
    strings = sites._tpl.strings  # noqa: SLF001 - the self-check knows the package internals
    leaks: Counter[str] = Counter()
    meta_ok = 0
    for (outlet, lang, slug), art in sorted(sites.catalog.by_key.items()):
        url = sites.article_url(outlet, lang, slug)
        doc = trafilatura.bare_extraction(pages[url], url=url, with_metadata=True)
        d = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc or {})
        text = _norm(d.get("text") or "")
        paras = [_norm(_plain(p)) for p in art.paragraphs]
        found = sum(1 for p in paras if p in text)
        rep.check(found >= len(paras) - 1, f"trafilatura {url}: only {found}/{len(paras)} paragraphs extracted")
        ui = strings["outlets"][outlet][lang]["ui"]
        clutter = {
            "cookie banner": ui["cookie_text"],
            "newsletter": ui["newsletter_text"],
            "comment policy": ui["comment_policy"],
        }
        for name, text_ in strings["comments"][lang]:
            clutter[f"reader comment ({name})"] = text_
        for other in sites.catalog.by_feed[(outlet, lang)]:
            if other.key != art.key:
                clutter[f"other headline ({other.slug[:30]})"] = other.title
        leaked = [k for k, v in clutter.items() if _norm(v) in text]
        for k in leaked:
            leaks[k.split(" (")[0]] += 1
        rep.check(not leaked, f"trafilatura {url}: clutter leaked into text: {leaked}")
        same_title = d.get("title") == art.title
        same_date = (d.get("date") or "") == art.published.date().isoformat()
        author_ok = bool(d.get("author")) and art.author.split()[0].lower() in (d.get("author") or "").lower()
        meta_ok += same_title and same_date and author_ok
        if not (same_title and same_date and author_ok):
            rep.warn(f"trafilatura metadata {url}: title={d.get('title')!r} date={d.get('date')!r} "
                     f"author={d.get('author')!r}")
    total = len(sites.catalog.by_key)
    notes.append(f"trafilatura: body extracted on all {total} pages checked; metadata (title/date/author) "
                 f"exact on {meta_ok}/{total}; clutter leaks: {dict(leaks) or 'none'}")
    return notes


def main() -> int:
    rep = Report()
    with DemoSites() as sites:
        print("base URLs:", ", ".join(f"{k}={v}" for k, v in sites.base_urls.items()))
        counts = Counter((o, l) for (o, l, _) in sites.catalog.by_key)
        for key, n in EXPECTED_COUNTS.items():
            rep.check(counts[key] == n, f"{key}: {counts[key]} articles, expected {n}")
        rep.check(set(counts) == set(EXPECTED_COUNTS), "unexpected outlet/language in content")
        rep.check(len(sites.feed_urls()) == sum(len(v) for v in OUTLET_LANGUAGES.values()), "feed count")
        check_feeds(sites, rep)
        pages = check_pages(sites, rep)
        check_http(sites, rep)
        check_stories(sites, pages, rep)
        check_registry(sites, rep)
        notes = check_with_libraries(sites, pages, rep)
        served = Counter(slug for slug, _, _ in sites.requests)
        rep.check(all(served[s] > 0 for s in sites.base_urls), "requests were not recorded for every outlet")
    print("articles per outlet/language:")
    for (o, l), n in sorted(counts.items()):
        print(f"  {o:9} {l}: {n}")
    print(f"total: {sum(counts.values())} articles; {sum(served.values())} requests served")
    for note in notes:
        print(note)
    for w in rep.warnings:
        print("WARNING:", w)
    for f in rep.failures:
        print("FAIL:", f)
    print(f"{rep.checks} checks, {len(rep.failures)} failures, {len(rep.warnings)} warnings")
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
