"""The development server (``python -m bff``, what ``make run`` starts), as a developer uses it.

Started on spare ports (``BFF_DEV_*``) in a subprocess: its first line, /readyz, the printed
walk-through run twice in bash exactly as printed, then one signal stops everything (exit 0,
every port free). A busy or malformed port stops the start with one line naming it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from bff.__main__ import walkthrough
from bff_simulators import IdaasSimulator, WeChatSimulator
from tests.support.dev_server import (
    OWN_VARIABLES,
    PORT_VARS,
    ROOT,
    DevServer,
    free_ports,
    port_is_free,
    wait_ready,
)
from tests.support.processes import require_binary

needs_shell = pytest.mark.skipif(
    not (shutil.which("bash") and shutil.which("curl") and shutil.which("python3")),
    reason="the walk-through needs bash, curl and python3 on PATH",
)
PASSES = (("1", "2", "3a", "4"), ("1", "2", "3b", "4"), ("1", "2", "3c", "4"))


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[DevServer]:
    server = DevServer(tmp_path)
    yield server
    server.stop()


def shell_steps(lines: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The printed shell lines (indented by two spaces): the set-up, and each ``# <step>.``."""
    setup: list[str] = []
    steps: dict[str, list[str]] = {}
    current: list[str] = setup
    for line in lines:
        if not line.startswith("  "):
            continue
        header = re.match(r"^  # (\w+)\. ", line)
        if header:
            current = steps.setdefault(header.group(1), [])
        else:
            current.append(line)
    return setup, steps


def run_passes(setup: list[str], steps: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """Both paths, in one bash, as a developer pastes them; each step's output lines."""
    script = list(setup)
    for path in PASSES:
        for step in path:
            script += [f"echo '@@ {step}'", *steps[step]]
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    outputs: list[tuple[str, list[str]]] = []
    for line in done.stdout.splitlines():
        if line.startswith("@@ "):
            outputs.append((line[3:], []))
        else:
            outputs[-1][1].append(line)
    return outputs


def check_step(step: str, out: list[str]) -> None:
    if step == "1":
        assert out == []
    elif step == "2":
        assert json.loads(out[0])["status"] == "SOCIAL_BIND", out
    elif step == "3c":
        login, second_factor, sent, answer = out
        assert json.loads(login) == {"status": "MFA_AUTH"}
        assert json.loads(second_factor)["destination"].startswith("+86-137****")
        assert sent == "204"
        assert json.loads(answer)["status"] == "SUCCESS" and "id_token" in answer, answer
    elif step in ("3a", "3b"):
        if step == "3b":
            account, sent, *out = out
            assert json.loads(account)["mobile"].startswith("+86-139")
            assert sent == "204"
        (answer,) = out
        assert json.loads(answer)["status"] == "SUCCESS" and "id_token" in answer, answer
        assert "session_token" not in answer
    else:
        refresh, session, logout = out
        assert json.loads(refresh)["id_token"]
        assert json.loads(session)["active"] is True
        assert logout == "204"


def assert_all_ports_free(server: DevServer) -> None:
    busy = [name for name, port in server.ports.items() if not port_is_free(port)]
    assert busy == [], f"still listening: {busy}"


@needs_shell
def test_walkthrough_twice_then_one_ctrl_c_stops_everything(dev_server: DevServer) -> None:
    dev_server.start()
    first = dev_server.next_line()
    assert first == f"bff: serving on {dev_server.base}"  # the machine-readable line
    dev_server.wait_ready()
    printed = dev_server.read_until(r"Ctrl-C stops everything")
    text = "\n".join(printed)
    for name in PORT_VARS:  # the actual ports, not the defaults
        assert f"127.0.0.1:{dev_server.ports[name]}" in text
    assert not re.search(r":(8000|8101|8102|6399)\b", text)
    setup, steps = shell_steps(printed)
    assert set(steps) == {"1", "2", "3a", "3b", "3c", "4"}
    for _ in range(2):  # a second pass of the same steps works too
        outputs = run_passes(setup, steps)
        assert [step for step, _ in outputs] == [s for path in PASSES for s in path]
        for step, out in outputs:
            try:
                check_step(step, out)
            except (AssertionError, LookupError, ValueError) as exc:  # with the server's log
                raise AssertionError(f"step {step}: {out}\n{dev_server.stderr()}") from exc
    dev_server.signal(signal.SIGINT)
    assert dev_server.wait() == 0
    stderr = dev_server.stderr()
    assert "Traceback" not in stderr and stderr.rstrip().endswith("bff: stopped"), stderr
    assert_all_ports_free(dev_server)


def test_sigterm_stops_everything_too_and_a_second_signal_changes_nothing(
    dev_server: DevServer,
) -> None:
    dev_server.start()
    assert dev_server.next_line() == f"bff: serving on {dev_server.base}"
    dev_server.wait_ready()
    assert requests.get(dev_server.base + "/openapi.json", timeout=10).status_code == 200
    dev_server.signal(signal.SIGTERM)
    dev_server.signal(signal.SIGINT)  # impatient Ctrl-Cs: during the shutdown, and as it ends
    time.sleep(0.3)
    dev_server.signal(signal.SIGINT)
    assert dev_server.wait() == 0
    assert "Traceback" not in dev_server.stderr()
    assert_all_ports_free(dev_server)


def test_the_redis_stand_in_serves_on_after_an_error_reply(dev_server: DevServer) -> None:
    """As a real Redis does: an EVALSHA of a script it does not hold (NOSCRIPT, what every
    script's first call meets) is an error reply, and the connection goes on. A stand-in that
    closed it instead failed the first sign-in of a fresh start (503) now and then."""
    dev_server.start()
    dev_server.next_line()
    dev_server.wait_ready()
    port = int(dev_server.ports["BFF_DEV_REDIS_PORT"])
    client = redis.Redis(port=port, single_connection_client=True, socket_timeout=5)
    try:
        with pytest.raises(redis.exceptions.NoScriptError):
            client.evalsha("0" * 40, 0)
        assert client.ping() is True  # the same connection
    finally:
        client.close()


@pytest.mark.parametrize("variable", PORT_VARS)
def test_a_busy_port_is_one_line_naming_it(tmp_path: Path, variable: str) -> None:
    server = DevServer(tmp_path)
    port = server.ports[variable]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        try:
            server.start()
            assert server.wait() == 1
            assert server.next_line() is None  # nothing on stdout
        finally:
            server.stop()
        assert server.stderr() == (
            f"bff: port {port} is already in use: stop what listens there or set {variable}"
            " to a free port\n"
        )
    assert_all_ports_free(server)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"BFF_DEV_PORT": "70000"}, "bff: BFF_DEV_PORT: not a port number (1-65535): '70000'"),
        ({"BFF_DEV_REDIS_PORT": "x"}, "bff: BFF_DEV_REDIS_PORT: not a port number (1-65535): 'x'"),
        ({"BFF_ENV": "production"}, "bff: python -m bff is the development server;"),
    ],
)
def test_bad_configuration_is_one_line(tmp_path: Path, overrides: dict, message: str) -> None:
    server = DevServer(tmp_path, **overrides)
    try:
        server.start()
        assert server.wait() == 1
    finally:
        server.stop()
    stderr = server.stderr()
    assert stderr.startswith(message) and stderr.count("\n") == 1, stderr


def test_two_parts_on_one_port_is_one_line(tmp_path: Path) -> None:
    server = DevServer(tmp_path)
    server.env["BFF_DEV_WECHAT_PORT"] = server.env["BFF_DEV_IDAAS_PORT"]
    try:
        server.start()
        assert server.wait() == 1
    finally:
        server.stop()
    port = server.env["BFF_DEV_IDAAS_PORT"]
    assert server.stderr() == f"bff: BFF_DEV_WECHAT_PORT and BFF_DEV_IDAAS_PORT are both {port}\n"


def test_without_the_simulators_installed_is_one_line(tmp_path: Path) -> None:
    """bff_simulators is a distribution of its own (simulators/): where it is missing, the start
    stops before anything listens, with one line saying how to install it."""
    server = DevServer(tmp_path, simulators=False)
    try:
        server.start()
        assert server.wait() == 1
        assert server.next_line() is None  # nothing on stdout
    finally:
        server.stop()
    assert server.stderr() == (
        "bff: the simulators are not installed (bff_simulators):"
        " pip install -e ./simulators, or use make run\n"
    )
    assert_all_ports_free(server)


def test_configured_upstreams_need_no_simulators(
    tmp_path: Path, idaas_server: IdaasSimulator, wechat_server: WeChatSimulator
) -> None:
    """IDAAS_BASE_URL and WECHAT_API_BASE set: bff_simulators is never imported (these are
    this test process's own simulators), so the dev server runs where it is not installed."""
    server = DevServer(
        tmp_path,
        simulators=False,
        IDAAS_BASE_URL=idaas_server.base_url,
        WECHAT_API_BASE=wechat_server.base_url,
    )
    try:
        server.start()
        assert server.next_line() == f"bff: serving on {server.base}", server.stderr()
        text = "\n".join(server.read_until(r"Ctrl-C stops everything"))
        assert f"IDaaS simulator {idaas_server.base_url}," in text
        server.wait_ready()
        server.signal(signal.SIGINT)
        assert server.wait() == 0
    finally:
        server.stop()
    assert "Traceback" not in server.stderr()
    assert port_is_free(server.ports["BFF_DEV_IDAAS_PORT"])
    assert port_is_free(server.ports["BFF_DEV_WECHAT_PORT"])


def test_configured_parts_are_not_started(tmp_path: Path) -> None:
    """REDIS_URL set: no stand-in, its port stays free; the walk-through does not print it."""
    server = DevServer(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")
    try:
        server.start()
        assert server.next_line() == f"bff: serving on {server.base}"
        text = "\n".join(server.read_until(r"Ctrl-C stops everything"))
        assert "Redis from REDIS_URL" in text and "6379" not in text
        assert port_is_free(server.ports["BFF_DEV_REDIS_PORT"])
        server.signal(signal.SIGINT)
        assert server.wait() == 0
    finally:
        server.stop()


def test_walkthrough_fills_in_the_urls() -> None:
    urls = {"bff": "http://b:1", "idaas": "http://i:2", "wechat": "http://w:3", "redis": "r"}
    text = walkthrough(urls)
    assert "B=http://b:1/api/v1; W=http://w:3; I=http://i:2" in text
    assert '"${D[@]}"' in text and "%{http_code}" in text  # the shell's braces are kept
    assert not re.search(r"\{(bff|idaas|wechat|redis|user|password|mobile)\}", text)


@pytest.mark.skipif(not shutil.which("make"), reason="make is not on PATH")
def test_make_run_ends_on_one_ctrl_c_without_an_error(tmp_path: Path) -> None:
    """make forwards nothing: the terminal sends SIGINT to make and bff alike. bff exits 0, so
    make prints no ``*** [run] Interrupt``; make itself then ends by the signal, as it always
    does on Ctrl-C (status 130 in the shell)."""
    server = DevServer(tmp_path, make=True)
    try:
        server.start()
        lines = server.read_until(r"^bff: serving on ")
        assert lines[-1] == f"bff: serving on {server.base}"
        server.wait_ready()
        assert requests.get(server.base + "/readyz", timeout=10).status_code == 200
        server.interrupt_group()
        assert server.wait() == -signal.SIGINT
        rest = server.read_until(r"Ctrl-C stops everything")
        while (line := server.next_line()) is not None:
            rest.append(line)
    finally:
        server.stop()
    output = "\n".join(lines + rest) + server.stderr()
    assert "make: ***" not in output and "Interrupt" not in output, output
    assert "Traceback" not in output, output
    assert server.stderr().rstrip().endswith("bff: stopped")
    assert_all_ports_free(server)


def docs_block(page: str, heading: str) -> list[str]:
    """The first ```sh block under ``heading`` of ``docs/<page>``."""
    text = (ROOT / "docs" / page).read_text()
    section = text[text.index(f"\n### {heading}\n") :]
    return section.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()


@needs_shell
def test_production_mode_locally_runs_as_written(tmp_path: Path) -> None:
    """docs/development.md's commands, on spare ports instead of 9000, 9101, 9102 and 9379:
    gunicorn in production mode against both simulator CLIs and a redis-server. The
    walk-through passes."""
    require_binary("redis-server")
    block = docs_block("development.md", "Production mode locally, against the simulators")
    assert block[0] == "make install && . .venv/bin/activate"  # this run's venv instead
    ports = dict(zip(("9000", "9101", "9102", "9379"), map(str, free_ports(4)), strict=True))
    commands = "\n".join(block[1:])
    commands = re.sub(r"\b(9000|9101|9102|9379)\b", lambda m: ports[m.group(1)], commands)
    # SIGTERM to the group stops every part; bash then reaps its background jobs and ends.
    script = f"PATH={Path(sys.executable).parent}:$PATH; trap true TERM\n{commands}\nwait"
    env = {k: v for k, v in os.environ.items() if not OWN_VARIABLES.match(k)}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(  # a group of its own: what the block starts, stopped by its id
            ["bash", "-c", script],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    parts = (("bff", "9000"), ("idaas", "9101"), ("wechat", "9102"))
    urls = {name: f"http://127.0.0.1:{ports[port]}" for name, port in parts}
    try:
        wait_ready(urls["bff"], log_path.read_text, timeout=90)
        setup, steps = shell_steps(walkthrough({**urls, "redis": "-"}).splitlines())
        for step, out in run_passes(setup, steps):
            check_step(step, out)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # only if something did not stop
        proc.wait(timeout=10)
    assert all(port_is_free(int(port)) for port in ports.values()), log_path.read_text()
