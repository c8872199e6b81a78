from pathlib import Path

import pytest

from etl.config import (
    DEFAULT_SOURCES,
    SourcesError,
    load_settings,
    load_sources,
    parse_sources,
)


def test_default_registry_lists_real_outlets() -> None:
    sources = {s.slug: s for s in load_sources(DEFAULT_SOURCES)}
    assert set(sources) >= {"france24", "voa"}
    f24_langs = {f.language for f in sources["france24"].feeds}
    assert f24_langs >= {"en", "fr", "es", "ar"}
    voa_langs = {f.language for f in sources["voa"].feeds}
    assert voa_langs >= {"en", "es"}
    assert all(f.url.startswith("https://") for s in sources.values() for f in s.feeds)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[sources]]\nname = "x"', "'slug' is required"),
        ('[[sources]]\nslug = "a"\n[[sources]]\nslug = "a"', "duplicate slug"),
        ('[[sources]]\nslug = "a"\n[[sources.feeds]]\nurl = "ftp://x/y"', "absolute http(s) URL"),
        ('[[sources]]\nslug = "a"\nmin_request_interval = -1', "min_request_interval"),
        ("not toml [", "invalid TOML"),
    ],
)
def test_registry_errors_name_the_problem(toml: str, message: str) -> None:
    with pytest.raises(SourcesError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_sources(toml)


def test_sources_file_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    monkeypatch.setenv("NEWSETL_SOURCES", str(path))
    assert load_settings().sources_file == path
    assert load_settings(tmp_path / "other.toml").sources_file == tmp_path / "other.toml"
