"""The local stack in one command: a Prefect server, the process work pool, the deployments of
``deploy/prefect.yaml`` and a worker — started, recorded by PID, and stopped by PID.

Everything runs from this checkout with this interpreter (``python -m prefect``), with its
state under ``$NEWSETL_HOME/stack`` (Prefect's SQLite database, logs, ``stack.json``). No
Prefect imports: the pieces are the same commands an operator would type, run as processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from etl.config import REPO_ROOT, deploy_dir

DEFAULT_POOL = "newsetl-process"
DEFAULT_PORT = 4200


class StackError(RuntimeError):
    """A piece of the stack did not start; the message says which and where its log is."""


@dataclass
class StackConfig:
    state_dir: Path                              # $NEWSETL_HOME/stack
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    pool: str = DEFAULT_POOL
    repo: Path = REPO_ROOT
    prefect_file: Path = deploy_dir() / "prefect.yaml"
    ui: bool = True
    worker: bool = True
    env: dict[str, str] = field(default_factory=dict)   # extra environment for every process
    startup_timeout: float = 180.0

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def prefect_home(self) -> Path:
        return self.state_dir / "prefect"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "stack.json"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def prefect_command(*args: str) -> list[str]:
    """The Prefect CLI of this interpreter, whatever is first on PATH."""
    return [sys.executable, "-m", "prefect", *args]


def child_env(cfg: StackConfig, base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    repo = str(cfg.repo)
    env.update({
        "PREFECT_HOME": str(cfg.prefect_home),
        "PREFECT_API_URL": cfg.api_url,
        "PREFECT_SERVER_API_HOST": cfg.host,
        "PREFECT_SERVER_API_PORT": str(cfg.port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "true" if cfg.ui else "false",
        "DO_NOT_TRACK": "1",
        # The flows import etl/ and flows/ from this checkout, before any installed copy.
        "PYTHONPATH": os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p),
        # deploy/prefect.yaml's pull step is "{{ $PWD }}": the checkout the worker runs from.
        "PWD": repo,
    })
    env.pop("PREFECT_PROFILES_PATH", None)
    env.update(cfg.env)
    return env


def _start(cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path) -> psutil.Process:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        # Own session = own process group: `down` can signal the whole group by its PID.
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return psutil.Process(proc.pid)


def _run(cmd: list[str], env: dict[str, str], cwd: Path, log_path: Path, timeout: float) -> None:
    with open(log_path, "ab") as log:
        log.write(f"\n$ {' '.join(cmd)}\n".encode())
        log.flush()
        done = subprocess.run(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    if done.returncode != 0:
        raise StackError(f"`{' '.join(cmd[2:])}` failed with exit code {done.returncode}; "
                         f"see {log_path}:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def api_healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_healthy(cfg: StackConfig, server: psutil.Process, log_path: Path) -> None:
    deadline = time.monotonic() + cfg.startup_timeout
    while time.monotonic() < deadline:
        if api_healthy(cfg.api_url):
            return
        if not server.is_running() or server.status() == psutil.STATUS_ZOMBIE:
            raise StackError(f"prefect server exited during start-up; see {log_path}:\n{_tail(log_path)}")
        time.sleep(0.5)
    raise StackError(f"prefect server not healthy at {cfg.api_url} after {cfg.startup_timeout:.0f}s; "
                     f"see {log_path}:\n{_tail(log_path)}")


def _wait_pool(cfg: StackConfig, worker: psutil.Process, log_path: Path) -> None:
    deadline = time.monotonic() + cfg.startup_timeout
    while time.monotonic() < deadline:
        try:
            resp = httpx.get(f"{cfg.api_url}/work_pools/{cfg.pool}", timeout=5)
            if resp.status_code == 200:
                if resp.json().get("type") != "process":
                    raise StackError(f"work pool {cfg.pool} exists with type {resp.json().get('type')!r}, "
                                     "not 'process'; delete it or choose another pool name")
                return
        except httpx.HTTPError:
            pass
        if not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE:
            raise StackError(f"the worker exited during start-up; see {log_path}:\n{_tail(log_path)}")
        time.sleep(0.5)
    raise StackError(f"work pool {cfg.pool} not created after {cfg.startup_timeout:.0f}s; see {log_path}")


def _record(proc: psutil.Process) -> dict[str, Any]:
    return {"pid": proc.pid, "create_time": proc.create_time()}


def read_state(cfg: StackConfig) -> dict[str, Any] | None:
    try:
        return json.loads(cfg.state_file.read_text())
    except (OSError, ValueError):
        return None


def _write_state(cfg: StackConfig, state: dict[str, Any]) -> None:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    tmp = cfg.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(cfg.state_file)


def _live(entry: Mapping[str, Any] | None) -> psutil.Process | None:
    """The recorded process if it still runs *and* is the one we started (not a reused PID)."""
    if not entry:
        return None
    try:
        proc = psutil.Process(int(entry["pid"]))
        if abs(proc.create_time() - float(entry["create_time"])) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.Error, KeyError, ValueError, TypeError):
        return None


def up(cfg: StackConfig, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Starts server → work pool → deployments → worker; returns (and writes) the state."""
    state = read_state(cfg)
    if state and any(_live(p) for p in state.get("processes", {}).values()):
        raise StackError(f"the stack already runs (state in {cfg.state_file}); `down` first")
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    cfg.prefect_home.mkdir(parents=True, exist_ok=True)
    env = child_env(cfg)
    logs = cfg.state_dir / "logs"
    state = {"api_url": cfg.api_url, "ui_url": cfg.api_url[: -len("/api")], "pool": cfg.pool,
             "prefect_home": str(cfg.prefect_home), "repo": str(cfg.repo), "logs": str(logs),
             "processes": {}}
    try:
        say(f"starting prefect server on {cfg.api_url} (PREFECT_HOME={cfg.prefect_home})")
        server = _start(prefect_command("server", "start", "--host", cfg.host, "--port", str(cfg.port)),
                        env, cfg.repo, logs / "server.log")
        state["processes"]["server"] = _record(server)
        _write_state(cfg, state)
        _wait_healthy(cfg, server, logs / "server.log")
        if cfg.worker:
            # The worker creates its process pool when it is missing; starting it first lets its
            # start-up overlap with `prefect deploy`, which only needs the pool to exist.
            say(f"starting a process worker, which creates work pool {cfg.pool}")
            worker = _start(prefect_command("worker", "start", "--pool", cfg.pool, "--type", "process"),
                            env, cfg.repo, logs / "worker.log")
            state["processes"]["worker"] = _record(worker)
            _write_state(cfg, state)
            _wait_pool(cfg, worker, logs / "worker.log")
        else:
            say(f"creating work pool {cfg.pool} (process)")
            _run(prefect_command("work-pool", "create", cfg.pool, "--type", "process", "--overwrite"),
                 env, cfg.repo, logs / "setup.log", cfg.startup_timeout)
        shown = cfg.prefect_file.relative_to(cfg.repo) if cfg.prefect_file.is_relative_to(cfg.repo) else cfg.prefect_file
        say(f"deploying {shown}")
        _run(prefect_command("--no-prompt", "deploy", "--all", "--prefect-file", str(cfg.prefect_file)),
             env, cfg.repo, logs / "setup.log", cfg.startup_timeout)
    except BaseException:
        down(cfg, say=lambda _m: None)
        raise
    say(f"up: UI {state['ui_url']}  (export PREFECT_API_URL={cfg.api_url}); logs in {logs}")
    return state


def _stop_group(proc: psutil.Process, timeout: float) -> None:
    """SIGTERM the process group led by ``proc``, then SIGKILL whatever is left of it and of the
    descendants found before (flow runs may sit in sessions of their own)."""
    try:
        family = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        family = [proc]
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    for p in family[1:]:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(family, timeout=timeout)
    if alive:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=5)


def down(cfg: StackConfig, say: Callable[[str], None] = print, timeout: float = 20.0) -> list[str]:
    """Stops the recorded processes (worker first), by PID; returns the names stopped."""
    state = read_state(cfg)
    if not state:
        say("nothing recorded; the stack is not running")
        return []
    stopped: list[str] = []
    for name in ("worker", "server"):
        proc = _live(state.get("processes", {}).get(name))
        if proc is None:
            continue
        say(f"stopping {name} (pid {proc.pid})")
        _stop_group(proc, timeout)
        stopped.append(name)
    cfg.state_file.unlink(missing_ok=True)
    say("down")
    return stopped


def status(cfg: StackConfig) -> dict[str, Any]:
    """What runs, whether the API answers, and which deployments it knows."""
    state = read_state(cfg) or {}
    procs = {name: bool(_live(entry)) for name, entry in state.get("processes", {}).items()}
    api = state.get("api_url", cfg.api_url)
    healthy = api_healthy(api)
    deployments: list[str] = []
    if healthy:
        try:
            resp = httpx.post(f"{api}/deployments/filter", json={"limit": 200}, timeout=10)
            flows = httpx.post(f"{api}/flows/filter", json={"limit": 200}, timeout=10).json()
            names = {f["id"]: f["name"] for f in flows}
            deployments = sorted(f"{names.get(d['flow_id'], '?')}/{d['name']}" for d in resp.json())
        except (httpx.HTTPError, ValueError, KeyError):
            pass
    return {"state_file": str(cfg.state_file), "api_url": api, "api_healthy": healthy,
            "processes": procs, "deployments": deployments}
