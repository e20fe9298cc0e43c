"""WeChat code2Session simulator, plus the shared server plumbing (faults, lifecycle, CLI)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bff_simulators import FAULT_KINDS, SimServer, WeChatSimulator
from tests.support.processes import reap

TIMEOUT = 5
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wx() -> Iterator[WeChatSimulator]:
    with WeChatSimulator() as sim:
        yield sim


@pytest.fixture(autouse=True)
def _fresh(wx: WeChatSimulator) -> None:
    wx.reset_state()


def c2s(wx: WeChatSimulator, code: str | None, **override: str) -> requests.Response:
    params = {
        "appid": wx.appid,
        "secret": wx.secret,
        "js_code": code,
        "grant_type": "authorization_code",
    }
    params.update(override)
    return requests.get(wx.base_url + "/sns/jscode2session", params=params, timeout=TIMEOUT)


def errcode(resp: requests.Response) -> int:
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    assert "openid" not in body and isinstance(body["errmsg"], str)
    return int(body["errcode"])


# code2Session --------------------------------------------------------------------------------
def test_success_answers_openid_and_session_key_as_text_plain(wx: WeChatSimulator) -> None:
    resp = c2s(wx, wx.issue_code("o_alice"))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/plain"
    body = resp.json()
    assert body["openid"] == "o_alice"
    assert "unionid" not in body and "errcode" not in body
    assert wx.session_keys == [body["session_key"]]


def test_unionid_is_returned_when_set(wx: WeChatSimulator) -> None:
    body = c2s(wx, wx.issue_code("o_bob", unionid="u_bob")).json()
    assert (body["openid"], body["unionid"]) == ("o_bob", "u_bob")


def test_random_openid_and_fresh_codes(wx: WeChatSimulator) -> None:
    first, second = wx.issue_code(), wx.issue_code()
    assert first != second
    a, b = c2s(wx, first).json()["openid"], c2s(wx, second).json()["openid"]
    assert a.startswith("o_") and b.startswith("o_") and a != b


def test_several_codes_for_one_openid(wx: WeChatSimulator) -> None:
    codes = [wx.issue_code("o_same"), wx.issue_code("o_same")]
    assert [c2s(wx, code).json()["openid"] for code in codes] == ["o_same", "o_same"]
    assert len(set(wx.session_keys)) == 2


def test_code_is_single_use(wx: WeChatSimulator) -> None:
    code = wx.issue_code("o_once")
    assert c2s(wx, code).json()["openid"] == "o_once"
    assert errcode(c2s(wx, code)) == 40163


def test_unknown_code(wx: WeChatSimulator) -> None:
    assert errcode(c2s(wx, "no-such-code")) == 40029


def test_expired_code(wx: WeChatSimulator) -> None:
    wx.code_ttl_s = 0
    assert errcode(c2s(wx, wx.issue_code())) == 40029


@pytest.mark.parametrize("override", [{"appid": "wx-other"}, {"secret": "wrong"}, {"secret": ""}])
def test_wrong_credentials_do_not_spend_the_code(
    wx: WeChatSimulator, override: dict[str, str]
) -> None:
    code = wx.issue_code("o_cred")
    assert errcode(c2s(wx, code, **override)) == 40125
    assert c2s(wx, code).json()["openid"] == "o_cred"


def test_missing_code_and_bad_grant_type(wx: WeChatSimulator) -> None:
    assert errcode(c2s(wx, None)) == 41008
    assert errcode(c2s(wx, wx.issue_code(), grant_type="client_credential")) == 40002


@pytest.mark.parametrize("code", [-1, 45011, 40226])
def test_fail_next_keeps_the_code(wx: WeChatSimulator, code: int) -> None:
    wx_code = wx.issue_code("o_retry")
    wx.fail_next(code)
    assert errcode(c2s(wx, wx_code)) == code
    assert c2s(wx, wx_code).json()["openid"] == "o_retry"


def test_fail_next_count(wx: WeChatSimulator) -> None:
    wx.fail_next(-1, count=2)
    code = wx.issue_code()
    assert [errcode(c2s(wx, code)) for _ in range(2)] == [-1, -1]
    assert "openid" in c2s(wx, code).json()


def test_redeem_method(wx: WeChatSimulator) -> None:
    code = wx.issue_code("o_py", "u_py")
    assert wx.redeem(code) == ("o_py", "u_py")
    assert wx.redeem(code) == 40163
    assert wx.redeem("nope") == 40029


def test_http_wx_login_and_fail_next(wx: WeChatSimulator) -> None:
    resp = requests.post(wx.base_url + "/_sim/wx-login", json={"openid": "o_curl"}, timeout=TIMEOUT)
    assert resp.status_code == 200
    code = resp.json()["code"]
    resp = requests.post(wx.base_url + "/_sim/fail-next", json={"errcode": 45011}, timeout=TIMEOUT)
    assert resp.status_code == 200
    assert errcode(c2s(wx, code)) == 45011
    assert c2s(wx, code).json()["openid"] == "o_curl"
    anonymous = requests.post(wx.base_url + "/_sim/wx-login", timeout=TIMEOUT).json()["code"]
    assert c2s(wx, anonymous).json()["openid"].startswith("o_")
    bad = requests.post(wx.base_url + "/_sim/wx-login", json={"openid": 3}, timeout=TIMEOUT)
    assert bad.status_code == 400
    bad = requests.post(wx.base_url + "/_sim/fail-next", json={}, timeout=TIMEOUT)
    assert bad.status_code == 400


def test_requests_are_recorded_but_control_calls_are_not(wx: WeChatSimulator) -> None:
    requests.post(wx.base_url + "/_sim/wx-login", json={}, timeout=TIMEOUT)
    c2s(wx, "abc")
    resp = requests.post(
        wx.base_url + "/somewhere?x=1", json={"k": "v"}, headers={"X-Test": "yes"}, timeout=TIMEOUT
    )
    assert resp.status_code == 404
    first, second = wx.requests
    assert (first.method, first.path, first.query["js_code"]) == (
        "GET",
        "/sns/jscode2session",
        "abc",
    )
    assert first.query["secret"] == wx.secret and first.body == b"" and first.json is None
    assert (second.method, second.path, second.query) == ("POST", "/somewhere", {"x": "1"})
    assert second.headers["x-test"] == "yes" and second.json == {"k": "v"}


def test_reset_state_restores_defaults(wx: WeChatSimulator) -> None:
    code = wx.issue_code()
    wx.code_ttl_s = 1
    wx.fail_next(-1)
    wx.add_fault("status500")
    wx.reset_state()
    assert wx.code_ttl_s == 300 and wx.requests == [] and wx.faults == []
    assert errcode(c2s(wx, code)) == 40029


def test_method_not_allowed(wx: WeChatSimulator) -> None:
    resp = requests.post(wx.base_url + "/sns/jscode2session", timeout=TIMEOUT)
    assert resp.status_code == 405


# faults (shared plumbing) --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "status", "content_type"),
    [
        ("status500", 500, "text/plain"),
        ("bad_gateway", 502, "text/html"),
        ("garbage", 200, "application/json"),
        ("malformed", 200, "application/json"),
    ],
)
def test_answering_faults(wx: WeChatSimulator, kind: str, status: int, content_type: str) -> None:
    code = wx.issue_code("o_fault")
    wx.add_fault(kind)
    resp = c2s(wx, code)
    assert (resp.status_code, resp.headers["Content-Type"]) == (status, content_type)
    if kind == "garbage":
        assert resp.text == "<html>not json"
    if kind == "malformed":
        assert resp.json() == {"hello": "world"}
    assert len(wx.requests) == 1
    assert c2s(wx, code).json()["openid"] == "o_fault"  # consumed, and the code was not spent


def test_reset_fault_is_a_connection_error(wx: WeChatSimulator) -> None:
    wx.add_fault("reset", path="/sns/jscode2session")
    with pytest.raises(requests.ConnectionError):
        c2s(wx, "x")
    assert len(wx.requests) == 1
    assert errcode(c2s(wx, "x")) == 40029


def test_latency_fault_answers_normally(wx: WeChatSimulator) -> None:
    wx.add_fault("latency", seconds=0.2)
    assert c2s(wx, wx.issue_code("o_slow")).json()["openid"] == "o_slow"
    assert wx.faults == []


def test_client_giving_up_during_latency_is_quiet(
    wx: WeChatSimulator, capfd: pytest.CaptureFixture[str]
) -> None:
    wx.add_fault("latency", seconds=0.3)
    with pytest.raises(requests.Timeout):
        requests.get(wx.base_url + "/sns/jscode2session", timeout=0.05)
    threading.Event().wait(0.5)  # let the server try (and fail) to write the answer
    assert capfd.readouterr().err == ""


def test_requests_are_served_concurrently(wx: WeChatSimulator) -> None:
    wx.add_fault("latency", path="/slow", seconds=0.5)
    done = threading.Event()

    def slow() -> None:
        requests.get(wx.base_url + "/slow", timeout=TIMEOUT)
        done.set()

    worker = threading.Thread(target=slow)
    worker.start()
    assert c2s(wx, "fast").status_code == 200
    assert not done.is_set()
    worker.join()
    assert done.is_set()


def test_fault_count_path_and_until_cleared(wx: WeChatSimulator) -> None:
    wx.add_fault("status500", path="/other")
    assert c2s(wx, "c").status_code == 200
    wx.clear_faults()
    wx.add_fault("bad_gateway", count=2)
    assert [c2s(wx, "c").status_code for _ in range(3)] == [502, 502, 200]
    wx.add_fault("status500", count=None)
    assert [c2s(wx, "c").status_code for _ in range(3)] == [500, 500, 500]
    wx.clear_faults()
    assert c2s(wx, "c").status_code == 200


def test_faults_over_http(wx: WeChatSimulator) -> None:
    url = wx.base_url + "/_sim/faults"
    spec = {"kind": "bad_gateway", "path": "/sns/jscode2session", "count": None}
    assert requests.post(url, json=spec, timeout=TIMEOUT).status_code == 200
    assert [c2s(wx, "c").status_code for _ in range(2)] == [502, 502]
    assert requests.delete(url, timeout=TIMEOUT).status_code == 200
    assert c2s(wx, "c").status_code == 200
    requests.post(url, json={"kind": "latency", "seconds": 0.05}, timeout=TIMEOUT)
    assert c2s(wx, "c").status_code == 200
    for bad in (
        {"kind": "boom"},
        {"kind": "reset", "count": 0},
        {"kind": "latency", "seconds": -1},
    ):
        assert requests.post(url, json=bad, timeout=TIMEOUT).status_code == 400
    assert requests.post(url, data=b"[1]", timeout=TIMEOUT).status_code == 400
    assert wx.requests and all(not r.path.startswith("/_sim/") for r in wx.requests)
    requests.post(wx.base_url + "/_sim/reset", timeout=TIMEOUT)
    assert wx.requests == []


def test_add_fault_validates() -> None:
    sim = SimServer()
    with pytest.raises(ValueError, match="unknown fault kind"):
        sim.add_fault("explode")
    with pytest.raises(ValueError):
        sim.add_fault("latency", count=0)
    for kind in FAULT_KINDS:  # every documented kind is accepted
        sim.add_fault(kind)
    assert len(sim.faults) == len(FAULT_KINDS)


def test_drip_and_oversize_faults(wx: WeChatSimulator) -> None:
    """A slow-loris answer (one byte per interval) and a 2 MiB answer without Content-Length."""
    import socket

    wx.add_fault("oversize")
    code = wx.issue_code("o_big")
    resp = c2s(wx, code)
    assert "Content-Length" not in resp.headers and len(resp.content) > 2 * 1024 * 1024
    assert resp.json()["openid"] == "o_big"  # still the real answer, padded
    wx.add_fault("drip", seconds=0.05)
    code = wx.issue_code("o_drip")
    with socket.create_connection(("127.0.0.1", wx.port), timeout=10) as sock:
        sock.sendall(f"GET /sns/jscode2session?js_code={code} HTTP/1.0\r\n\r\n".encode())
        first = b""
        while b"\r\n\r\n" not in first:
            first += sock.recv(65536)
        head, _, body = first.partition(b"\r\n\r\n")
        assert len(body) <= 1  # the body comes a byte at a time


# lifecycle -----------------------------------------------------------------------------------
def test_stop_refuses_and_restart_keeps_the_port() -> None:
    sim = WeChatSimulator()
    with pytest.raises(RuntimeError):
        _ = sim.base_url
    sim.start()
    url = sim.base_url
    assert sim.running and sim.start() is sim
    sim.stop()
    sim.stop()
    assert not sim.running
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/sns/jscode2session", timeout=TIMEOUT)
    with sim:
        assert sim.base_url == url
        assert requests.get(url + "/sns/jscode2session", timeout=TIMEOUT).status_code == 200


def test_standalone_cli_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "simulators")}
    cmd = [sys.executable, "-m", "bff_simulators.wechat", "--port", "0", "--appid", "wx-cli"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)  # the first line: the URL
        code = requests.post(base_url + "/_sim/wx-login", json={"openid": "o_cli"}, timeout=TIMEOUT)
        params = {
            "appid": "wx-cli",
            "secret": "wx-sim-secret",
            "js_code": code.json()["code"],
            "grant_type": "authorization_code",
        }
        resp = requests.get(base_url + "/sns/jscode2session", params=params, timeout=TIMEOUT)
        assert resp.json()["openid"] == "o_cli"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""  # no runpy RuntimeWarning
    finally:
        reap(proc)
