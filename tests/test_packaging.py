"""The Dockerfile's steps, run here: its build stage's COPY and `RUN pip` lines as written (wheels
from requirements/image.lock, hash-checked, then bff's own), its runtime stage's offline install
into a clean venv, gunicorn with the image's CMD as a non-root user, /healthz. Plus the image's
shape, the lock against setup.cfg, and constraints/lowest.txt against setup.cfg's lower bounds.
Neither bff's wheel nor the image carries the simulators (simulators/, a distribution of their
own)."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
import requests
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.app import CLIENT_ID, REDIS_URL
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
BUILD_STAGE, RUNTIME_STAGE = re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]
LOCK = ROOT / "requirements" / "image.lock"
LOWEST = ROOT / "constraints" / "lowest.txt"
SIMULATORS_CFG = ROOT / "simulators" / "setup.cfg"
AS_BFF = ["--reuid=10001", "--regid=10001", "--clear-groups"]  # the image's USER 10001:10001


def _cmd() -> list[str]:
    found = re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M)
    assert found, "CMD must be in exec form"
    cmd: list[str] = json.loads(found.group(1))
    return cmd


def _healthcheck() -> list[str]:
    found = re.search(r"^HEALTHCHECK .*?\\\n\s*CMD (\[.*\])$", DOCKERFILE, re.M)
    assert found, "HEALTHCHECK ... CMD [...] in exec form"
    cmd: list[str] = json.loads(found.group(1))
    return cmd


def test_dockerfile_shape():
    froms = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    assert len(froms) == 2 and all(re.search(r"@sha256:[0-9a-f]{64}$", f) for f in froms)
    user = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert user and user[-1] not in ("root", "0", "0:0")
    assert _cmd() == ["gunicorn", "-c", "config/gunicorn.conf.py", "bff:create_app()"]
    assert "/healthz" in DOCKERFILE
    # Dependencies come from the lock, hash-checked; bff's own wheel adds none; the runtime
    # stage installs those wheels and nothing from an index.
    build = _runs(BUILD_STAGE)
    assert build[0] == (
        "pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r requirements/image.lock"
    )
    assert build[1:] == ["pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ."]
    (install,) = [line for line in _runs(RUNTIME_STAGE) if line.startswith("pip ")]
    assert "--no-index" in install.split()


def _runs(stage: str) -> list[str]:
    return re.findall(r"^RUN (.+)$", stage, re.M)


def test_compose_runs_the_image_with_redis():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"bff", "redis"}
    redis, bff = compose["services"]["redis"], compose["services"]["bff"]
    # Redis with a password and a memory limit, bff without a way to gain privileges. The
    # password comes from the env file; compose refuses to start without it.
    command = redis["command"]
    assert command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    assert "--maxmemory" in command and redis["mem_limit"]
    assert bff["environment"]["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD")
    assert "no-new-privileges:true" in bff["security_opt"] and bff["cap_drop"] == ["ALL"]
    assert bff["mem_limit"] and bff["read_only"] is True


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root + setpriv")
def test_wheel_install_and_gunicorn_as_non_root(idaas_server, wechat_server, key_prefix):
    tmp_path = Path(tempfile.mkdtemp(prefix="bff-pkg-"))  # pytest's tmp dirs are root-only (0700)
    os.chmod(tmp_path, 0o755)  # noqa: S103 - uid 10001 must reach the venv
    try:
        _install_and_run(tmp_path, idaas_server, wechat_server, key_prefix)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _python_for_uid_10001() -> str:
    """An interpreter the non-root user can run (pyenv's lives under /root, which it cannot)."""
    for candidate in ("/usr/local/bin/python3", "/usr/bin/python3", sys.executable):
        probe = [
            "setpriv",
            *AS_BFF,
            candidate,
            "-c",
            "import sys; assert sys.version_info >= (3, 11)",
        ]
        if subprocess.run(probe, capture_output=True, check=False, timeout=30).returncode == 0:
            return candidate
    pytest.skip("no Python >= 3.11 that a non-root user can run")


def _install_and_run(tmp_path: Path, idaas_server, wechat_server, key_prefix) -> None:
    env_dir = tmp_path / "venv"
    subprocess.run([_python_for_uid_10001(), "-m", "venv", str(env_dir)], check=True, timeout=120)
    pip = env_dir / "bin" / "pip"
    wheels = tmp_path / "wheels"  # the image's /wheels
    # The Dockerfile's build stage: its COPY lines into a fresh /src, its `RUN pip` lines...
    src = tmp_path / "src"
    src.mkdir()
    for kind, args in re.findall(r"^(COPY|RUN) (.+)$", BUILD_STAGE, re.M):
        if kind == "COPY":
            _copy(args, src)
        else:
            _pip_step(args, pip, wheels, src)
    (bff_wheel,) = wheels.glob("bff-*.whl")
    _assert_no_simulators(bff_wheel)
    # ...and its runtime stage's offline install of those wheels; then the CMD as uid 10001.
    (install,) = [line for line in _runs(RUNTIME_STAGE) if line.startswith("pip ")]
    _pip_step(install, pip, wheels, tmp_path)
    _assert_simulators_absent(env_dir / "bin" / "python", tmp_path)
    app_dir = tmp_path / "app"  # like the image's /app: only config/, the package is installed
    shutil.copytree(ROOT / "config", app_dir / "config")
    port = free_port()
    env = {
        "PATH": f"{env_dir / 'bin'}:/usr/bin:/bin",
        "BFF_ENV": "production",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "IDAAS_BASE_URL": idaas_server.base_url,
        "IDAAS_CLIENT_ID": CLIENT_ID,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": key_prefix + "pkg",
        "WECHAT_APPID": "wx-sim-appid",
        "WECHAT_SECRET": "wx-sim-secret",
    }
    (tmp_path / "metrics").mkdir()
    os.chown(tmp_path / "metrics", 10001, 10001)
    cmd = ["setpriv", *AS_BFF, *_cmd()]
    cmd[cmd.index("gunicorn")] = str(env_dir / "bin" / "gunicorn")
    proc = subprocess.Popen(
        cmd, cwd=app_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                status = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code
            except requests.RequestException:  # not listening yet, or a worker still booting
                time.sleep(0.2)
        assert status == 200, proc.stdout.read1().decode() if proc.poll() is not None else ""
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        # The image's HEALTHCHECK probes the port gunicorn was told to bind, not a fixed 8000.
        probe = _healthcheck()
        probe[0] = str(env_dir / "bin" / probe[0])
        check = subprocess.run(probe, env=env, capture_output=True, timeout=30, check=False)
        assert check.returncode == 0, check.stderr
        elsewhere = {**env, "GUNICORN_BIND": f"127.0.0.1:{free_port()}"}  # nothing listens there
        check = subprocess.run(probe, env=elsewhere, capture_output=True, timeout=30, check=False)
        assert check.returncode != 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def _assert_no_simulators(wheel: Path) -> None:
    """bff's wheel: the bff package and its metadata, no simulator file."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "bff/__init__.py" in names and "bff/__main__.py" in names, names
    assert [name for name in names if "simulator" in name.lower()] == []
    assert {name.split("/", 1)[0] for name in names} == {"bff", _dist_info(wheel)}


def _dist_info(wheel: Path) -> str:
    name, version = wheel.name.split("-")[:2]
    return f"{name}-{version}.dist-info"


def _assert_simulators_absent(python: Path, cwd: Path) -> None:
    """The venv installed as the image installs: bff_simulators does not import, and the
    development server says in one line how to get it (no traceback)."""
    env = {"PATH": f"{python.parent}:/usr/bin:/bin"}
    run = {"cwd": cwd, "env": env, "capture_output": True, "text": True, "timeout": 60}
    probe = subprocess.run([str(python), "-c", "import bff_simulators"], check=False, **run)
    assert probe.returncode == 1, probe.stderr
    assert "ModuleNotFoundError: No module named 'bff_simulators'" in probe.stderr
    env["BFF_ENV"] = "development"
    dev = subprocess.run([str(python), "-m", "bff"], check=False, **run)
    assert (dev.returncode, dev.stdout) == (1, "")
    assert dev.stderr == (
        "bff: the simulators are not installed (bff_simulators):"
        " pip install -e ./simulators, or use make run\n"
    )


LEFT_OUT = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "node_modules",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    ".*_cache",
    ".hypothesis",
    ".coverage*",
    "htmlcov",
    "out",
)


def test_the_wheel_of_the_whole_repository_carries_no_simulators(tmp_path):
    """`pip install .` at the root, with simulators/ beside bff/ in the tree: bff's wheel holds
    bff alone (setup.cfg's packages.find), nothing of the simulators."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=LEFT_OUT)
    assert (src / "simulators" / "bff_simulators" / "idaas.py").is_file()
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", "out"]
    done = subprocess.run(
        [*command, str(src)], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    (wheel,) = (tmp_path / "out").glob("bff-*.whl")
    _assert_no_simulators(wheel)


def _copy(args: str, workdir: Path) -> None:
    """``COPY src... dest`` from the repository, as docker does it (a directory's contents)."""
    *sources, dest = args.split()
    target = workdir / dest
    for name in sources:
        source = ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=ignore)
        else:
            into = target / source.name if dest.endswith("/") else target
            into.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into)


def _pip_step(line: str, pip: Path, wheels: Path, cwd: Path) -> None:
    """One ``RUN pip ...`` line as written, with this venv's pip and /wheels in the temp dir."""
    assert line.startswith("pip "), f"the Dockerfile runs more than pip: {line}"
    command = (str(pip) + line.removeprefix("pip")).replace("/wheels", str(wheels))
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{line}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def _requirements(value: str) -> list[Requirement]:
    return [Requirement(line) for line in value.splitlines() if line.strip()]


def _install_requires() -> list[Requirement]:
    return _requirements(_setup_cfg()["options"]["install_requires"])


def _pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """``name==version`` lines (joined over ``\\`` continuations): name -> (version, options)."""
    pins: dict[str, tuple[str, list[str]]] = {}
    for line in path.read_text().replace("\\\n", " ").splitlines():
        line = line.partition("#")[0].strip()
        if not line:
            continue
        requirement, *options = line.split()
        name, pinned, version = requirement.partition("==")
        assert pinned and version, f"{path.name}: not pinned with ==: {line}"
        pins[canonicalize_name(name)] = (version, options)
    return pins


def test_the_lock_pins_every_dependency_within_setup_cfg_with_hashes():
    """requirements/image.lock (`make lock`), which the image installs with --require-hashes:
    every dependency of setup.cfg pinned, to a version setup.cfg allows, each line hashed."""
    pins = _pins(LOCK)
    for requirement in _install_requires():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in {LOCK.name}: run `make lock`"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{LOCK.name} pins {name}=={version}, outside setup.cfg's {requirement}: `make lock`"
        )
    for name, (version, options) in pins.items():
        assert any(option.startswith("--hash=sha256:") for option in options), (
            f"{name}=={version} has no hash"
        )
    assert "hiredis" in pins  # redis[hiredis]: the extra's part is locked too


def test_lowest_constraints_are_setup_cfg_lower_bounds():
    """constraints/lowest.txt (`make test-lowest`) names each direct dependency at its lowest
    allowed version: install_requires and the otel and dev extras, nothing else; and the
    simulators' (simulators/setup.cfg, installed beside bff with the same constraints)."""
    extras = _setup_cfg()["options.extras_require"]
    direct = [*_install_requires(), *_requirements(extras["otel"]), *_requirements(extras["dev"])]
    simulators = configparser.ConfigParser()
    assert simulators.read(SIMULATORS_CFG)
    direct += _requirements(simulators["options"]["install_requires"])
    pins = _pins(LOWEST)
    assert set(pins) == {canonicalize_name(r.name) for r in direct}
    for requirement in direct:
        (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
        version, options = pins[canonicalize_name(requirement.name)]
        assert Version(version) == Version(floor) and not options, (
            f"{LOWEST.name}: {requirement.name}=={version}, but setup.cfg says {requirement}"
        )


KNOWN_BAD = {
    # PyJWT < 2.10.1: the issuer check matched a string claim partially (CVE-2024-53861).
    "pyjwt": ["2.10.0", "2.9.0", "2.8.0"],
    # requests < 2.32.4 can send .netrc credentials to the wrong host (CVE-2024-47081); 2.32.0
    # and 2.32.1 are yanked.
    "requests": ["2.32.3", "2.32.2", "2.32.1", "2.32.0"],
    # gunicorn < 23: request smuggling through Transfer-Encoding (CVE-2024-6827); 22 also
    # passes CR, LF or NUL in a header value on to the app.
    "gunicorn": ["22.0.0"],
}


@pytest.mark.parametrize("name", sorted(KNOWN_BAD))
def test_known_bad_versions_are_pinned_out(name):
    wanted = [r for r in _install_requires() if canonicalize_name(r.name) == name]
    assert len(wanted) == 1
    assert not [v for v in KNOWN_BAD[name] if wanted[0].specifier.contains(v)]
    lowest, _ = _pins(LOWEST)[name]
    locked, _ = _pins(LOCK)[name]
    assert lowest not in KNOWN_BAD[name] and locked not in KNOWN_BAD[name]
