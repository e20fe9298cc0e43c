"""Bundled upstream simulators (IDaaS, WeChat code2Session): real HTTP servers for dev and tests."""

from ._server import FAULT_KINDS, RecordedRequest, SimServer
from .idaas import IdaasSimulator
from .wechat import WeChatSimulator

__all__ = ["FAULT_KINDS", "IdaasSimulator", "RecordedRequest", "SimServer", "WeChatSimulator"]
