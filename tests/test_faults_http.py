"""Hostile servers and addresses: decompression bombs in every encoding we accept (peak RSS
measured in a child process against a clean fetch), headers trickled one byte at a time, a feed
of 100,000 entries, and the SSRF guard — whose decisions are tested without connecting anywhere
but 127.0.0.0/8."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path

import brotli
import httpx
import pytest
from sqlalchemy import Engine, text

from etl.config import load_settings
from etl.fetch.http import (
    Fetcher,
    FetchError,
    GuardedBackend,
    GuardedTransport,
    check_url_allowed,
    decode_capped,
    is_public_address,
    request_scope,
)
from etl.parse.feeds import parse_feed
from tests.test_faults import ingest_once, page, rss, settings_for, sources_file
from tests.webserver import TestWeb, static

REPO = Path(__file__).resolve().parent.parent
BOMB_BYTES = 300_000_000  # inflated size; the caps are 5 MB (pages) and 10 MB (feeds)
CAP = 10_000_000


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    zeros = b"\0" * BOMB_BYTES
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    df = zlib.compressobj(9, zlib.DEFLATED, 15)
    return {"br": brotli.compress(zeros, quality=1), "gzip": gz.compress(zeros) + gz.flush(),
            "deflate": df.compress(zeros) + df.flush()}


_CHILD = """
import json, sys
from etl.config import load_settings
from etl.fetch.http import Fetcher
clean, bomb, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
def peak():  # VmHWM: peak RSS since exec (ru_maxrss would include the forked parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
with Fetcher(load_settings()) as f:
    ok = f.fetch(clean, max_bytes=cap, min_interval=0)
    before = peak()
    res = f.fetch(bomb, max_bytes=cap, min_interval=0)
    print(json.dumps({"clean_ok": ok.ok, "clean_rss": before, "bomb_rss": peak(),
                      "kind": res.error_kind, "error": res.error, "size": len(res.content)}))
"""


@pytest.mark.slow  # 300 MB bombs compressed, each fetched in a child process
@pytest.mark.parametrize("encoding", ["br", "gzip", "deflate"])
def test_decompression_bombs_stop_at_the_cap_while_streaming(bombs: dict[str, bytes], encoding: str) -> None:
    """300 MB of zeros compressed (brotli: 54 KB). Peak RSS of the child that fetches it stays
    within that of a clean 1 MB fetch + 100 MB (it is cap + one decode step in fact)."""
    with TestWeb() as web:
        web.route("/clean", static(b"<p>" + b"x" * 1_000_000 + b"</p>"))
        web.route("/bomb", static(bombs[encoding], headers={"Content-Encoding": encoding}))
        env = {**os.environ, "NEWSETL_ALLOW_PRIVATE_NETWORKS": "1"}
        out = subprocess.run([sys.executable, "-c", _CHILD, web.url("/clean"), web.url("/bomb"), str(CAP)],
                             capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["clean_ok"] and res["kind"] == "too_large", res
    growth = res["bomb_rss"] - res["clean_rss"]
    print(f"{encoding}: clean peak {res['clean_rss'] / 1e6:.0f} MB, after the bomb {res['bomb_rss'] / 1e6:.0f} MB")
    assert growth <= 100_000_000, f"{encoding} bomb grew peak RSS by {growth / 1e6:.0f} MB"


def test_decoding_is_capped_step_by_step_and_chains_and_zstd_is_refused() -> None:
    text_ = b"hello world " * 10_000
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)
    chained = brotli.compress(gz.compress(text_) + gz.flush())  # gzip applied first, then br
    assert b"".join(decode_capped([chained[:100], chained[100:]], "gzip, br", 10**6)) == text_
    members = b""
    for part in (b"first member ", b"second member"):  # gzip allows several members in a row
        g = zlib.compressobj(6, zlib.DEFLATED, 31)
        members += g.compress(part) + g.flush()
    assert b"".join(decode_capped([members[:7], members[7:]], "gzip", 100)) == b"first member second member"
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)  # "deflate" sent without the zlib header
    assert b"".join(decode_capped([raw.compress(text_) + raw.flush()], "deflate", 10**6)) == text_
    pieces = []
    with pytest.raises(FetchError) as exc:
        for piece in decode_capped([brotli.compress(b"\0" * 5_000_000)], "br", 1_000_000):
            pieces.append(len(piece))
    assert exc.value.kind == "too_large" and max(pieces) <= 256 * 1024 and sum(pieces) <= 1_000_000
    with pytest.raises(FetchError) as exc:
        list(decode_capped([b"x"], "zstd", 100))
    assert exc.value.kind == "decoding"
    with pytest.raises(FetchError) as exc:
        list(decode_capped([b"not gzip at all"], "gzip", 100))
    assert exc.value.kind == "decoding"


def test_headers_trickled_one_byte_at_a_time_are_cut_at_the_total_timeout() -> None:
    """Every byte arrives well inside the read timeout, so only a total deadline over connect,
    headers and body can end it. The server counts what it got to send before the client hung up."""
    sent: list[int] = []

    def trickle(h) -> None:  # type: ignore[no-untyped-def]
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"p" * 60 + b"\r\n\r\nbody"
        n = 0
        try:
            for byte in head:
                h.wfile.write(bytes([byte]))
                h.wfile.flush()
                n += 1
                time.sleep(0.25)
        except OSError:
            pass
        finally:
            sent.append(n)
        h.close_connection = True

    settings = replace(load_settings(), read_timeout=5.0, connect_timeout=5.0, total_timeout=1.5)
    with TestWeb() as web, Fetcher(settings) as f:
        res = f.fetch(web.route("/slow", trickle), max_bytes=1000, min_interval=0, allow_private=True)
        deadline = time.monotonic() + 30
        while not sent and time.monotonic() < deadline:  # the handler notices the closed socket
            time.sleep(0.1)
    assert res.error_kind == "timeout" and "total time over" in res.error, res.error
    # 1.5 s at 4 bytes/s: a handful of the ~100 header bytes, never the whole head
    assert sent and sent[0] < 40, sent


def test_a_feed_of_100000_entries_is_cut_before_parsing_and_loads_its_capped_entries(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    items = [{"title": f"T{i}", "link": f"/p/{i}", "guid": f"g{i}"} for i in range(100_000)]
    doc = rss(items).encode()
    parsed = parse_feed(doc, "application/rss+xml", "http://h.example/", 500)
    assert len(parsed.entries) == 500 and parsed.entries_total == 100_000
    assert (parsed.entries[-1].guid or "").endswith("g499") and "100000 entries" in (parsed.warning or "")

    monkeypatch.setenv("NEWSETL_MAX_ENTRIES_PER_POLL", "20")
    with TestWeb() as web:
        web.route("/big.xml", static(doc, content_type="application/rss+xml"))
        for i in range(20):
            web.route(f"/p/{i}", static(page(f"entry {i}")))
        out = ingest_once(engine, settings_for(sources_file(tmp_path, {"big": [web.url("/big.xml")]})))
    counts = out["counts"]
    assert counts.articles_new == 20 and counts.errors == 0 and counts.feeds_failed == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT entries_seen, error_kind FROM feed_polls")).one() == (20, None)


# --- SSRF: decisions, never a packet outside 127.0.0.0/8 -----------------------------------------

def _teredo(client: str) -> str:
    server = int(ipaddress.IPv4Address("65.54.227.120"))
    obfuscated = ~int(ipaddress.IPv4Address(client)) & 0xFFFFFFFF
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (server << 64) | obfuscated))


@pytest.mark.parametrize("addr", [
    "64:ff9b::a9fe:a9fe", "64:ff9b::10.0.0.1", "64:ff9b::127.0.0.1",   # NAT64 → private IPv4
    "64:ff9b:1::a9fe:a9fe", "64:ff9b:1::808:808",                      # local-use NAT64: never
    "::a9fe:a9fe", "::8.8.8.8", "::", "::1",                           # IPv4-compatible ::/96
    "2002:a9fe:a9fe::1", "2002:0a00:0001::1", "2002:7f00:1::",         # 6to4
    _teredo("169.254.169.254"), _teredo("8.8.8.8"),                    # Teredo (2001::/32)
    "::ffff:169.254.169.254", "::ffff:10.0.0.1", "fe80::1", "fc00::1", "ff02::1",
    "169.254.169.254", "10.1.2.3", "127.0.0.1", "0.0.0.0", "100.64.0.1", "224.0.0.1",
])
def test_the_guard_refuses_every_non_public_address_and_ipv4_inside_ipv6(addr: str) -> None:
    assert not is_public_address(addr)


@pytest.mark.parametrize("addr", ["8.8.8.8", "64:ff9b::808:808", "::ffff:8.8.8.8", "2606:4700:4700::1111"])
def test_the_guard_lets_public_addresses_through(addr: str) -> None:
    assert is_public_address(addr)


@pytest.mark.parametrize("url", [
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "http://[::a9fe:a9fe]/", "http://[2002:a9fe:a9fe::1]/",
    f"http://[{_teredo('169.254.169.254')}]/", "http://[64:ff9b:1::a9fe:a9fe]/",
    "http://2852039166/", "http://0xa9fea9fe/", "http://169.254.43518/",
])
def test_literal_addresses_are_refused_before_any_lookup_or_request(url: str) -> None:
    with pytest.raises(FetchError) as exc:
        check_url_allowed(url, allow_private=False, resolve=False)
    assert exc.value.kind == "blocked"


def test_the_connection_goes_to_the_checked_address_with_one_lookup_and_the_host_kept() -> None:
    """A resolver that rebinds: first answer loopback (where the test server is), then the
    metadata address. The guard resolves once, connects to the address it checked, and the
    request still names the host; a name that resolves to a refused address gets no connection."""
    calls: list[str] = []

    def rebinding(host: str, port: int, **_kw: object) -> list[tuple]:
        calls.append(host)
        addr = "127.0.0.1" if len(calls) == 1 else "169.254.169.254"
        return [(2, 1, 6, "", (addr, port))]

    with TestWeb() as web:
        web.route("/x", static("ok"))
        transport = GuardedTransport(httpx.Limits(max_connections=1), GuardedBackend(resolve=rebinding))
        with httpx.Client(transport=transport) as client:
            with request_scope(time.monotonic() + 10, allow_private=True, total=10):
                resp = client.get(f"http://rebind.test:{web.port}/x")
            assert resp.status_code == 200 and resp.text == "ok"
            assert calls == ["rebind.test"]  # one lookup for one connection
            assert web.requests[0][2]["host"] == f"rebind.test:{web.port}"

    def metadata(host: str, port: int, **_kw: object) -> list[tuple]:
        return [(10, 1, 6, "", ("64:ff9b::a9fe:a9fe", port, 0, 0))]

    refused = GuardedBackend(resolve=metadata)
    with request_scope(time.monotonic() + 10, allow_private=False, total=10), pytest.raises(FetchError) as exc:
        refused.connect_tcp("metadata.test", 80, timeout=1)  # raises before any socket exists
    assert exc.value.kind == "blocked" and "64:ff9b::a9fe:a9fe" in str(exc.value)


def test_a_name_resolving_to_loopback_is_refused_at_connect_by_the_fetcher() -> None:
    strict = replace(load_settings(), allow_private_networks=False, total_timeout=5.0)
    with TestWeb() as web, Fetcher(strict) as f:
        web.route("/a", static("x"))
        res = f.fetch(f"http://localhost:{web.port}/a", max_bytes=100, min_interval=0)
    assert res.error_kind == "blocked" and "non-public address" in res.error and web.requests == []


def test_the_total_deadline_starts_with_the_request_not_with_the_politeness_wait() -> None:
    """The wait for a host's turn is ours, not the server's: a fetch that waited 1.5 s for its
    slot still has its whole 1 s total for the request."""
    settings = replace(load_settings(), total_timeout=1.0, read_timeout=1.0, connect_timeout=1.0)
    with TestWeb() as web, Fetcher(settings) as f:
        url = web.route("/a", static("x"))
        assert f.fetch(url, max_bytes=100, min_interval=1.5, allow_private=True).ok
        second = f.fetch(url, max_bytes=100, min_interval=1.5, allow_private=True)
    assert second.ok, second.error
    assert second.elapsed_ms >= 1000  # it did wait for its turn (a lower bound, never an upper one)


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` that is its own CA (cryptography, already a dependency)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_keeps_the_server_name_while_connecting_to_the_checked_address(tmp_path: Path) -> None:
    """HTTPS to a name the guard resolved to 127.0.0.1: the handshake sends the name (SNI) and
    the certificate is verified against the name, not the address."""
    import ssl

    cert, key = _self_signed(tmp_path, "news.test")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    seen_sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: seen_sni.append(name)  # type: ignore[assignment,misc]
    client_ctx = ssl.create_default_context(cafile=str(cert))

    def loopback(host: str, port: int, **_kw: object) -> list[tuple]:
        return [(2, 1, 6, "", ("127.0.0.1", port))]

    web = TestWeb()
    web.server.socket = server_ctx.wrap_socket(web.server.socket, server_side=True)
    with web:
        web.route("/x", static("secure"))
        transport = GuardedTransport(httpx.Limits(max_connections=1), GuardedBackend(resolve=loopback), client_ctx)
        with httpx.Client(transport=transport) as client, \
                request_scope(time.monotonic() + 10, allow_private=True, total=10):
            resp = client.get(f"https://news.test:{web.port}/x")
    assert resp.status_code == 200 and resp.text == "secure"
    assert seen_sni == ["news.test"] and web.requests[0][2]["host"] == f"news.test:{web.port}"
