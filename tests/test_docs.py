"""README, docs/ and the config examples say what the code does (the "small truths")."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from bff.server_settings import ServerSettings, load_server_settings
from bff.settings import DEV_PORT_VARS, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
GUNICORN_CONF = (ROOT / "config" / "gunicorn.conf.py").read_text()
SETTINGS_VARS = [f.metadata["env"].data_key for f in fields(Settings)]
# The GUNICORN_* knobs, and what config/gunicorn.conf.py reads itself (PROMETHEUS_MULTIPROC_DIR).
SERVER_VARS = [f.metadata["env"].data_key for f in fields(ServerSettings)]
SERVER_VARS += re.findall(r'os\.environ\.setdefault\(\s*"([A-Z_]+)"', GUNICORN_CONF)
REQUIRED = {
    "IDAAS_BASE_URL": "https://tenant.example.com",
    "IDAAS_CLIENT_ID": "cid",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "WECHAT_APPID": "wxapp",
    "WECHAT_SECRET": "wxsecret",
}


def env_file(name: str) -> dict[str, str]:
    """``NAME=value`` lines of ``config/<name>`` (comments and blank lines left out)."""
    lines = (ROOT / "config" / name).read_text().splitlines()
    pairs = (line.partition("=") for line in lines if line and not line.startswith("#"))
    return {key: value for key, _, value in pairs}


def test_the_gunicorn_knobs_are_found() -> None:
    assert {"GUNICORN_BIND", "GUNICORN_LOG_LEVEL", "PROMETHEUS_MULTIPROC_DIR"} <= set(SERVER_VARS)


def test_every_variable_is_in_readme_and_in_the_production_example() -> None:
    example = env_file("production.env.example")
    for name in [*SETTINGS_VARS, *SERVER_VARS]:
        assert f"`{name}`" in README, f"README does not document {name}"
        assert name in example, f"config/production.env.example lacks {name}"
    for name in DEV_PORT_VARS.values():
        assert f"`{name}`" in README, f"README does not document {name}"
    assert set(example) <= {*SETTINGS_VARS, *SERVER_VARS}, "the example sets an unknown variable"


def test_the_production_example_shows_the_defaults() -> None:
    """Values shown are the defaults unless marked "set" (blank): the file says so."""
    example = {k: v for k, v in env_file("production.env.example").items() if v}
    assert load_settings({**example, **REQUIRED}) == load_settings(REQUIRED)
    assert load_server_settings({**example, **REQUIRED}) == load_server_settings(REQUIRED)


def test_the_bench_durations_agree() -> None:
    makefile = (ROOT / "Makefile").read_text()
    performance = (ROOT / "docs" / "performance.md").read_text()
    bench = re.search(r"^bench:.*: (\d+)-(\d+) min measured", makefile, re.M)
    smoke = re.search(r"^bench-smoke:.*## (\d+)-(\d+) s ", makefile, re.M)
    assert bench and smoke, "make help states the bench durations"
    minutes, seconds = "–".join(bench.groups()), "–".join(smoke.groups())
    readme = " ".join(README.split())  # wherever the lines wrap
    assert f"`make bench` ({minutes} minutes measured" in readme
    assert f"`make bench-smoke` runs the same path for {seconds} s" in readme
    assert f"make bench         # ~{'-'.join(bench.groups())} min:" in performance
    assert f"make bench-smoke   # ~{'-'.join(smoke.groups())} s," in performance


def test_the_lowest_versions_run_is_described_as_it_is() -> None:
    makefile = (ROOT / "Makefile").read_text()
    lowest = re.search(r"^test-lowest:.*: (\d+)-(\d+) min$", makefile, re.M)
    assert lowest, "make help states how long test-lowest takes"
    readme = " ".join(README.split())
    assert f"`make test-lowest` ({'–'.join(lowest.groups())} minutes" in readme
    assert "pip install -c constraints/lowest.txt -e '.[dev,test,otel]'" in readme
    assert "$(LOWEST)/bin/pip install --quiet -c constraints/lowest.txt -e '.[dev,test,otel]'" in (
        makefile
    )


def test_readme_says_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    targets = re.findall(r"^make ([a-z-]+) </dev/null$", ci, re.M)
    assert targets[:2] == ["test", "test-lowest"]
    readme = " ".join(README.split())
    said = re.search(r"`\.ci/run` installs .*? then runs (.*?)\.", readme)
    assert said, "README's Tests section says what .ci/run runs"
    assert re.findall(r"`make ([a-z-]+)`", said.group(1)) == targets
