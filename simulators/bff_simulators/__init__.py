"""Bundled upstream simulators (IDaaS, WeChat code2Session): real HTTP servers for dev and tests.

``IdaasSimulator`` and ``WeChatSimulator`` are imported on first use, not here: importing this
package must not import ``idaas`` or ``wechat``, or ``python -m bff_simulators.idaas`` (or
``.wechat``) would run a module that is already loaded, and runpy warns about it on stderr.

A distribution of its own (``simulators/`` in bff's repository, ``pip install -e ./simulators``):
bff's wheel and image carry none of it, and it imports nothing of bff.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._server import FAULT_KINDS, RecordedRequest, SimServer
from .webhook import open_event, seal_event

if TYPE_CHECKING:
    from .idaas import IdaasSimulator
    from .wechat import WeChatSimulator

__version__ = "0.1.0"

__all__ = [
    "FAULT_KINDS",
    "IdaasSimulator",
    "RecordedRequest",
    "SimServer",
    "WeChatSimulator",
    "open_event",
    "seal_event",
]
_LAZY = {"IdaasSimulator": ".idaas", "WeChatSimulator": ".wechat"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
