"""README, docs/ and the config examples state facts the code can check: every variable with its
default, every route, every error code with its status, every make target, every link.

These tests read facts from the code (the settings, the operation registry, ``CODES``, the
Makefile) and look for them in the pages; they do not pin the pages' sentences.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

import bff.web.views  # noqa: F401 - declares every operation in the registry
from bff.dev_settings import DEV_PORT_VARS, DEV_PORTS
from bff.errors import CODES
from bff.server_settings import ServerSettings, load_server_settings
from bff.settings import FILE_VARIABLES, Settings, load_settings
from bff.web.operations import OPERATIONS, Operation

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
GUNICORN_CONF = (ROOT / "config" / "gunicorn.conf.py").read_text()


def page(name: str) -> str:
    return (DOCS / name).read_text()


SETTINGS_VARS = [f.metadata["env"].data_key for f in fields(Settings) if "env" in f.metadata]
SERVER_VARS = [f.metadata["env"].data_key for f in fields(ServerSettings)]
# What config/gunicorn.conf.py reads itself (PROMETHEUS_MULTIPROC_DIR).
CONF_VARS = re.findall(r'os\.environ\.setdefault\(\s*"([A-Z_]+)"', GUNICORN_CONF)
REQUIRED = {
    "IDAAS_BASE_URL": "https://tenant.example.com",
    "IDAAS_CLIENT_ID": "cid",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "WECHAT_APPID": "wxapp",
    "WECHAT_SECRET": "wxsecret",
}
ROUTE = re.compile(r"^`(GET|POST|PUT|PATCH|DELETE) (/\S*)`$")
SERVED = {(op.method, re.sub(r"<(\w+)>", r"{\1}", op.path)): op for op in OPERATIONS}


def env_file(name: str) -> dict[str, str]:
    """``NAME=value`` lines of ``config/<name>`` (comments and blank lines left out)."""
    lines = (ROOT / "config" / name).read_text().splitlines()
    pairs = (line.partition("=") for line in lines if line and not line.startswith("#"))
    return {key: value for key, _, value in pairs}


def prose(text: str) -> str:
    """``text`` without its fenced code blocks."""
    return re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.M | re.S)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every markdown table row in ``text`` (header and separator rows included)."""
    rows = []
    for line in prose(text).splitlines():
        if line.startswith("|") and line.rstrip().endswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
            rows.append([cell.strip() for cell in cells])
    return rows


def variable_rows(text: str) -> dict[str, list[str]]:
    """Table rows whose first cell is one backticked variable name: name -> the other cells."""
    rows: dict[str, list[str]] = {}
    for cells in table_rows(text):
        name = re.fullmatch(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        if name:
            assert name.group(1) not in rows, f"{name.group(1)} has two rows"
            rows[name.group(1)] = cells[1:]
    return rows


def route_rows(text: str) -> dict[tuple[str, str], list[str]]:
    """Table rows whose first cell is `METHOD /path`: (method, path) -> the other cells."""
    rows: dict[tuple[str, str], list[str]] = {}
    for cells in table_rows(text):
        route = ROUTE.match(cells[0])
        if route:
            key = (route.group(1), route.group(2))
            assert key not in rows, f"{key} has two rows"
            rows[key] = cells[1:]
    return rows


def literal(cell: str) -> str | None:
    """The value of a cell that is one backticked literal, else None (prose: "required", ...)."""
    found = re.fullmatch(r"`([^`]*)`", cell)
    return found.group(1) if found else None


# --- configuration ---------------------------------------------------------------------------


def test_the_gunicorn_knobs_are_found() -> None:
    assert {"GUNICORN_BIND", "GUNICORN_LOG_LEVEL"} <= set(SERVER_VARS)
    assert CONF_VARS == ["PROMETHEUS_MULTIPROC_DIR"]


def test_every_variable_is_in_configuration_md_with_its_default() -> None:
    """A default shown as a literal is the default: setting it changes nothing. A default in
    words ("required", "unset: ...") is a variable with no default value."""
    documented = variable_rows(page("configuration.md"))
    base = (load_settings(REQUIRED), load_server_settings(REQUIRED)[1])
    for name, meta in [
        *(
            (f.metadata["env"].data_key, f.metadata["env"])
            for f in fields(Settings)
            if "env" in f.metadata
        ),
        *((f.metadata["env"].data_key, f.metadata["env"]) for f in fields(ServerSettings)),
    ]:
        assert name in documented, f"docs/configuration.md does not document {name}"
        default_cell, meaning = documented[name][0], documented[name][1]
        assert meaning, f"{name}: no meaning given"
        shown = literal(default_cell)
        if meta.required:
            assert default_cell.startswith("required"), f"{name} is required"
        elif meta.load_default is None:
            assert shown is None, f"{name} has no default value, the page shows {shown!r}"
        else:
            assert shown is not None, f"{name}: the page shows no default"
            env = {**REQUIRED, name: shown}
            assert (load_settings(env), load_server_settings(env)[1]) == base, (
                f"{name}: {shown!r} is not its default"
            )


def test_the_dev_server_ports_are_documented_with_their_defaults() -> None:
    documented = variable_rows(page("configuration.md"))
    for part, name in DEV_PORT_VARS.items():
        assert name in documented, f"docs/configuration.md does not document {name}"
        assert literal(documented[name][0]) == str(DEV_PORTS[part]), name
        assert f"`{name}`" in page("development.md"), f"docs/development.md omits {name}"


def test_every_variable_the_code_reads_itself_is_documented() -> None:
    """Besides the settings: what the service and the gunicorn config read straight from the
    environment (the OTEL_* variables, BFF_COMMIT, PROMETHEUS_MULTIPROC_DIR, ...)."""
    read = re.compile(r'(?<!request\.)environ(?:\.get|\.setdefault)\(\s*"([A-Z][A-Z0-9_]*)"')
    sources = [p for p in (ROOT / "bff").rglob("*.py") if "simulators" not in p.parts]
    names = {
        name
        for p in [*sources, ROOT / "config" / "gunicorn.conf.py"]
        for name in read.findall(p.read_text())
    }
    assert {"OTEL_SERVICE_NAME", "BFF_COMMIT", "PROMETHEUS_MULTIPROC_DIR"} <= names
    documented = variable_rows(page("configuration.md"))
    for name in sorted(names):
        assert name in documented, f"docs/configuration.md does not document {name}"


def test_every_variable_is_in_the_production_example() -> None:
    example = env_file("production.env.example")
    for name in [*SETTINGS_VARS, *SERVER_VARS, *CONF_VARS]:
        assert name in example, f"config/production.env.example lacks {name}"
    assert set(example) <= {*SETTINGS_VARS, *SERVER_VARS, *CONF_VARS}, "an unknown variable"


def test_every_secret_read_from_a_file_is_named_so() -> None:
    """configuration.md's *_FILE paragraph and the production example name every NAME_FILE."""
    paragraph = page("configuration.md").split("**Secrets from files.**")[1].split("\n\n")[0]
    example = (ROOT / "config" / "production.env.example").read_text()
    for name in FILE_VARIABLES:
        assert f"`{name}`" in paragraph, f"configuration.md: {name} may come from {name}_FILE"
        assert f"{name}_FILE" in example, f"production.env.example: {name}_FILE"


def test_the_production_example_shows_the_defaults() -> None:
    """Values shown are the defaults unless marked "set" (blank): the file says so."""
    example = {k: v for k, v in env_file("production.env.example").items() if v}
    assert load_settings({**example, **REQUIRED}) == load_settings(REQUIRED)
    assert load_server_settings({**example, **REQUIRED}) == load_server_settings(REQUIRED)


# --- the API ---------------------------------------------------------------------------------


def test_the_registry_is_populated() -> None:
    assert len(SERVED) == len(OPERATIONS) >= 17
    assert ("POST", "/api/v1/bind/username-password") in SERVED


def test_readme_api_table_lists_every_route_with_its_auth_and_status() -> None:
    rows = route_rows(README)
    assert set(rows) == set(SERVED), "README's API table and the routes the app serves differ"
    for key, (auth, _body, success) in rows.items():
        op = SERVED[key]
        takes = op.auth or op.forward_auth  # the check reads the handle itself
        assert (auth == "none") == (not takes), f"{key}: auth is {takes}"
        status = re.match(r"`(\d{3})", success)
        assert status and int(status.group(1)) == op.status, f"{key}: answers {op.status}"


def device_headers(op: Operation) -> str:
    """What docs/api.md says of an operation's device headers: the document's own rule."""
    if not ((op.auth or op.forward_auth) and "BFF.VALIDATION" in op.errors):
        return "—"
    return "required" if op.device_required else "forwarded when present"


def test_api_md_lists_every_route_with_its_headers_limit_and_lock() -> None:
    rows = route_rows(page("api.md"))
    assert set(rows) == set(SERVED), "docs/api.md's routes and the routes the app serves differ"
    for key, (device, limit, lock) in rows.items():
        op = SERVED[key]
        assert device == device_headers(op), f"{key}: device headers {device_headers(op)}"
        assert (limit != "—") == ("BFF.RATE_LIMITED" in op.errors), f"{key}: rate limit"
        assert (lock != "—") == ("BFF.REQUEST_IN_PROGRESS" in op.errors), f"{key}: lock"


def test_every_error_code_is_in_api_md_with_its_status() -> None:
    statuses: dict[str, str] = {}
    for cells in table_rows(page("api.md")):
        code = re.fullmatch(r"`(BFF\.[A-Z_]+)`", cells[1]) if len(cells) > 1 else None
        if code:
            assert code.group(1) not in statuses, f"{code.group(1)} has two rows"
            statuses[code.group(1)] = cells[0]
    assert set(statuses) == set(CODES), "docs/api.md's error codes and bff.errors.CODES differ"
    for code, (status, _message) in CODES.items():
        assert statuses[code] == str(status), f"{code} is {status}"


# --- make targets, durations, CI -------------------------------------------------------------

TARGETS = dict(re.findall(r"^([a-z-]+):.*?## (.*)$", MAKEFILE, re.M))


def dashes(text: str) -> str:
    return text.replace("–", "-")


def test_every_make_target_is_in_development_md_with_its_duration() -> None:
    assert {"run", "test", "lint", "bench"} <= set(TARGETS)
    rows = {cells[0]: " ".join(cells[1:]) for cells in table_rows(page("development.md")) if cells}
    for target, help_text in TARGETS.items():
        row = rows.get(f"`make {target}`")
        assert row is not None, f"docs/development.md's targets lack make {target}"
        took = re.search(r"(\d+)-(\d+) (min|s)\b", help_text)
        if took:
            assert took.group(0) in dashes(row), f"make {target} takes {took.group(0)}"


def test_the_bench_durations_agree_with_performance_md() -> None:
    performance = page("performance.md")
    for target in ("bench", "bench-smoke", "bench-workers", "bench-auth"):
        took = re.search(r"(\d+-\d+ (?:min|s))\b", TARGETS[target])
        assert took, f"make help states how long make {target} takes"
        assert re.search(rf"^make {target} +# ~{took.group(1)}\b", performance, re.M), target


def test_the_lowest_versions_run_is_described_as_it_is() -> None:
    command = "pip install -c constraints/lowest.txt -e '.[dev,test,otel]'"
    assert command.replace("pip install", "$(LOWEST)/bin/pip install --quiet") in MAKEFILE
    assert command in page("development.md")


def test_development_md_says_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    targets = re.findall(r"^make ([a-z-]+) </dev/null$", ci, re.M)
    assert targets[:2] == ["test", "test-lowest"]
    text = " ".join(page("development.md").split())
    said = re.search(r"`\.ci/run` installs .*? then runs (.*?)\.", text)
    assert said, "docs/development.md says what .ci/run runs"
    assert re.findall(r"`make ([a-z-]+)`", said.group(1)) == targets


# --- the pages themselves --------------------------------------------------------------------


def test_readme_is_short() -> None:
    assert len(README.splitlines()) <= 160


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: Counter[str] = Counter()
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose(path.read_text()), re.M):
        base = slug(heading)
        found.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path: Path) -> None:
    """Every relative link (and image) points at a file that exists, and at a heading of it."""
    for target in re.findall(r"\]\(([^)\s]+)\)", prose(path.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{path.name}: {target} does not exist"
        assert linked.is_relative_to(ROOT), f"{path.name}: {target} is outside the repository"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{path.name}: {target}: no such heading"


REPO_PATH = re.compile(
    r"^(?:(?:bff|tests|bench|config|deploy|docs|miniprogram|requirements|constraints|\.ci)/"
    r"|(?:Makefile|Dockerfile|docker-compose\.yml|setup\.cfg|pyproject\.toml|ruff\.toml)\b)"
)
GENERATED = ("bench/out",)  # written by make bench, ignored by git


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_file_and_test_named_exists(path: Path) -> None:
    """A backticked repository path names a file that exists, and ``file::test`` a test in it."""
    for span in re.findall(r"`([^`\n]+)`", prose(path.read_text())):
        if not REPO_PATH.match(span) or re.search(r"[\s{}<>$]", span):
            continue
        file, _, test = span.partition("::")
        if file.startswith(GENERATED) or "*" in file:
            continue
        assert (ROOT / file).exists(), f"{path.name}: {file} does not exist"
        if test:
            pattern = re.escape(test).replace(r"\*", r"\w*")
            assert re.search(rf"^\s*def {pattern}\b", (ROOT / file).read_text(), re.M), (
                f"{path.name}: {file} has no {test}"
            )


FIGURE = re.compile(
    r"\d[\d,.]*\s*(?:binds|sign-ins|logins|requests|answers)/s"  # throughput
    r"|\d+\.\d+\s*×"  # ratios
    r"|\d+(?:\.\d+)?\s*ms (?:of )?CPU"  # CPU per request
)


@pytest.mark.parametrize(
    "path",
    [p for p in PAGES if p.name != "performance.md" and not p.name.startswith("benchmark-")],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_benchmark_figures_live_in_performance_md_only(path: Path) -> None:
    found: list[Any] = FIGURE.findall(path.read_text())
    assert not found, f"{path.name} quotes benchmark figures {found}: link performance.md"
