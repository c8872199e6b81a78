"""The raw archive: every fetched page and feed response, as WARC request + response records.

Why keep raw bytes: extraction improves (a trafilatura upgrade, new settings), and pages change
or vanish; with the archive, ``etl.jobs.reextract`` re-runs extraction without the network. WARC is
the format every crawler and replay tool reads (warcio, pywb, Common Crawl's tooling).

Files are gzip WARCs (one gzip member per record, so any record can be read alone from its
offset) that rotate at ``NEWSETL_ARCHIVE_MAX_BYTES``. Each process writes its own files (the
name carries host, pid and start time), so two runs never interleave records; within a
process one lock serializes writers, because Prefect tasks run in threads. Offsets, lengths
and digests are indexed in PostgreSQL (``archive_records``) by the store stage.

Bodies are stored as the client received them after content decoding (httpx inflates gzip/br
while streaming to enforce the size cap), so ``Content-Encoding`` is moved to
``X-Archive-Orig-Content-Encoding`` and ``Content-Length`` is the stored length.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import socket
import threading
import zlib
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from etl import __version__
from etl.config import Settings
from etl.models import ArchivedResponse, ArchiveKind, ArchiveRef, FetchResult

log = logging.getLogger(__name__)

# Headers that describe the transfer, not the stored payload.
_TRANSFER_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}


class ArchiveWriteError(Exception):
    """A response could not be appended (full disk, I/O error, permissions). The file is left
    as it was before the attempt, so readers never meet half a record, and the next write tries
    again: archiving resumes by itself when space returns. ``kind`` groups causes for logging
    (``ENOSPC``, ``EIO``, ``EACCES``, …); ``str()`` is one line that says why."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind


def describe_os_error(exc: BaseException) -> tuple[str, str]:
    """(kind, one-line reason) of a write failure, e.g. ``('ENOSPC', 'ENOSPC: No space left on
    device')``; the path is left out (it says nothing the archive directory does not)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        kind = errno.errorcode.get(exc.errno, f"errno {exc.errno}")
        return kind, f"{kind}: {exc.strerror or os.strerror(exc.errno)}"
    return type(exc).__name__, f"{type(exc).__name__}: {exc}"


class WarcArchive:
    """Rotating gzip WARC files under one directory; thread-safe, one file per process.

    A write appends whole gzip members with unbuffered ``os.write`` calls; when one fails part
    way (the disk filled up), the file is cut back to where the record started, so the file
    stays a valid WARC for every reader. If even that fails, the file is closed and the next
    write starts a new one."""

    def __init__(self, directory: Path, max_bytes: int = 1024**3, prefix: str = "newsetl") -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.prefix = prefix
        self._lock = threading.Lock()
        self._fh: BinaryIO | None = None
        self._name: str | None = None
        self._size = 0  # bytes of whole records in the open file (the next record's offset)
        self._pid = 0
        self._seq = 0
        self._started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")

    def _open_next(self) -> None:
        self._drop_file()
        if self._pid != os.getpid():  # a forked child never appends to its parent's file
            self._pid, self._seq = os.getpid(), 0
            self._started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        self._seq += 1
        host = socket.gethostname().replace("-", "_") or "host"
        sub = self._started[:6]  # one folder per month keeps directories small
        name = f"{sub}/{self.prefix}-{self._started}-{host}-{self._pid}-{self._seq:05d}.warc.gz"
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: a failed write leaves nothing behind in a buffer to be flushed later.
        self._fh = open(path, "ab", buffering=0)  # noqa: SIM115 — kept open across writes, closed on rotate/close
        self._name = name
        self._size = os.fstat(self._fh.fileno()).st_size

    def _drop_file(self) -> None:
        """Closes the current file; one that never got a record (every write failed) is removed."""
        if self._fh is not None:
            try:
                self._fh.close()
                if self._size == 0 and self._name is not None:
                    (self.directory / self._name).unlink(missing_ok=True)
            except OSError:
                pass
            self._fh = None

    def _current(self) -> tuple[BinaryIO, str]:
        if (self._fh is None or self._pid != os.getpid()
                or self._size >= self.max_bytes):
            self._open_next()
        assert self._fh is not None and self._name is not None
        return self._fh, self._name

    def _warcinfo(self) -> bytes:
        assert self._name is not None
        writer = WARCWriter(None, gzip=False)
        return _gzip_member(writer.create_warcinfo_record(Path(self._name).name, {
            "software": f"newsetl/{__version__} (warcio)", "format": "WARC File Format 1.1",
            "hostname": socket.gethostname(),
        }))

    def _append(self, fh: BinaryIO, data: bytes) -> None:
        """Appends ``data`` whole, or leaves the file as it was and raises."""
        start = self._size
        try:
            view = memoryview(data)
            while view:  # a full disk may take part of it before it refuses the rest
                written = fh.write(view)
                if not written:
                    raise OSError(errno.EIO, "the file took no bytes")
                view = view[written:]
        except OSError:
            try:
                os.ftruncate(fh.fileno(), start)
            except OSError:  # cannot even cut it back: leave this file, the next write opens another
                log.warning("could not cut %s back to %d bytes after a failed write; starting a new file",
                            self._name, start)
                self._drop_file()
            raise
        self._size = start + len(data)

    def write(self, *, kind: ArchiveKind, url: str, status: int, headers: dict[str, str], body: bytes,
              request_headers: dict[str, str], fetched_at: datetime | None = None) -> ArchiveRef:
        """Appends a response record and its request record; returns where the response is.
        Raises :class:`ArchiveWriteError` when they cannot be written (the file is unchanged)."""
        fetched_at = fetched_at or datetime.now(UTC)
        warc_date = fetched_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        http_headers = [(k, v) for k, v in headers.items() if k.lower() not in _TRANSFER_HEADERS]
        if "content-encoding" in {k.lower() for k in headers}:
            http_headers.append(("X-Archive-Orig-Content-Encoding", headers.get("content-encoding", "")))
        http_headers.append(("Content-Length", str(len(body))))
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        req_headers = [("Host", parts.netloc), *request_headers.items()]
        # The records are serialized and compressed before taking the lock, each into one gzip
        # member by a single zlib call (which releases the GIL): the fetch threads compress side
        # by side while the rest of the process runs, and the lock only covers the append.
        # (warcio's own gzip writer runs level 9 through many small Python-level writes.)
        writer = WARCWriter(None, gzip=False)
        resp = writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), length=len(body),
            http_headers=StatusAndHeaders(f"{status} {reason}", http_headers, protocol="HTTP/1.1"),
            warc_headers_dict={"WARC-Date": warc_date, "WARC-Source": f"newsetl-{kind}"},
        )
        req = writer.create_warc_record(
            url, "request", payload=io.BytesIO(b""), length=0,
            http_headers=StatusAndHeaders(f"GET {path} HTTP/1.1", req_headers, is_http_request=True),
            warc_headers_dict={"WARC-Date": warc_date,
                               "WARC-Concurrent-To": resp.rec_headers.get_header("WARC-Record-ID")},
        )
        resp_gz, req_gz = _gzip_member(resp), _gzip_member(req)
        with self._lock:
            try:
                fh, name = self._current()
                # A new file starts with its warcinfo record, written with the first response so
                # that a failure leaves no file with a header and nothing else to retry it.
                head = self._warcinfo() if self._size == 0 else b""
                self._append(fh, head + resp_gz + req_gz)
            except OSError as exc:
                kind_, why = describe_os_error(exc)
                raise ArchiveWriteError(why, kind_) from exc
            offset = self._size - len(req_gz) - len(resp_gz)
        length = len(resp_gz)
        return ArchiveRef(kind=kind, url=url, warc_file=name, offset=offset, length=length,
                          digest=resp.rec_headers.get_header("WARC-Payload-Digest") or "",
                          http_status=status, fetched_at=fetched_at)

    def close(self) -> None:
        with self._lock:
            self._drop_file()

    def __enter__(self) -> "WarcArchive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# zlib's fast levels (1-3) cost half of level 6 on the Zyte pages (1.1 vs 2.4 ms per 170 KB page
# at level 3) for files 12 % larger (0.221 vs 0.198 of the raw size; level 1: 0.92 ms, 0.235);
# the archive was the largest line of the main process's CPU per page after the story stage.
# Still one gzip member per record: every WARC reader (warcio, pywb, Common Crawl's tools) reads
# any level; zstd WARCs are not read by warcio (webrecorder/warcio#118).
GZIP_LEVEL = 3


def _gzip_member(record: ArcWarcRecord) -> bytes:
    """One record as one gzip member (readable alone from its offset, as WARC tools expect)."""
    raw = io.BytesIO()
    WARCWriter(raw, gzip=False).write_record(record)  # warcio serializes (digests, headers, block)
    deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS + 16)
    return deflate.compress(raw.getvalue()) + deflate.flush()


def read_response(directory: Path, warc_file: str, offset: int, length: int) -> ArchivedResponse:
    """Reads one response record back by its index entry (no scan of the file)."""
    with open(Path(directory) / warc_file, "rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
    for record in ArchiveIterator(io.BytesIO(data)):
        if record.rec_type != "response":
            continue
        status = record.http_headers.get_statuscode() if record.http_headers else None
        headers = {k.lower(): v for k, v in (record.http_headers.headers if record.http_headers else [])}
        return ArchivedResponse(url=record.rec_headers.get_header("WARC-Target-URI"),
                                status=int(status) if status else None, headers=headers,
                                body=record.content_stream().read())
    raise ValueError(f"no response record at {warc_file}:{offset}+{length}")


_archives: dict[Path, WarcArchive] = {}
_archives_lock = threading.Lock()


def shared_archive(settings: Settings) -> WarcArchive | None:
    """The process's archive for ``settings`` (None when archiving is switched off)."""
    if not settings.archive_enabled:
        return None
    directory = settings.archive_path
    with _archives_lock:
        if directory not in _archives:
            _archives[directory] = WarcArchive(directory, settings.archive_max_bytes)
        return _archives[directory]


def archive_fetch(settings: Settings, res: FetchResult, kind: ArchiveKind, accept: str | None = None) -> ArchiveRef | None:
    """Archives one fetch outcome if a response came back (None when there is none, or archiving
    is off). Raises :class:`ArchiveWriteError` when it cannot be written — a full disk, an I/O
    error, a bug — which the caller records: it must not cost the article."""
    archive = shared_archive(settings)
    if archive is None or res.status is None:
        return None
    request_headers = {"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate, br"}
    if accept:
        request_headers["Accept"] = accept
    try:
        return archive.write(kind=kind, url=res.final_url, status=res.status, headers=dict(res.headers),
                             body=res.content or b"", request_headers=request_headers)
    except ArchiveWriteError:
        raise
    except Exception as exc:  # a bug of ours (the directory itself unusable raises OSError above)
        kind_, why = describe_os_error(exc)
        if kind_ not in _bugs_logged:  # its traceback once per process, not once per page
            _bugs_logged.add(kind_)
            log.exception("could not archive %s", res.final_url)
        raise ArchiveWriteError(why, kind_) from exc


_bugs_logged: set[str] = set()


def close_archives() -> None:
    """Closes the process's archive files (they are written unbuffered: nothing is lost
    without it; a process that exits without its atexit handlers calls it)."""
    with _archives_lock:
        for archive in _archives.values():
            archive.close()
