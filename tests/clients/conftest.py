"""Fixtures of the client tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def fast_client(make_app, idaas_sim, wechat_sim):
    """Short read timeout so a latency fault becomes a timeout quickly."""
    return make_app(IDAAS_READ_TIMEOUT_S="0.3", WECHAT_READ_TIMEOUT_S="0.3").test_client()
