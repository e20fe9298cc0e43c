"""Bundled upstream simulators (IDaaS, WeChat code2Session): real HTTP servers for dev and tests.

``IdaasSimulator`` and ``WeChatSimulator`` are imported on first use, not here: importing this
package must not import ``idaas`` or ``wechat``, or ``python -m bff.simulators.idaas`` (or
``.wechat``) would run a module that is already loaded, and runpy warns about it on stderr.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._server import FAULT_KINDS, RecordedRequest, SimServer

if TYPE_CHECKING:
    from .idaas import IdaasSimulator
    from .wechat import WeChatSimulator

__all__ = ["FAULT_KINDS", "IdaasSimulator", "RecordedRequest", "SimServer", "WeChatSimulator"]
_LAZY = {"IdaasSimulator": ".idaas", "WeChatSimulator": ".wechat"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
