"""Offline demo news outlets served over loopback HTTP.

Three fictional-but-realistic outlets are served, each by its own
``ThreadingHTTPServer`` on its own loopback address and an ephemeral port:

* ``france24`` -- France 24 look-alike in English, Spanish and French.
  Pages ``/{lang}/{section}/{YYYYMMDD}-{slug}``, feeds ``/{lang}/rss``
  (France 24's RSS 2.0 layout).
* ``voa`` -- Voice of America look-alike in English and Spanish.
  Pages ``/a/{slug}/{id}.html`` and ``/es/a/{slug}/{id}.html``, feeds
  ``/api/zq-en`` and ``/api/zq-es`` (RSS 2.0 with ``content:encoded``).
* ``hemiwire`` -- "Hemisphere Wire", a small WordPress-style aggregator.
  Pages ``/news/{slug}``, Atom 1.0 feed ``/feed.xml``.

Articles live in ``content/{outlet}_{lang}.json``; page and feed markup lives in
``templates/{outlet}/*.html|xml`` (``string.Template``). Everything is rendered at
request time so that links are absolute and point at the running servers.
Inside article paragraphs, ``[text](@outlet:lang:slug)`` marks a link to another
demo article (possibly on another outlet).
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.utils
import hashlib
import html
import json
import re
import signal
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape as _xml_escape

__all__ = ["DemoSites", "DEFAULT_HOSTS", "main"]

PACKAGE_DIR = Path(__file__).resolve().parent
CONTENT_DIR = PACKAGE_DIR / "content"
TEMPLATE_DIR = PACKAGE_DIR / "templates"

DEFAULT_HOSTS: dict[str, str] = {"france24": "127.0.0.2", "voa": "127.0.0.3", "hemiwire": "127.0.0.4"}
OUTLET_LANGUAGES: dict[str, tuple[str, ...]] = {
    "france24": ("en", "es", "fr"),
    "voa": ("en", "es"),
    "hemiwire": ("en",),
}

PAGE_CONTENT_TYPE = "text/html; charset=utf-8"
FEED_CONTENT_TYPE = "application/rss+xml; charset=utf-8"  # also used for hemiwire's Atom feed, as specified
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"

# Bylines that are organisations rather than people (JSON-LD author @type).
_ORG_AUTHORS = {"FRANCE 24", "VOA News", "VOA Noticias", "The Associated Press", "Hemisphere Wire staff"}
_REQUIRED_FIELDS = ("slug", "title", "description", "published", "author", "section", "guid", "paragraphs", "tags")
_LINK_RE = re.compile(r"\[([^\]]+)\]\(@([a-z0-9]+):([a-z]{2}):([^)\s]+)\)")
_URL_SAFE = "/:@-._~!$&'()*+,;="


# --------------------------------------------------------------------------- content


@dataclass(frozen=True)
class Article:
    outlet: str
    language: str
    slug: str
    title: str
    description: str
    published: dt.datetime
    author: str
    section: str
    guid: str
    paragraphs: tuple[str, ...]
    tags: tuple[str, ...]
    path: str  # decoded URL path on the outlet's server

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.outlet, self.language, self.slug)

    @property
    def word_count(self) -> int:
        return sum(len(_LINK_RE.sub(r"\1", p).split()) for p in self.paragraphs)


def _slugify_label(label: str) -> str:
    """France 24 style: lower-case, spaces to hyphens, accents kept ("américa-latina")."""
    return re.sub(r"[\s/&]+", "-", label.strip().lower()).strip("-")


def _parse_time(value: str) -> dt.datetime:
    if not value.endswith("Z"):
        raise ValueError(f"published must be ISO-8601 UTC ending in 'Z', got {value!r}")
    return dt.datetime.fromisoformat(value[:-1]).replace(tzinfo=dt.timezone.utc)


def _voa_prefix(lang: str) -> str:
    return "" if lang == "en" else f"/{lang}"


def article_path(outlet: str, lang: str, slug: str, section: str, published: dt.datetime, guid: str) -> str:
    if outlet == "france24":
        return f"/{lang}/{_slugify_label(section)}/{published:%Y%m%d}-{slug}"
    if outlet == "voa":
        if not guid.isdigit():
            raise ValueError(f"voa article {slug!r}: guid must be the numeric article id, got {guid!r}")
        return f"{_voa_prefix(lang)}/a/{slug}/{guid}.html"
    if outlet == "hemiwire":
        return f"/news/{slug}"
    raise ValueError(f"unknown outlet {outlet!r}")


def feed_path(outlet: str, lang: str) -> str:
    return {"france24": f"/{lang}/rss", "voa": f"/api/zq-{lang}", "hemiwire": "/feed.xml"}[outlet]


def home_path(outlet: str, lang: str) -> str:
    if outlet == "france24":
        return f"/{lang}/"
    if outlet == "voa":
        return f"{_voa_prefix(lang)}/"
    return "/"


def section_path(outlet: str, lang: str, section: str) -> str:
    if outlet == "france24":
        return f"/{lang}/{_slugify_label(section)}/"
    if outlet == "voa":
        return f"{_voa_prefix(lang)}/z/{1000 + zlib.crc32(section.encode()) % 9000}"
    return f"/category/{_slugify_label(section)}/"


def tag_path(outlet: str, lang: str, tag: str) -> str:
    t = _slugify_label(tag)
    if outlet == "france24":
        return f"/{lang}/tag/{t}/"
    if outlet == "voa":
        return f"{_voa_prefix(lang)}/t/{t}"
    return f"/tag/{t}/"


def image_path(a: Article) -> str:
    if a.outlet == "france24":
        return f"/media/display/{a.guid}/w1024/{a.slug}.png"
    if a.outlet == "voa":
        return f"{_voa_prefix(a.language)}/img/{a.guid}_w1200_r1.png"
    return f"/wp-content/uploads/2026/11/{a.slug}-1200x675.png"


class Catalog:
    """All articles of all outlets, loaded and validated once."""

    def __init__(self, content_dir: Path = CONTENT_DIR) -> None:
        self.by_feed: dict[tuple[str, str], list[Article]] = {}
        self.by_key: dict[tuple[str, str, str], Article] = {}
        for outlet, langs in OUTLET_LANGUAGES.items():
            for lang in langs:
                path = content_dir / f"{outlet}_{lang}.json"
                raw = json.loads(path.read_text(encoding="utf-8"))
                items = [self._article(outlet, lang, i, r, path) for i, r in enumerate(raw)]
                items.sort(key=lambda a: a.published, reverse=True)
                self.by_feed[(outlet, lang)] = items
                for a in items:
                    if a.key in self.by_key:
                        raise ValueError(f"{path}: duplicate slug {a.slug!r}")
                    self.by_key[a.key] = a
        paths: dict[tuple[str, str], Article] = {}
        for a in self.by_key.values():
            if (a.outlet, a.path) in paths:
                raise ValueError(f"two {a.outlet} articles share the path {a.path}")
            paths[(a.outlet, a.path)] = a
            for p in a.paragraphs:
                for m in _LINK_RE.finditer(p):
                    if (m.group(2), m.group(3), m.group(4)) not in self.by_key:
                        raise ValueError(f"{a.outlet}/{a.language}/{a.slug}: link to unknown article {m.group(0)}")

    @staticmethod
    def _article(outlet: str, lang: str, i: int, r: dict, origin: Path) -> Article:
        missing = [f for f in _REQUIRED_FIELDS if f not in r]
        if missing:
            raise ValueError(f"{origin}[{i}]: missing fields {missing}")
        published = _parse_time(r["published"])
        return Article(
            outlet=outlet,
            language=lang,
            slug=r["slug"],
            title=r["title"],
            description=r["description"],
            published=published,
            author=r["author"],
            section=r["section"],
            guid=str(r["guid"]),
            paragraphs=tuple(r["paragraphs"]),
            tags=tuple(r["tags"]),
            path=article_path(outlet, lang, r["slug"], r["section"], published, str(r["guid"])),
        )

    def outlet_articles(self, outlet: str) -> list[Article]:
        return [a for (o, _), items in self.by_feed.items() if o == outlet for a in items]


# --------------------------------------------------------------------------- rendering helpers


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _x(text: str) -> str:
    return _xml_escape(text, {'"': "&quot;"})


def _js(text: str) -> str:
    """Contents of a double-quoted JS string inside a <script> block."""
    return json.dumps(text, ensure_ascii=False)[1:-1].replace("</", "<\\/")


def _json_for_script(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2).replace("</", "<\\/").replace("<!--", "<\\!--")


def _rfc822(when: dt.datetime, gmt: bool) -> str:
    return email.utils.format_datetime(when.astimezone(dt.timezone.utc), usegmt=gmt)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _placeholder_png(width: int = 16, height: int = 9, rgb: tuple[int, int, int] = (0x3A, 0x4F, 0x66)) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


_PNG = _placeholder_png()
_STUB_JS = b"/* demo site: script intentionally empty */\n"
_STUB_CSS = b"/* demo site: stylesheet intentionally empty */\n"
_ROBOTS = b"User-agent: *\nAllow: /\n"


class _Templates:
    def __init__(self, root: Path = TEMPLATE_DIR) -> None:
        self.root = root
        self._cache: dict[tuple[str, str], Template | None] = {}
        self._lock = threading.Lock()
        self.strings = json.loads((root / "strings.json").read_text(encoding="utf-8"))

    def get(self, outlet: str, name: str) -> Template | None:
        key = (outlet, name)
        with self._lock:
            if key not in self._cache:
                path = self.root / outlet / name
                self._cache[key] = Template(path.read_text(encoding="utf-8")) if path.exists() else None
            return self._cache[key]

    def render(self, outlet: str, name: str, ctx: dict[str, object]) -> str:
        tpl = self.get(outlet, name)
        if tpl is None:
            raise FileNotFoundError(f"template {outlet}/{name} is missing")
        return tpl.substitute(ctx)


@dataclass
class _Response:
    status: int
    content_type: str
    body: bytes
    last_modified: dt.datetime | None = None
    headers: tuple[tuple[str, str], ...] = ()


# --------------------------------------------------------------------------- the sites


class DemoSites:
    """Serves the demo outlets, each on its own loopback address, on ephemeral ports."""

    def __init__(self, hosts: dict[str, str] | None = None, port: int = 0) -> None:
        # A fixed port keeps the outlets' URLs (and so the articles' identities) the same from
        # one `newsetl demo` to the next; tests use ephemeral ports.
        self.port = port
        self.hosts: dict[str, str] = dict(DEFAULT_HOSTS if hosts is None else hosts)
        unknown = sorted(set(self.hosts) - set(OUTLET_LANGUAGES))
        if unknown:
            raise ValueError(f"unknown outlet(s) {unknown}; known: {sorted(OUTLET_LANGUAGES)}")
        self.base_urls: dict[str, str] = {}
        self.requests: list[tuple[str, str, str]] = []
        self._requests_lock = threading.Lock()
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._threads: list[threading.Thread] = []
        self.catalog = Catalog()
        self._tpl = _Templates()
        self._routes = {slug: self._build_routes(slug) for slug in self.hosts}

    # ----------------------------------------------------------- lifecycle

    def start(self) -> "DemoSites":
        if self._servers:
            return self
        try:
            for slug, host in self.hosts.items():
                try:
                    server = _DemoHTTPServer((host, self.port), _Handler)
                except OSError as exc:
                    if self.port:
                        raise OSError(f"cannot serve demo outlet {slug} on {host}:{self.port}: {exc}") from exc
                    # e.g. macOS, where only 127.0.0.1 is configured on lo0.
                    host = "127.0.0.1"
                    server = _DemoHTTPServer((host, 0), _Handler)
                server.demo = self
                server.outlet_slug = slug
                self._servers[slug] = server
                self.base_urls[slug] = f"http://{host}:{server.server_address[1]}"
                thread = threading.Thread(
                    target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"demo-{slug}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        servers, self._servers = self._servers, {}
        for server in servers.values():
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def __enter__(self) -> "DemoSites":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----------------------------------------------------------- public helpers

    def _require_started(self) -> None:
        if not self.base_urls:
            raise RuntimeError("DemoSites is not started; call start() or use it as a context manager")

    def feed_urls(self) -> list[tuple[str, str, str]]:
        self._require_started()
        return [
            (slug, lang, self.url(slug, feed_path(slug, lang)))
            for slug in self.hosts
            for lang in OUTLET_LANGUAGES[slug]
        ]

    def article_urls(self) -> list[str]:
        self._require_started()
        return [self.url(slug, a.path) for slug in self.hosts for a in self.catalog.outlet_articles(slug)]

    def article_url(self, outlet: str, language: str, slug: str) -> str:
        """Absolute URL of one article, e.g. ``article_url("voa", "en", "...")``."""
        self._require_started()
        return self.url(outlet, self.catalog.by_key[(outlet, language, slug)].path)

    def sources_toml(self, min_request_interval: float = 0.0) -> str:
        self._require_started()
        interval = float(min_request_interval)
        if interval < 0:
            raise ValueError("min_request_interval must be >= 0")
        blocks = []
        for slug in self.hosts:
            lines = [
                "[[sources]]",
                f"slug = {json.dumps(slug)}",
                f"name = {json.dumps(self._tpl.strings['outlets'][slug]['name'], ensure_ascii=False)}",
                f"homepage = {json.dumps(self.base_urls[slug] + '/')}",
                f"min_request_interval = {interval!r}",
            ]
            for lang in OUTLET_LANGUAGES[slug]:
                lines += [
                    "",
                    "  [[sources.feeds]]",
                    f"  url = {json.dumps(self.url(slug, feed_path(slug, lang)))}",
                    f"  language = {json.dumps(lang)}",
                    '  section = "all"',
                ]
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks) + "\n"

    def url(self, outlet: str, path: str) -> str:
        """Absolute, percent-encoded URL for a decoded path on an outlet."""
        base = self.base_urls.get(outlet) or f"http://{outlet}.demo.invalid"
        return base + quote(path, safe=_URL_SAFE)

    # ----------------------------------------------------------- request plumbing

    def _record(self, slug: str, method: str, path: str) -> None:
        with self._requests_lock:
            self.requests.append((slug, method, path))

    def _build_routes(self, outlet: str) -> dict[str, tuple[str, object]]:
        routes: dict[str, tuple[str, object]] = {"/robots.txt": ("robots", None)}
        langs = OUTLET_LANGUAGES[outlet]
        routes["/"] = ("home", (langs[0], None))
        for lang in langs:
            routes[home_path(outlet, lang)] = ("home", (lang, None))
            routes[feed_path(outlet, lang)] = ("feed", lang)
            for a in self.catalog.by_feed[(outlet, lang)]:
                routes[a.path] = ("article", a)
                routes[image_path(a)] = ("png", None)
                routes.setdefault(section_path(outlet, lang, a.section), ("home", (lang, a.section)))
        return routes

    def _respond(self, outlet: str, raw_path: str) -> _Response:
        path = unquote(urlsplit(raw_path).path, errors="strict")
        kind, payload = self._routes[outlet].get(path, (None, None))
        if kind is None:
            if path.endswith(".png") and path.startswith("/static/"):
                kind = "png"
            elif path.startswith(("/static/", "/wp-content/", "/wp-includes/")) and path.endswith((".js", ".css")):
                kind = "stub"
        if kind == "article":
            a = payload
            assert isinstance(a, Article)
            return _Response(200, PAGE_CONTENT_TYPE, self._render_article(a).encode("utf-8"), a.published)
        if kind == "feed":
            lang = str(payload)
            items = self.catalog.by_feed[(outlet, lang)]
            body = self._render_feed(outlet, lang, items).encode("utf-8")
            return _Response(200, FEED_CONTENT_TYPE, body, items[0].published)
        if kind == "home":
            lang, section = payload  # type: ignore[misc]
            items = [a for a in self.catalog.by_feed[(outlet, lang)] if section is None or a.section == section]
            canonical = home_path(outlet, lang) if section is None else section_path(outlet, lang, section)
            body = self._render_home(outlet, lang, section, items, canonical).encode("utf-8")
            return _Response(200, PAGE_CONTENT_TYPE, body, items[0].published if items else None)
        if kind == "robots":
            return _Response(200, TEXT_CONTENT_TYPE, _ROBOTS)
        if kind == "png":
            return _Response(200, "image/png", _PNG)
        if kind == "stub":
            ctype = "text/css; charset=utf-8" if path.endswith(".css") else "application/javascript; charset=utf-8"
            return _Response(200, ctype, _STUB_CSS if path.endswith(".css") else _STUB_JS)
        return self._not_found(outlet)

    def _not_found(self, outlet: str) -> _Response:
        lang = OUTLET_LANGUAGES[outlet][0]
        msg = _h(self._tpl.strings["outlets"][outlet][lang]["ui"]["page_may_contain"])
        name = _h(self._tpl.strings["outlets"][outlet]["name"])
        body = (
            f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"><title>404 - {name}</title></head>'
            f'<body><h1>404</h1><p>{msg}</p><p><a href="{self.url(outlet, "/")}">{name}</a></p></body></html>\n'
        )
        return _Response(404, PAGE_CONTENT_TYPE, body.encode("utf-8"))

    # ----------------------------------------------------------- rendering

    def _ui(self, outlet: str, lang: str) -> dict[str, str]:
        return self._tpl.strings["outlets"][outlet][lang]

    def _human_time(self, outlet: str, lang: str, when: dt.datetime) -> str:
        months = self._tpl.strings["months"][lang]
        if outlet == "france24":
            return when.strftime("%d/%m/%Y - %H:%M")
        if outlet == "voa":
            if lang == "en":
                hour = when.hour % 12 or 12
                return f"{months[when.month - 1]} {when.day}, {when.year} {hour}:{when:%M} {'AM' if when.hour < 12 else 'PM'}"
            return f"{when.day} de {months[when.month - 1]} de {when.year} {when:%H:%M}"
        return f"{months[when.month - 1]} {when.day}, {when.year}"

    def _inline(self, text: str, as_html: bool) -> str:
        """Renders ``[text](@outlet:lang:slug)`` links; escapes everything else when ``as_html``."""
        out, pos = [], 0
        for m in _LINK_RE.finditer(text):
            out.append(_h(text[pos : m.start()]) if as_html else text[pos : m.start()])
            label = m.group(1)
            if as_html:
                target = self.catalog.by_key[(m.group(2), m.group(3), m.group(4))]
                out.append(f'<a href="{_h(self.url(target.outlet, target.path))}">{_h(label)}</a>')
            else:
                out.append(label)
            pos = m.end()
        out.append(_h(text[pos:]) if as_html else text[pos:])
        return "".join(out)

    def _fragments(self, outlet: str, name: str, rows: list[dict[str, object]]) -> str:
        return "\n".join(self._tpl.render(outlet, name, row).rstrip("\n") for row in rows)

    def _links(self, outlet: str, lang: str, name: str, pairs: list[list[str]]) -> str:
        rows = []
        for label, target in pairs:
            url = target if target.startswith(("http://", "https://")) else self.url(outlet, target)
            rows.append({"label": _h(label), "url": _h(url)})
        return self._fragments(outlet, name, rows)

    def _article_row(self, a: Article) -> dict[str, object]:
        return {
            "url": _h(self.url(a.outlet, a.path)),
            "title": _h(a.title),
            "description": _h(a.description),
            "section": _h(a.section),
            "image_url": _h(self.url(a.outlet, image_path(a))),
            "published_iso": _iso(a.published),
            "published_human": _h(self._human_time(a.outlet, a.language, a.published)),
            "time_short": a.published.strftime("%H:%M"),
            "author": _h(a.author),
        }

    def _related(self, a: Article, limit: int = 4) -> list[Article]:
        others = [b for b in self.catalog.by_feed[(a.outlet, a.language)] if b.key != a.key]
        tags = set(a.tags)
        others.sort(key=lambda b: (-len(tags & set(b.tags)), -b.published.timestamp()))
        return others[:limit]

    def _comments(self, a: Article) -> list[dict[str, object]]:
        pool = self._tpl.strings["comments"][a.language]
        seed = zlib.crc32(f"{a.outlet}/{a.slug}".encode())
        count = 2 + seed % 2
        rows = []
        for i in range(count):
            name, text = pool[(seed + 3 * i) % len(pool)]
            when = a.published + dt.timedelta(minutes=47 + 83 * i + seed % 60)
            rows.append(
                {
                    "comment_id": str(100000 + (seed + i) % 900000),
                    "name": _h(name),
                    "text": _h(text),
                    "when_iso": _iso(when),
                    "when_human": _h(self._human_time(a.outlet, a.language, when)),
                }
            )
        return rows

    def _jsonld(self, a: Article, canonical: str, image: str) -> object:
        site = self._tpl.strings["outlets"][a.outlet]["name"]
        author_type = "Organization" if a.author in _ORG_AUTHORS else "Person"
        article = {
            "@type": "NewsArticle",
            "headline": a.title,
            "description": a.description,
            "datePublished": _iso(a.published),
            "dateModified": _iso(a.published),
            "inLanguage": a.language,
            "author": [{"@type": author_type, "name": a.author}],
            "articleSection": a.section,
            "keywords": list(a.tags),
            "image": [image],
            "mainEntityOfPage": {"@type": "WebPage", "@id": canonical},
            "publisher": {
                "@type": "Organization",
                "name": site,
                "logo": {"@type": "ImageObject", "url": self.url(a.outlet, "/static/logo.png")},
            },
            "isAccessibleForFree": True,
        }
        if a.outlet == "hemiwire":
            # Yoast-style graph, as WordPress sites emit it.
            article["@id"] = canonical + "#article"
            return {
                "@context": "https://schema.org",
                "@graph": [
                    article,
                    {"@type": "WebPage", "@id": canonical, "url": canonical, "name": a.title, "inLanguage": "en-US"},
                    {"@type": "Organization", "@id": self.url(a.outlet, "/") + "#organization", "name": site},
                ],
            }
        return {"@context": "https://schema.org", **article}

    def _render_body(self, a: Article, related: list[Article], ui: dict[str, str]) -> str:
        paras = [{"text": self._inline(p, as_html=True)} for p in a.paragraphs]
        parts = [self._tpl.render(a.outlet, "paragraph.html", row).rstrip("\n") for row in paras]
        read_more = self._tpl.get(a.outlet, "read_more.html")
        if read_more is not None and related and len(parts) >= 5:
            row = self._article_row(related[0])
            row["label"] = _h(ui["read_more"])
            parts.insert(3, read_more.substitute(row).rstrip("\n"))
        return "\n".join(parts)

    def _common_ctx(self, outlet: str, lang: str) -> dict[str, object]:
        strings = self._ui(outlet, lang)
        ctx: dict[str, object] = {f"ui_{k}": _h(v) for k, v in strings["ui"].items()}
        newest = self.catalog.by_feed[(outlet, lang)][0].published
        ctx.update(
            lang=lang,
            og_locale=strings["og_locale"],
            site_name=_h(self._tpl.strings["outlets"][outlet]["name"]),
            base=_h(self.base_urls.get(outlet, self.url(outlet, "")).rstrip("/")),
            home_url=_h(self.url(outlet, home_path(outlet, lang))),
            feed_url=_h(self.url(outlet, feed_path(outlet, lang))),
            feed_title=_h(strings["feed_title"]),
            feed_description=_h(strings["feed_description"]),
            nav_html=self._links(outlet, lang, "nav_item.html", strings["nav"]),
            footer_html=self._links(outlet, lang, "footer_item.html", strings["footer"]),
            ticker_html=self._fragments(
                outlet, "ticker_item.html", [self._article_row(b) for b in self.catalog.by_feed[(outlet, lang)][:5]]
            ),
            year=str(newest.year),
            topbar_date=_h(newest.strftime("%A, ") + self._human_time("hemiwire", "en", newest)),
        )
        return ctx

    def _render_article(self, a: Article) -> str:
        outlet, lang = a.outlet, a.language
        ui = self._ui(outlet, lang)["ui"]
        canonical = self.url(outlet, a.path)
        image = self.url(outlet, image_path(a))
        related = self._related(a)
        feed_items = self.catalog.by_feed[(outlet, lang)]
        comments = self._comments(a)
        ctx = self._common_ctx(outlet, lang)
        ctx.update(
            title=_h(a.title),
            description=_h(a.description),
            canonical=_h(canonical),
            image_url=_h(image),
            published_iso=_iso(a.published),
            published_human=_h(self._human_time(outlet, lang, a.published)),
            author=_h(a.author),
            author_js=_js(a.author),
            author_url=_h(self.url(outlet, f"/author/{_slugify_label(a.author)}/")),
            section=_h(a.section),
            section_js=_js(a.section),
            section_slug=_h(_slugify_label(a.section)),
            section_url=_h(self.url(outlet, section_path(outlet, lang, a.section))),
            keywords=_h(", ".join(a.tags)),
            page_id=_h(a.guid if a.guid.isdigit() else str(10000 + zlib.crc32(a.slug.encode()) % 90000)),
            reading_minutes=str(max(1, round(a.word_count / 200))),
            share_url=_h(quote(canonical, safe="")),
            share_title=_h(quote(a.title, safe="")),
            policy_url=_h(self.url(outlet, f"{_voa_prefix(lang)}/p/5325.html")),
            body=self._render_body(a, related, ui),
            tags_html=self._fragments(
                outlet,
                "tag_item.html",
                [{"tag": _h(t), "url": _h(self.url(outlet, tag_path(outlet, lang, t)))} for t in a.tags],
            ),
            related_html=self._fragments(outlet, "related_item.html", [self._article_row(b) for b in related]),
            comments_html=self._fragments(outlet, "comment.html", comments),
            comment_count=str(len(comments)),
            jsonld=_json_for_script(self._jsonld(a, canonical, image)),
            breadcrumb_jsonld=_json_for_script(
                {
                    "@context": "https://schema.org",
                    "@type": "BreadcrumbList",
                    "itemListElement": [
                        {"@type": "ListItem", "position": 1, "name": ui["home"], "item": self.url(outlet, home_path(outlet, lang))},
                        {"@type": "ListItem", "position": 2, "name": a.section, "item": self.url(outlet, section_path(outlet, lang, a.section))},
                    ],
                }
            ),
        )
        if self._tpl.get(outlet, "most_read_item.html") is not None:
            ranked = sorted(feed_items, key=lambda b: zlib.crc32(b.slug.encode()))[:5]
            ctx["most_read_html"] = self._fragments(outlet, "most_read_item.html", [self._article_row(b) for b in ranked])
        if self._tpl.get(outlet, "recent_item.html") is not None:
            ctx["recent_html"] = self._fragments(outlet, "recent_item.html", [self._article_row(b) for b in feed_items[:5]])
        if self._tpl.get(outlet, "source_item.html") is not None:
            sources = [
                {"label": _h(self._tpl.strings["outlets"][o]["name"]), "url": _h(self.url(o, "/"))}
                for o in ("france24", "voa")
            ]
            sources.append({"label": "The Associated Press", "url": "https://apnews.com/"})
            ctx["sources_html"] = self._fragments(outlet, "source_item.html", sources)
        if self._tpl.get(outlet, "post_nav.html") is not None:
            idx = feed_items.index(a)
            rows = []
            if idx + 1 < len(feed_items):
                rows.append({**self._article_row(feed_items[idx + 1]), "rel": "prev", "label": _h(ui["previous"])})
            if idx > 0:
                rows.append({**self._article_row(feed_items[idx - 1]), "rel": "next", "label": _h(ui["next"])})
            ctx["post_nav_html"] = self._fragments(outlet, "post_nav.html", rows)
        return self._tpl.render(outlet, "article.html", ctx)

    def _render_home(self, outlet: str, lang: str, section: str | None, items: list[Article], canonical: str) -> str:
        ui = self._ui(outlet, lang)["ui"]
        ctx = self._common_ctx(outlet, lang)
        ctx.update(
            heading=_h(section if section else ui["latest"]),
            canonical=_h(self.url(outlet, canonical)),
            items_html=self._fragments(outlet, "home_item.html", [self._article_row(a) for a in items]),
        )
        return self._tpl.render(outlet, "home.html", ctx)

    def _render_feed(self, outlet: str, lang: str, items: list[Article]) -> str:
        strings = self._ui(outlet, lang)
        newest = items[0].published
        rows = []
        for a in items:
            content = "\n".join(f"<p>{self._inline(p, as_html=True)}</p>" for p in a.paragraphs)
            rows.append(
                {
                    "title": _x(a.title),
                    "description": _x(a.description),
                    "url": _x(self.url(outlet, a.path)),
                    "guid": _x(a.guid),
                    "section": _x(a.section),
                    "author": _x(a.author),
                    "image_url": _x(self.url(outlet, image_path(a))),
                    "pub_date": _rfc822(a.published, gmt=(outlet == "france24")),
                    "published_iso": _iso(a.published),
                    "home_url": _x(self.url(outlet, home_path(outlet, lang))),
                    "credit": _x(strings["ui"].get("credit", "")),
                    "content_html": content.replace("]]>", "]]]]><![CDATA[>"),
                }
            )
        ctx = {
            "lang": lang,
            "site_name": _x(self._tpl.strings["outlets"][outlet]["name"]),
            "feed_title": _x(strings["feed_title"]),
            "feed_description": _x(strings["feed_description"]),
            "home_url": _x(self.url(outlet, home_path(outlet, lang))),
            "feed_url": _x(self.url(outlet, feed_path(outlet, lang))),
            "logo_url": _x(self.url(outlet, "/static/logo.png")),
            "last_build_date": _rfc822(newest, gmt=(outlet == "france24")),
            "updated": _iso(newest),
            "feed_id": f"tag:hemiwire.news,2026:{feed_path(outlet, lang)}",
            "items": self._fragments(outlet, "feed_item.xml", rows),
        }
        return self._tpl.render(outlet, "feed.xml", ctx)


# --------------------------------------------------------------------------- HTTP layer


class _DemoHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    demo: DemoSites
    outlet_slug: str


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [c.strip() for c in header.split(",")]
    bare = etag.removeprefix("W/")
    return any(c == "*" or c.removeprefix("W/") == bare for c in candidates)


class _Handler(BaseHTTPRequestHandler):
    server: _DemoHTTPServer
    server_version = "DemoNews/1.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence default logging
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._serve(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(send_body=False)

    def _serve(self, send_body: bool) -> None:
        demo, slug = self.server.demo, self.server.outlet_slug
        demo._record(slug, self.command, self.path)
        try:
            resp = demo._respond(slug, self.path)
        except UnicodeDecodeError:
            resp = demo._not_found(slug)
        except Exception as exc:  # pragma: no cover - a bug in the demo itself
            body = f"internal error: {type(exc).__name__}: {exc}\n".encode()
            resp = _Response(500, TEXT_CONTENT_TYPE, body)
        status, extra = resp.status, []
        body = resp.body
        if status == 200:
            etag = '"' + hashlib.sha1(body).hexdigest()[:24] + '"'
            extra.append(("ETag", etag))
            if resp.last_modified is not None:
                extra.append(("Last-Modified", _rfc822(resp.last_modified, gmt=True)))
            extra.append(("Cache-Control", "public, max-age=60"))
            if self._not_modified(etag, resp.last_modified):
                status, body = 304, b""
        self.send_response(status)
        if status != 304:  # a 304 carries neither a body nor its framing headers
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(body)))
        for name, value in extra + list(resp.headers):
            self.send_header(name, value)
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

    def _not_modified(self, etag: str, last_modified: dt.datetime | None) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm is not None:
            return _etag_matches(inm, etag)
        ims = self.headers.get("If-Modified-Since")
        if ims and last_modified is not None:
            try:
                since = email.utils.parsedate_to_datetime(ims)
            except (TypeError, ValueError, IndexError):
                return False
            if since.tzinfo is None:
                since = since.replace(tzinfo=dt.timezone.utc)
            return last_modified <= since
        return False


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m etl.demo.server", description="Serve the offline demo news sites until Ctrl-C."
    )
    parser.add_argument("--sources-out", metavar="PATH", help="also write a sources registry (TOML) for the running servers")
    parser.add_argument("--min-request-interval", type=float, default=0.0, help="value written into the registry")
    args = parser.parse_args(argv)
    print_ = _print_flush

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C even when started in the background (where SIGINT may be ignored), and SIGTERM.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    with DemoSites() as sites:
        for slug, url in sites.base_urls.items():
            print_(f"{slug:9} {url}/")
        for slug, lang, url in sites.feed_urls():
            print_(f"  feed {slug}/{lang}: {url}")
        if args.sources_out:
            Path(args.sources_out).write_text(sites.sources_toml(args.min_request_interval), encoding="utf-8")
            print_(f"sources registry written to {args.sources_out}")
        print_("serving; press Ctrl-C to stop")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print_("stopping")
    return 0


def _print_flush(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
