"""Module-scoped simulators for the simulators' own tests (each file gets a fresh pair)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from bff.simulators.idaas import IdaasSimulator
from bff.simulators.wechat import WeChatSimulator

CLIENT = "test-client"


@pytest.fixture(scope="module")
def wx() -> Iterator[WeChatSimulator]:
    with WeChatSimulator() as sim:
        yield sim


@pytest.fixture(scope="module")
def idp_server(wx: WeChatSimulator) -> Iterator[IdaasSimulator]:
    with IdaasSimulator(CLIENT, wechat_base_url=wx.base_url) as sim:
        yield sim


def reap(proc: subprocess.Popen[bytes]) -> None:
    """Stop a simulator started as a command (by its pid) and close its pipe."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
