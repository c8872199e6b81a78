from pathlib import Path

import pytest

from etl.config import (
    DEFAULT_SOURCES,
    SettingsError,
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


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NEWSETL_TASK_WORKERS", "four", "expected a whole number"),
        ("NEWSETL_TASK_WORKERS", "0", "must be between 1 and 32"),
        ("NEWSETL_READ_TIMEOUT", "soon", "expected a number"),
        ("NEWSETL_READ_TIMEOUT", "nan", "must be ≥"),
        ("NEWSETL_ARCHIVE", "maybe", "expected 1/0, true/false"),
        ("NEWSETL_STORY_REACH_DAYS", "long", "expected a number"),
        ("NEWSETL_RETENTION_DAYS", "-1", "must be ≥ 0"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(environ={name: value})
    assert str(err.value).startswith(f"{name}={value!r}: ") and message in str(err.value)


def test_every_setting_comes_from_the_environment_once() -> None:
    env = {"NEWSETL_TASK_WORKERS": "7", "NEWSETL_STORY_WINDOW_HOURS": "24", "NEWSETL_STORY_REACH_DAYS": "30",
           "NEWSETL_STORY_EMBEDDING": "off", "NEWSETL_RETENTION_DAYS": "30", "NEWSETL_RUN_RETENTION_DAYS": "60",
           "NEWSETL_ARCHIVE": "no", "NEWSETL_PAGE_CLAIM_SECONDS": "5", "NEWSETL_HOME": "/tmp/x"}
    s = load_settings(environ=env)
    assert s.task_workers == 7 and not s.archive_enabled and s.page_claim_seconds == 5.0
    assert (s.stories.window_hours, s.stories.reach_days, s.stories.use_embedding) == (24.0, 30.0, False)
    assert (s.retention.poll_days, s.retention.run_days) == (30, 60)
    assert s.home == Path("/tmp/x") and s.pgdata == Path("/tmp/x/pgdata")
    # unset and empty variables take the defaults
    d = load_settings(environ={"NEWSETL_TASK_WORKERS": ""})
    assert (d.task_workers, d.stories.reach_days, d.retention.poll_days, d.archive_enabled) == (4, 90.0, 90, True)
