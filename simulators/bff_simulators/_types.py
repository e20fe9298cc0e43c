"""Value types shared by the simulators: recorded requests, responses, faults."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any

# drip: the real answer, its body one byte per `seconds`; oversize: the real answer padded to
# OVERSIZE_BYTES, sent without Content-Length (what a hostile or broken upstream looks like).
FAULT_KINDS = frozenset(
    {
        "latency",
        "status500",
        "status429",
        "bad_gateway",
        "garbage",
        "malformed",
        "reset",
        "drip",
        "oversize",
    }
)
OVERSIZE_BYTES = 2 * 1024 * 1024
CONTROL_PREFIX = "/_sim/"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the simulator received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    json: Any = None


@dataclass(frozen=True)
class Response:
    """What a route handler answers."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    drip_s: float = 0.0  # > 0: the body is written one byte at a time, this far apart
    sized: bool = True  # False: no Content-Length, the body ends when the connection closes


@dataclass
class Fault:
    """A scripted failure; `count=None` means until cleared."""

    kind: str
    path: str | None = None
    count: int | None = 1
    seconds: float = 0.0


class Reply(Exception):
    """Raised by a handler to answer at once (typically with an error)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


Handler = Callable[[RecordedRequest], Response]


def json_response(obj: Any, status: int = 200, content_type: str = "application/json") -> Response:
    """Serialise `obj` as the JSON body of a response."""
    return Response(status, json.dumps(obj).encode(), content_type)


def control_error(message: str) -> Reply:
    """A 400 answer to a malformed `/_sim/` control call."""
    return Reply(json_response({"error": message}, 400))


def control_body(req: RecordedRequest) -> dict[str, Any]:
    """The JSON object body of a control call (an empty body counts as `{}`)."""
    if not req.body:
        return {}
    if not isinstance(req.json, dict):
        raise control_error("body must be a JSON object")
    return req.json


def parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def check_fault(kind: str, count: int | None, seconds: float) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ValueError("count must be a positive integer or None")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError("seconds must be a non-negative number")
