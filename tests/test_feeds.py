from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl.parse.feeds import FeedParseError, parse_feed

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>T</title><link>https://ex.com/</link><ttl>30</ttl>
<item><title> First </title><link>https://ex.com/a?utm_source=rss#x</link>
<guid isPermaLink="false">g-1</guid><pubDate>Fri, 20 Nov 2026 14:05:00 +0100</pubDate>
<dc:creator>Ana Ruiz</dc:creator><category>Americas</category>
<description>Summary &lt;b&gt;one&lt;/b&gt;</description>
<content:encoded><![CDATA[<p>Full body</p>]]></content:encoded></item>
<item><title>No guid</title><link>https://ex.com/b</link></item>
<item><title>No link</title></item>
</channel></rss>"""


def test_rss_entries_identity_dates_and_content() -> None:
    feed = parse_feed(RSS, "application/rss+xml")
    assert feed.ttl_minutes == 30
    assert [e.entry_key for e in feed.entries] == ["g-1", "https://ex.com/b"]
    first = feed.entries[0]
    assert first.title == "First"
    assert first.canonical_url == "https://ex.com/a"
    assert first.published_at == datetime(2026, 11, 20, 13, 5, tzinfo=UTC)
    assert first.authors == ("Ana Ruiz",)
    assert first.categories == ("Americas",)
    assert "Full body" in first.content_html
    assert "Summary" in first.summary


def test_entry_cap() -> None:
    items = "".join(f"<item><title>{i}</title><link>https://ex.com/{i}</link></item>" for i in range(30))
    feed = parse_feed(f'<rss version="2.0"><channel><title>x</title>{items}</channel></rss>'.encode(), max_entries=10)
    assert len(feed.entries) == 10 and feed.entries_total == 30


@pytest.mark.parametrize("body", [b"", b"<html><body>Not a feed</body></html>", b"\x00\x01\x02garbage", b"{\"json\": 1}"])
def test_non_feeds_raise(body: bytes) -> None:
    with pytest.raises(FeedParseError):
        parse_feed(body, "text/html")


@pytest.mark.slow  # parses every real feed of shared/data (~3 s of CPU)
def test_real_feeds_parse_with_titles_links_dates(shared_data: Path) -> None:
    folder = shared_data / "feeds"
    checked = 0
    for path in sorted(folder.iterdir()):
        if "invalid" in path.name:
            continue
        feed = parse_feed(path.read_bytes())
        assert feed.entries, path.name
        assert all(e.title and e.link.startswith("http") for e in feed.entries), path.name
        raw = path.read_bytes()
        dated = sum(1 for e in feed.entries if e.published_at)
        if b"<pubDate" in raw or b"<published" in raw or b"<updated" in raw:
            # every item that carries a date gets one (CNN omits it on some items)
            assert dated >= raw.count(b"<pubDate") - raw.count(b"<channel") or dated == len(feed.entries), path.name
            assert dated >= 0.75 * len(feed.entries), path.name
        checked += 1
    assert checked >= 15


def test_iso_8859_1_without_declaration_decodes(shared_data: Path) -> None:
    feed = parse_feed((shared_data / "feeds" / "miniflux_no_encoding_ISO-8859-1.xml").read_bytes())
    assert any("é" in (e.title or "") for e in feed.entries)
    assert not any("\ufffd" in (e.title or "") for e in feed.entries)


def test_france24_real_feed(shared_data: Path) -> None:
    feed = parse_feed((shared_data / "feeds" / "france24_fr_tag_immobilier_2025-06-02.rss").read_bytes())
    assert len(feed.entries) == 24
    first = feed.entries[0]
    assert first.guid == "a5e0087c-b13e-11ef-94c3-005056a97652"
    assert first.image_url and first.image_url.endswith(".jpg")
    assert first.published_at == datetime(2024, 12, 3, 7, 3, 59, tzinfo=UTC)


def test_non_english_dates(shared_data: Path) -> None:
    feed = parse_feed((shared_data / "feeds" / "feedrs_rss2_ilmessaggero.xml").read_bytes())
    assert feed.entries[0].published_at == datetime(2022, 11, 15, 23, 38, 15, tzinfo=UTC)


# -- hostile and badly encoded documents --------------------------------------------------------

def _quadratic_blowup() -> bytes:
    # 40 KB on the wire; feedparser's loose parser expanded it to 100 MB of text before hardening
    return (b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "' + b"A" * 10_000 + b'">\n]>\n'
            b'<rss version="2.0"><channel><title>t</title><item><title>x</title><link>https://ex.com/a</link>'
            b"<description>" + b"&a;" * 10_000 + b"</description></item></channel></rss>")


def _billion_laughs() -> bytes:
    decls = b'<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
    return (b'<?xml version="1.0"?><!DOCTYPE rss [' + decls + b']><rss version="2.0"><channel>'
            b"<title>&lol9;</title><item><title>&lol9;</title><link>https://ex.com/a</link></item></channel></rss>")


def _external_entity() -> bytes:
    return (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b'<rss version="2.0"><channel><title>t</title><item><title>&xxe;</title>'
            b"<link>https://ex.com/a</link><description>&xxe;</description></item></channel></rss>")


@pytest.mark.parametrize("make", [_quadratic_blowup, _billion_laughs, _external_entity])
def test_entity_declarations_refused_without_expanding(make) -> None:
    import tracemalloc

    body = make()
    tracemalloc.start()
    try:
        with pytest.raises(FeedParseError, match="entities"):
            parse_feed(body, "application/rss+xml")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024


def test_entity_declarations_found_in_utf16() -> None:
    body = _external_entity().decode().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    with pytest.raises(FeedParseError, match="entities"):
        parse_feed(body.encode("utf-16"))


def test_plain_doctype_without_entities_still_parses() -> None:
    body = (b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
            b'"http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91"><channel><title>t</title>'
            b"<item><title>a</title><link>https://ex.com/a</link></item></channel></rss>")
    assert [e.link for e in parse_feed(body).entries] == ["https://ex.com/a"]


LATIN = '<rss version="2.0"><channel><title>Actualité</title><item><title>Élection à Panamá</title><link>https://ex.com/a</link></item></channel></rss>'


@pytest.mark.parametrize("body,content_type", [
    # declared in the XML, contradicted by the HTTP header
    (('<?xml version="1.0" encoding="ISO-8859-1"?>' + LATIN).encode("latin-1"), "application/rss+xml; charset=utf-8"),
    # no declaration anywhere
    (LATIN.encode("latin-1"), None),
    # declared only by the HTTP header
    (LATIN.encode("latin-1"), "text/xml; charset=iso-8859-1"),
    # wrong header, no declaration
    (LATIN.encode("latin-1"), "application/xml; charset=utf-8"),
])
def test_wrong_or_missing_charset(body: bytes, content_type: str | None) -> None:
    feed = parse_feed(body, content_type)
    assert [e.title for e in feed.entries] == ["Élection à Panamá"]


def test_invalid_xml_with_readable_entries_parses_with_a_warning() -> None:
    feed = parse_feed(b'<rss version="2.0"><channel><title>x</title><item><title>a & b</title>'
                      b"<link>https://ex.com/a</link></item></channel>")
    assert [e.title for e in feed.entries] == ["a & b"] and feed.warning


def test_invalid_xml_without_entries_is_an_error() -> None:
    with pytest.raises(FeedParseError, match="not a feed"):
        parse_feed(b"<rss><channel><title>x</title><item><title>a</ti")
