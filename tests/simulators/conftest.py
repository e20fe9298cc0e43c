"""Module-scoped simulators for the simulators' own tests (each file gets a fresh pair)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bff_simulators.idaas import IdaasSimulator
from bff_simulators.wechat import WeChatSimulator

CLIENT = "test-client"


@pytest.fixture(scope="module")
def wx() -> Iterator[WeChatSimulator]:
    with WeChatSimulator() as sim:
        yield sim


@pytest.fixture(scope="module")
def idp_server(wx: WeChatSimulator) -> Iterator[IdaasSimulator]:
    with IdaasSimulator(CLIENT, wechat_base_url=wx.base_url) as sim:
        yield sim
