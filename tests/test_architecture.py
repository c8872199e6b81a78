"""The house rules, checked on the source: data flows one way through the stage packages, no
module reaches a sibling by reflection, and only etl.config reads the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ETL = ROOT / "etl"

# The stages in data-flow order: a stage may import itself, an earlier stage and the foundations
# (etl.config, etl.models, etl.__version__). The CLI is the top and may start the flows.
ORDER = ["fetch", "parse", "store", "stories", "warehouse", "jobs", "cli"]
FOUNDATIONS = {"config", "models", ""}
# The demo outlets are a standalone fixture server: they use the registry format only.
DEMO_ALLOWED = {"config", "demo"}


def _modules() -> list[Path]:
    return sorted(p for p in ETL.rglob("*.py") if "_sql" not in p.parts)


def _owner(path: Path) -> str:
    """The top-level part of etl a file belongs to: 'jobs' for etl/jobs/backfill/run.py,
    'config' for etl/config.py, '' for etl/__init__.py."""
    rel = path.relative_to(ETL).with_suffix("")
    return "" if rel.parts == ("__init__",) else rel.parts[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import, at any depth (lazy ones included). For
    ``from a.b import c`` the module is a.b.c when c is a module of ours, else a.b."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.append((node.lineno, full if _is_module(full) else node.module))
    return out


def _is_module(dotted: str) -> bool:
    base = ETL.parent.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _target(module: str) -> str | None:
    """The top-level part of etl an import refers to, or None when it is not ours."""
    parts = module.split(".")
    if parts[0] != "etl":
        return None
    return parts[1] if len(parts) > 1 and parts[1] != "__version__" else ""


# Inside a stage, the same rule between its modules: each may import only those before it.
INNER = {
    "fetch": ["urls", "schedule", "robots", "http", "archive"],
    "parse": ["dates", "feeds", "sitemaps", "extract", "warmup", "pool", "normalize"],
    "store": ["queries", "retry", "migrations", "db", "sources", "feeds", "articles", "runs", "claims",
              "backfills", "unarchived"],
    "stories": ["lexicon", "features", "dedup", "attribution", "profile", "index", "model", "window", "similarity", "reach",
                "matcher", "snapshot", "repository", "engine", "memory", "postgres", "assign"],
    "jobs": ["cpu", "submit", "runs", "archiving", "polling", "batch", "story_lane", "cycle", "reextract", "backfill",
             "maintenance", "metrics"],
    "cli": ["stack", "render", "listings", "ops", "main"],
}


def _inner(path: Path) -> str | None:
    """The module's name inside its stage ('polling' for etl/jobs/polling.py, 'backfill' for
    etl/jobs/backfill/run.py); None for the stage's __init__/__main__ and top-level modules."""
    rel = path.relative_to(ETL).with_suffix("").parts
    if len(rel) < 2 or rel[1] in ("__init__", "__main__"):
        return None
    return rel[1]


def violations() -> list[str]:
    found = []
    for path in _modules():
        owner = _owner(path)
        where = path.relative_to(ROOT)
        for line, module in _imports(path):
            if module.split(".")[0] == "flows" and owner != "cli":
                found.append(f"{where}:{line} imports {module}: only the CLI may start a flow")
            target = _target(module)
            if target is None:
                continue
            if target == owner:
                found += _inner_violation(path, line, module)
                continue
            if owner == "demo":
                ok = target in DEMO_ALLOWED
            elif owner == "cli" and target == "demo":
                ok = True  # `newsetl demo` serves the demo outlets
            elif owner in FOUNDATIONS:
                ok = target in FOUNDATIONS
            elif owner in ORDER:
                ok = target in FOUNDATIONS or (target in ORDER and ORDER.index(target) < ORDER.index(owner))
            else:
                ok = False  # a new top-level module must be placed in ORDER first
            if not ok:
                found.append(f"{where}:{line} ({owner or 'etl'}) imports {module} ({target or 'etl'})")
    return found


def _inner_violation(path: Path, line: int, module: str) -> list[str]:
    owner, me = _owner(path), _inner(path)
    parts = module.split(".")
    target = parts[2] if len(parts) > 2 else None
    if owner not in INNER or me is None or target is None or target == me:
        return []
    order = INNER[owner]
    if target in order and me in order and order.index(target) < order.index(me):
        return []
    return [f"{path.relative_to(ROOT)}:{line} ({owner}.{me}) imports {module}: not before it in {owner}/"]


def test_every_module_has_a_place_in_the_order() -> None:
    owners = {_owner(p) for p in _modules()}
    assert owners <= set(ORDER) | FOUNDATIONS | {"demo"}, owners - set(ORDER) - FOUNDATIONS
    inner = {(_owner(p), _inner(p)) for p in _modules() if _owner(p) in INNER and _inner(p)}
    assert {(o, m) for o, m in inner if m not in INNER[o]} == set()


def test_a_stage_imports_only_earlier_stages_and_the_foundations() -> None:
    assert violations() == []


def test_the_rule_catches_an_import_against_the_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself: a fetch module importing the store, and a store module importing a
    job lazily inside a function, are both reported."""
    fake = tmp_path / "etl"
    (fake / "fetch").mkdir(parents=True)
    (fake / "store").mkdir()
    (fake / "fetch" / "bad.py").write_text("from etl.store import db\n")
    (fake / "store" / "lazy.py").write_text("def f():\n    from etl.jobs import cycle\n")
    (fake / "store" / "fine.py").write_text("from etl.parse.feeds import parse_feed\nfrom etl import models\n")
    (fake / "jobs").mkdir()
    (fake / "jobs" / "polling.py").write_text("from etl.jobs import batch\nfrom etl.jobs.submit import run_now\n")
    for name in ("batch", "submit"):
        (fake / "jobs" / f"{name}.py").write_text("")
    monkeypatch.setitem(globals(), "ETL", fake)
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert violations() == [
        "etl/fetch/bad.py:1 (fetch) imports etl.store (store)",
        "etl/jobs/polling.py:1 (jobs.polling) imports etl.jobs.batch: not before it in jobs/",
        "etl/store/lazy.py:2 (store) imports etl.jobs (jobs)",
    ]


REFLECTION = {"importlib", "inspect"}


def test_no_reflection_between_our_modules() -> None:
    """Siblings ship in one wheel: they import each other directly, so that a signature change
    fails at import or type check, not at run time."""
    found = [f"{p.relative_to(ROOT)}:{line} imports {m}" for p in _modules() for line, m in _imports(p)
             if m.split(".")[0] in REFLECTION]
    assert found == []


def test_only_config_reads_the_environment() -> None:
    """Every setting is read once, in etl.config.load_settings, and passed down. (The CLI may
    set Prefect's own variables before Prefect starts; the demo server takes no settings.)"""
    found = []
    for path in _modules():
        if _owner(path) in ("config", "demo"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
                    and isinstance(node.value, ast.Name) and node.value.id == "os"
                    and not (_owner(path) == "cli" and _only_sets(node, parents))):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def _only_sets(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """``os.environ.setdefault(...)``, ``os.environ[k] = v`` or ``dict(os.environ ...)``:
    configuring Prefect, or the environment of a process the CLI starts — not reading a
    setting of ours."""
    parent = parents.get(node)
    if isinstance(parent, ast.Attribute) and parent.attr == "setdefault":
        return True
    if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, ast.Store):
        return True
    for _ in range(2):
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "dict":
            return True
        parent = parents.get(parent) if parent is not None else None
    return False
